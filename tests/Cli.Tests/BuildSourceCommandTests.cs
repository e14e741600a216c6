using System.Security.Cryptography;
using System.Text.Json;
using XenLivepatch.Elf;
using XenLivepatch.Hypervisor;
using XenLivepatch.Signing;
using XenLivepatch.TestKit;

namespace XenLivepatch.Cli.Tests;

/// <summary>
/// <c>xen-livepatch build-source</c> on the diff tests' small tree (tests/Data/diff, a Makefile that makes
/// xen-syms): payloads the livepatch core accepts on the tree's own build, the base build reused, and every
/// failure with its message and exit code, the tree untouched and no output written.
/// </summary>
public class BuildSourceCommandTests
{
    private sealed record Built(CliRun Run, string Output, string Tree, string Keep);

    private static Built BuildSource(string hint, string[] patches, params string[] extra)
    {
        string tree = DiffTree.Copy("src-" + hint);
        string dir = Repo.TempDirectory("bs-" + hint);
        string output = Path.Combine(dir, hint + ".livepatch");
        string keep = Path.Combine(dir, "work");
        string[] args = ["build-source", "--src", tree, .. patches.SelectMany(p => new[] { "--patch", File.Exists(p) ? p : DiffTree.CasePatch(p) }), "-o", output, "-j2", "--keep", keep, .. extra];
        return new Built(CliRun.Ours(args), output, tree, keep);
    }

    private static Dictionary<string, string> Hashes(string tree) => Directory.GetFiles(tree, "*", SearchOption.AllDirectories)
        .ToDictionary(f => Path.GetRelativePath(tree, f), f => Convert.ToHexString(SHA256.HashData(File.ReadAllBytes(f))), StringComparer.Ordinal);

    private static CheckReport Check(byte[] payload, string image, string name)
    {
        Assert.True(OfflineHypervisor.TryFromImage(ElfFile.Read(File.ReadAllBytes(image)), out var target, out string? why), why);
        return PayloadCheck.Run(name, payload, target, LivepatchProfile.Xen417);
    }

    [Fact]
    public void A_patch_becomes_a_payload_for_the_trees_own_build()
    {
        var b = BuildSource("string", ["string", "logic-static"], "--metadata", "ADVISORY=TEST-1");
        Assert.True(b.Run.ExitCode == 0, b.Run.Stderr);
        Assert.Contains("unit.o: xen_extra_version changed", b.Run.Stdout, StringComparison.Ordinal);
        Assert.Contains("unit.o: unit.c#scale changed", b.Run.Stdout, StringComparison.Ordinal);
        // Progress on stderr: each step, the object, the time.
        Assert.Contains("[1/6] Building the original tree", b.Run.Stderr, StringComparison.Ordinal);
        Assert.Contains("[4/6] Comparing 1 object", b.Run.Stderr, StringComparison.Ordinal);
        Assert.Contains("unit.o: 2 changed functions", b.Run.Stderr, StringComparison.Ordinal);
        // For the running hypervisor: the original build's xen-syms, which the tool built from the tree.
        string image = Path.Combine(b.Keep, "original", "xen-syms");
        var report = Check(File.ReadAllBytes(b.Output), image, "string");
        Assert.Null(report.Error);
        Assert.Equal(["unit.c#scale", "xen_extra_version"], report.Loaded!.Functions.Select(f => f.Name).Order());
        Assert.Contains("ADVISORY=TEST-1", System.Text.Encoding.ASCII.GetString(report.Loaded.Metadata.Span), StringComparison.Ordinal);
        // Only the patched file's object was rebuilt differently; the others are byte for byte the original's.
        foreach (string o in (string[])["other.o", "entry.o"])
            Assert.Equal(File.ReadAllBytes(Path.Combine(b.Keep, "original", o)), File.ReadAllBytes(Path.Combine(b.Keep, "patched", o)));
    }

    [Fact]
    public void A_base_build_is_used_as_the_running_hypervisor()
    {
        var original = DiffTree.Build("base-build", null);
        string output = Path.Combine(Repo.TempDirectory("bs-base"), "p.livepatch");
        var run = CliRun.Ours("build-source", "--src", original.Directory, "--base-build", original.Directory, "--patch", DiffTree.CasePatch("new-function"), "-o", output, "--json");
        Assert.True(run.ExitCode == 0, run.Stderr);
        Assert.Contains("[1/6] Using the base build", run.Stderr, StringComparison.Ordinal);
        Assert.Null(Check(File.ReadAllBytes(output), original.Image, "p").Error);
        using var doc = JsonDocument.Parse(run.Stdout);
        var root = doc.RootElement;
        Assert.Equal("built", root.GetProperty("outcome").GetString());
        var unit = Assert.Single(root.GetProperty("objects").EnumerateArray());
        Assert.Equal("unit.o", unit.GetProperty("path").GetString());
        Assert.Equal("compute", Assert.Single(unit.GetProperty("changed").EnumerateArray()).GetProperty("hypervisor_name").GetString());
        Assert.Equal("unit.c#twice", Assert.Single(unit.GetProperty("new").EnumerateArray()).GetProperty("hypervisor_name").GetString());
        var payload = root.GetProperty("payload");
        Assert.True(ElfFile.Read(File.ReadAllBytes(original.Image)).TryGetGnuBuildId(out var id, out _));
        Assert.Equal(Convert.ToHexStringLower(id.Span), payload.GetProperty("depends").GetString());
    }

