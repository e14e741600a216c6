using System.Text.Json;
using XenLivepatch.TestKit;

namespace XenLivepatch.Cli.Tests;

/// <summary><c>xen-livepatch check</c>: the verdict, the summary, the JSON and the exit codes.</summary>
public class CheckCommandTests
{
    private static readonly Lazy<(TestImage Image, string Hello, string Bye)> s_payloads = new(() =>
    {
        var image = LivepatchFixtures.Image();
        string hello = LivepatchFixtures.BuildPayload(image, "xen_hello_world", ["hello_world.c"], "--modinfo", "LIVEPATCH_RULEZ");
        string bye = LivepatchFixtures.BuildPayload(image, "xen_bye_world", ["bye_world.c"], "--depends-on", hello);
        return (image, hello, bye);
    });

    [Fact]
    public void An_accepted_payload_prints_OK_and_a_summary()
    {
        var (image, hello, _) = s_payloads.Value;
        var r = CliRun.Ours("check", hello, "--target", image.Path);
        Assert.Equal((0, ""), (r.ExitCode, r.Stderr));
        Assert.StartsWith("OK\nxen_hello_world: accepted by xen-4.17", r.Stdout, StringComparison.Ordinal);
        Assert.Contains($"xen_extra_version at 0x{image.Address("xen_extra_version"):x} (8 bytes)", r.Stdout, StringComparison.Ordinal);
        Assert.Contains("metadata: LIVEPATCH_RULEZ", r.Stdout, StringComparison.Ordinal);
    }

    [Fact]
    public void A_refused_payload_prints_the_errno_and_exits_1()
    {
        var (image, hello, _) = s_payloads.Value;
        byte[] bytes = File.ReadAllBytes(hello);
        bytes[7] = 3; // EI_OSABI GNU
        string path = Path.Combine(Repo.TempDirectory("check"), "bad.livepatch");
        File.WriteAllBytes(path, bytes);
        var r = CliRun.Ours("check", path, "--target", image.Path);
        Assert.Equal(1, r.ExitCode);
        Assert.Equal("", r.Stdout);
        Assert.StartsWith("error 95 (EOPNOTSUPP): bad: invalid ELF payload", r.Stderr, StringComparison.Ordinal);
    }

    [Fact]
    public void Stacked_payloads_check_their_dependency_on_the_last_applied()
    {
        var (image, hello, bye) = s_payloads.Value;
        var alone = CliRun.Ours("check", bye, "--target", image.Path, "--json");
        Assert.Equal(1, alone.ExitCode);
        using (var doc = JsonDocument.Parse(alone.Stdout))
        {
            var j = doc.RootElement;
            Assert.Equal(("rejected", "apply", 22, "EINVAL"), (j.GetProperty("verdict").GetString(), j.GetProperty("stage").GetString(), j.GetProperty("errno").GetInt32(), j.GetProperty("error").GetString()));
            Assert.Equal(("check", 1), (j.GetProperty("command").GetString(), j.GetProperty("exit_code").GetInt32()));
            Assert.Contains("check against the hypervisor", j.GetProperty("message").GetString(), StringComparison.Ordinal);
        }
        var stacked = CliRun.Ours("check", bye, "--target", image.Path, "--applied", hello);
        Assert.Equal(0, stacked.ExitCode);
        Assert.Contains("stacked on: xen_hello_world", stacked.Stdout, StringComparison.Ordinal);
        Assert.Equal(0, CliRun.Ours("check", bye, "--target", image.Path, "--nodeps").ExitCode);
    }

    [Fact]
    public void The_json_object_has_the_documented_fields()
    {
        var (image, hello, _) = s_payloads.Value;
        var r = CliRun.Ours("check", hello, "--target", image.Path, "--json");
        Assert.Equal(0, r.ExitCode);
        using var doc = JsonDocument.Parse(r.Stdout);
        var j = doc.RootElement;
        Assert.Equal("accepted", j.GetProperty("verdict").GetString());
        Assert.Equal(JsonValueKind.Null, j.GetProperty("errno").ValueKind);
        Assert.Equal(JsonValueKind.Null, j.GetProperty("error").ValueKind);
        Assert.Equal(Convert.ToHexStringLower(image.BuildId), j.GetProperty("depends").GetString());
        Assert.Equal(Convert.ToHexStringLower(image.BuildId), j.GetProperty("xen_depends").GetString());
        Assert.Equal(40, j.GetProperty("build_id").GetString()!.Length);
        var f = Assert.Single(j.GetProperty("functions").EnumerateArray());
        Assert.Equal("xen_extra_version", f.GetProperty("name").GetString());
    }

    [Fact]
    public void Symbols_from_a_xensyms_listing_and_a_build_id_stand_for_the_hypervisor()
    {
        // The differential corpus keeps Debian's Xen 4.17.7 listing and build-id, and payloads built for it.
        string dir = Repo.Path("tests", "Data", "xen-4.17", "differential");
        string buildId = File.ReadAllText(Path.Combine(dir, "build-id")).Trim();
        var ok = CliRun.Ours("check", Path.Combine(dir, "corpus", "ok.livepatch"), "--symbols", Path.Combine(dir, "xensyms"), "--build-id", buildId);
        Assert.Equal(0, ok.ExitCode);
        Assert.Contains("xen_extra_version at 0xffff82d040234b20 (12 bytes)", ok.Stdout, StringComparison.Ordinal);
        var bad = CliRun.Ours("check", Path.Combine(dir, "corpus", "xen_build_id_wrong.livepatch"), "--symbols", Path.Combine(dir, "xensyms"), "--build-id", buildId);
        Assert.Equal(1, bad.ExitCode);
        Assert.StartsWith("error 22 (EINVAL)", bad.Stderr, StringComparison.Ordinal);
        Assert.Contains("check against hypervisor build-id failed", bad.Stderr, StringComparison.Ordinal);
    }

    [Fact]
    public void The_seed_profile_takes_version_1_payloads_without_xen_depends()
    {
        var image = LivepatchFixtures.Image();
        string v1 = LivepatchFixtures.BuildPayload(image, "seed", ["hello_world.c"], "--cflags", "-DLIVEPATCH_V1", "--no-xen-depends");
        Assert.Equal(0, CliRun.Ours("check", v1, "--target", image.Path, "--profile", "seed-2016").ExitCode);
        var r = CliRun.Ours("check", v1, "--target", image.Path);
        Assert.Equal(1, r.ExitCode);
        Assert.Contains(".livepatch.xen_depends is missing", r.Stderr, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(new string[] { "check" }, "which payload")]
    [InlineData(new string[] { "check", "x.livepatch" }, "give the hypervisor")]
    [InlineData(new string[] { "check", "x.livepatch", "--target", "a", "--profile", "xen-9" }, "unknown profile")]
    [InlineData(new string[] { "check", "x.livepatch", "--symbols", "s" }, "--build-id")]
    [InlineData(new string[] { "check", "x.livepatch", "--bogus" }, "unknown option --bogus")]
    public void Usage_errors_say_what_to_do_and_exit_64(string[] args, string message)
    {
        var r = CliRun.Ours(args);
        Assert.Equal(64, r.ExitCode);
        Assert.Contains(message, r.Stderr, StringComparison.Ordinal);
        Assert.Contains("xen-livepatch check --help", r.Stderr, StringComparison.Ordinal);
    }

    [Fact]
    public void Check_has_help()
    {
        var r = CliRun.Ours("check", "--help");
        Assert.Equal(0, r.ExitCode);
        Assert.StartsWith("Usage: xen-livepatch check <payload>", r.Stdout, StringComparison.Ordinal);
    }
}