    [Fact]
    public void A_patch_that_does_not_apply_names_the_hunk_and_leaves_the_tree_alone()
    {
        string bad = Path.Combine(Repo.TempDirectory("bs-bad"), "stale.patch");
        File.WriteAllText(bad, File.ReadAllText(DiffTree.CasePatch("string")).Replace("return \"-base\";", "return \"-elsewhere\";", StringComparison.Ordinal));
        string tree = DiffTree.Copy("src-stale");
        var before = Hashes(tree);
        string output = Path.Combine(Repo.TempDirectory("bs-stale"), "x.livepatch");
        var run = CliRun.Ours("build-source", "--src", tree, "--patch", bad, "-o", output, "-j2");
        Assert.Equal(80, run.ExitCode);
        Assert.Contains("stale.patch: unit.c, hunk #1 (@@ -9,7 +9,7 @@)", run.Stderr, StringComparison.Ordinal);
        Assert.Equal(before, Hashes(tree));
        Assert.False(File.Exists(output));
    }

    [Fact]
    public void A_patch_that_breaks_the_build_is_a_tree_that_does_not_build()
    {
        string broken = Path.Combine(Repo.TempDirectory("bs-broken"), "broken.patch");
        File.WriteAllText(broken, File.ReadAllText(DiffTree.CasePatch("string")).Replace("+    return \"-patched\";", "+    return \"-patched\"", StringComparison.Ordinal));
        var b = BuildSource("broken", [broken]);
        Assert.Equal(81, b.Run.ExitCode);
        Assert.Contains("the patched tree does not build", b.Run.Stderr, StringComparison.Ordinal);
        Assert.Contains("error", b.Run.Stderr, StringComparison.Ordinal);
        Assert.False(File.Exists(b.Output));
    }

    [Fact]
    public void An_empty_patch_is_nothing_to_patch_before_any_build()
    {
        string empty = Path.Combine(Repo.TempDirectory("bs-empty"), "empty.patch");
        File.WriteAllText(empty, "Subject: [PATCH] nothing\n\n---\n");
        var b = BuildSource("empty", [empty]);
        Assert.Equal(83, b.Run.ExitCode);
        Assert.Contains("nothing to patch: the patch changes no file", b.Run.Stderr, StringComparison.Ordinal);
        Assert.DoesNotContain("[1/6]", b.Run.Stderr, StringComparison.Ordinal);
        Assert.False(File.Exists(b.Output));
    }

    [Fact]
    public void A_patch_that_changes_no_code_is_nothing_to_patch()
    {
        var b = BuildSource("lines", ["line-only"]);
        Assert.Equal(83, b.Run.ExitCode);
        Assert.Contains("nothing to patch: the patch changes no function's code", b.Run.Stderr, StringComparison.Ordinal);
        Assert.False(File.Exists(b.Output));
    }

    [Fact]
    public void A_change_a_live_patch_cannot_carry_is_refused_with_object_section_and_symbol()
    {
        var b = BuildSource("data", ["changed-data"], "--json");
        Assert.Equal(65, b.Run.ExitCode);
        Assert.Contains("unit.o: .data.tunable (tunable): changed initial data of an existing variable", b.Run.Stderr, StringComparison.Ordinal);
        Assert.False(File.Exists(b.Output));
        using var doc = JsonDocument.Parse(b.Run.Stdout);
        var unit = Assert.Single(doc.RootElement.GetProperty("objects").EnumerateArray());
        var refused = Assert.Single(unit.GetProperty("refused").EnumerateArray());
        Assert.Equal("tunable", refused.GetProperty("symbol").GetString());
        Assert.Equal(JsonValueKind.Null, doc.RootElement.GetProperty("output").ValueKind);
    }

    [Fact]
    public void The_base_build_must_be_the_running_hypervisor_when_one_answers()
    {
        var original = DiffTree.Build("running", null);
        Assert.True(ElfFile.Read(File.ReadAllBytes(original.Image)).TryGetGnuBuildId(out var id, out _));
        string hex = Convert.ToHexStringLower(id.Span);
        string dir = Repo.TempDirectory("bs-running");
        string[] Args(string output, params string[] extra) =>
            ["build-source", "--src", original.Directory, "--base-build", original.Directory, "--patch", DiffTree.CasePatch("new-function"), "-o", output, .. extra];

        // The hypervisor that answers runs this build: the payload is made for it, and the tool says so.
        var running = OfflineXen.FromXenSyms("ffff82d040200000 T start\n", hex);
        var ok = CliRun.With(running, Args(Path.Combine(dir, "ok.livepatch")));
        Assert.True(ok.ExitCode == 0, ok.Stderr);
        Assert.Contains($"target: the offline test hypervisor, build-id {hex}", ok.Stderr, StringComparison.Ordinal);
        Assert.Contains("as the offline test hypervisor runs", ok.Stderr, StringComparison.Ordinal);

        // Another build runs: refused before anything is built or written, both build-ids named, and what to do.
        var other = OfflineXen.Create();
        string otherHex = Convert.ToHexStringLower(other.Target.BuildId.Span);
        Assert.NotEqual(hex, otherHex);
        string refused = Path.Combine(dir, "refused.livepatch");
        var no = CliRun.With(other, Args(refused));
        Assert.Equal(82, no.ExitCode);
        Assert.Contains($"has build-id {hex}, and the running hypervisor (the offline test hypervisor) has build-id {otherHex}", no.Stderr, StringComparison.Ordinal);
        Assert.Contains("--offline", no.Stderr, StringComparison.Ordinal);
        Assert.DoesNotContain("[2/6]", no.Stderr, StringComparison.Ordinal);
        Assert.False(File.Exists(refused));

        // --offline: built for the base build wherever it runs; the running one is not asked.
        var offline = CliRun.With(other, Args(Path.Combine(dir, "offline.livepatch"), "--offline"));
        Assert.True(offline.ExitCode == 0, offline.Stderr);
        Assert.DoesNotContain("target:", offline.Stderr, StringComparison.Ordinal);
        Assert.DoesNotContain("note: no running", offline.Stderr, StringComparison.Ordinal);

        // Nothing answers (no privcmd, no sandbox socket): a note, and the base build is taken as it is.
        var alone = CliRun.Ours(["--sandbox", Path.Combine(dir, "no.sock"), .. Args(Path.Combine(dir, "alone.livepatch"))]);
        Assert.True(alone.ExitCode == 0, alone.Stderr);
        Assert.Contains("note: no running hypervisor to compare with", alone.Stderr, StringComparison.Ordinal);
    }

    [Fact]
    public void A_base_build_of_other_sources_is_a_mismatch()
    {
        var other = DiffTree.Build("other-base", DiffTree.Patch("logic-static"));
        string tree = DiffTree.Copy("src-mismatch");
        var run = CliRun.Ours("build-source", "--src", tree, "--base-build", other.Directory, "--patch", DiffTree.CasePatch("string"), "-o",
            Path.Combine(Repo.TempDirectory("bs-mismatch"), "m.livepatch"));
        Assert.Equal(82, run.ExitCode);
        Assert.Contains("was not built from", run.Stderr, StringComparison.Ordinal);
    }

    [Fact]
    public void A_file_an_earlier_patch_creates_may_be_changed_by_a_later_one_on_a_base_build()
    {
        // As XSA-456 does: its fourth commit adds bhb-thunk.S, its sixth changes it. The base build has no such file.
        var original = DiffTree.Build("bs-created", null);
        string dir = Repo.TempDirectory("bs-created");
        string first = Path.Combine(dir, "1-add-header.patch");
        string second = Path.Combine(dir, "2-change-header.patch");
        File.WriteAllText(first, """
            --- /dev/null
            +++ b/version.h
            @@ -0,0 +1 @@
            +#define EXTRA "-first"
            --- a/unit.c
            +++ b/unit.c
            @@ -1,5 +1,6 @@
             /* A hypervisor-like source file: what the diff tests patch. */
             #include "xen.h"
            +#include "version.h"
             
             int tunable = 5;
             int __initdata boot_flag = 1;
            @@ -9,7 +10,7 @@
             
             const char *xen_extra_version(void)
             {
            -    return "-base";
            +    return EXTRA;
             }
             
             static noinline int scale(int x)

            """);
        File.WriteAllText(second, """
            --- a/version.h
            +++ b/version.h
            @@ -1 +1 @@
            -#define EXTRA "-first"
            +#define EXTRA "-second"

            """);
        string output = Path.Combine(dir, "p.livepatch");
        var run = CliRun.Ours("build-source", "--src", original.Directory, "--base-build", original.Directory, "--patch", first, "--patch", second, "-o", output);
        Assert.True(run.ExitCode == 0, run.Stderr);
        Assert.Contains("unit.o: xen_extra_version changed", run.Stdout, StringComparison.Ordinal);
        byte[] payload = File.ReadAllBytes(output);
        Assert.Null(Check(payload, original.Image, "p").Error);
        Assert.Contains("-second", System.Text.Encoding.ASCII.GetString(payload), StringComparison.Ordinal);
        Assert.DoesNotContain("-first", System.Text.Encoding.ASCII.GetString(payload), StringComparison.Ordinal);
    }

    [Fact]
    public void A_signing_key_signs_the_payload_as_build_does()
    {
        var original = DiffTree.Build("bs-signed", null);
        string dir = Repo.TempDirectory("bs-signed");
        string output = Path.Combine(dir, "p.livepatch");
        var run = CliRun.Ours("build-source", "--src", original.Directory, "--base-build", original.Directory, "--patch", DiffTree.CasePatch("new-function"),
            "-o", output, "--sign-key", SigningKeys.A.Key, "--sign-cert", SigningKeys.A.Cert);
        Assert.True(run.ExitCode == 0, run.Stderr);
        Assert.Contains("[6/7] Signing new-function", run.Stderr, StringComparison.Ordinal);
        Assert.Contains("[7/7] Writing", run.Stderr, StringComparison.Ordinal);
        Assert.Contains("signed: appended PKCS#7", run.Stdout, StringComparison.Ordinal);
        byte[] signed = File.ReadAllBytes(output);
        Assert.True(PayloadSignatures.Verify(signed, TrustStore.Load(SigningKeys.A.Cert)).Verified);
        Assert.False(PayloadSignatures.Verify(signed, TrustStore.Load(SigningKeys.B.Cert)).Verified);
        // A hypervisor that requires signatures and trusts that key takes it; one that trusts another key does not.
        var check = CliRun.Ours("check", output, "--target", original.Image, "--trusted-keys", SigningKeys.A.Directory);
        Assert.True(check.ExitCode == 0, check.Stdout + check.Stderr);
        Assert.NotEqual(0, CliRun.Ours("check", output, "--target", original.Image, "--trusted-keys", SigningKeys.B.Directory).ExitCode);

        // The note format without a certificate; a certificate without its key is a wrong command line, before any build.
        string note = Path.Combine(dir, "n.livepatch");
        var noted = CliRun.Ours("build-source", "--src", original.Directory, "--base-build", original.Directory, "--patch", DiffTree.CasePatch("new-function"),
            "-o", note, "--sign-key", SigningKeys.B.Key, "--json");
        Assert.True(noted.ExitCode == 0, noted.Stderr);
        using (var doc = JsonDocument.Parse(noted.Stdout))
            Assert.True(doc.RootElement.GetProperty("payload").GetProperty("signed").GetBoolean());
        Assert.True(PayloadSignatures.TryInspect(File.ReadAllBytes(note), out var info));
        Assert.Equal(SignatureFormat.Note, info!.Format);
        string none = Path.Combine(dir, "none.livepatch");
        var bad = CliRun.Ours("build-source", "--src", original.Directory, "--patch", DiffTree.CasePatch("new-function"), "-o", none, "--sign-cert", SigningKeys.A.Cert);
        Assert.Equal(64, bad.ExitCode);
        Assert.Contains("give the private key with --sign-key", bad.Stderr, StringComparison.Ordinal);
        Assert.DoesNotContain("Building", bad.Stderr, StringComparison.Ordinal);
        Assert.False(File.Exists(none));
    }

    [Fact]
    public void Wrong_command_lines()
    {
        Assert.Equal(64, CliRun.Ours("build-source", "--patch", "x.patch", "-o", "x").ExitCode);
        Assert.Equal(64, CliRun.Ours("build-source", "--src", ".", "-o", "x").ExitCode);
        Assert.Equal(64, CliRun.Ours("build-source", "--src", ".", "--patch", "x.patch").ExitCode);
        Assert.Equal(64, CliRun.Ours("build-source", "--src", ".", "--patch", "x", "-o", "x", "--replace", "--depends", "ab").ExitCode);
        Assert.Equal(64, CliRun.Ours("build-source", "--src", ".", "--patch", "x", "-o", "x", "-j0").ExitCode);
        Assert.Equal(66, CliRun.Ours("build-source", "--src", ".", "--patch", "/nonexistent.patch", "-o", "x").ExitCode);
        Assert.Equal(0, CliRun.Ours("build-source", "--help").ExitCode);
    }
}
