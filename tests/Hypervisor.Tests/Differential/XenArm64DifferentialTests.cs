using System.Globalization;
using XenLivepatch.TestKit;

namespace XenLivepatch.Hypervisor.Tests;

/// <summary>
/// The differential against real arm64 Xen: <see cref="Arm64UploadCorpus"/> (the machine-independent mutations
/// of an arm64 hello-world payload plus arm64's relocations, patch rules and payload area) goes through Xen
/// 4.17.3 built for arm64 with live patching and Debian's arm64 tool under qemu-system-aarch64, step by step,
/// and through our core with the same hypervisor's symbols and build-id; every step's outcome (exit code and
/// errno) must be the same. The corpus, the steps and Xen's outcomes are kept in
/// tests/Data/xen-4.17-arm64/differential, so the comparison runs on every test run; the QEMU test runs the
/// corpus through the real hypervisor again (XLP_RECORD=1 rewrites the kept files from that run).
/// </summary>
public class XenArm64DifferentialTests
{
    private static string DataDir => Repo.Path("tests", "Data", "xen-4.17-arm64", "differential");

    private static List<string> RunOurs(string xensyms, string buildIdHex, List<Step> steps, Func<string, byte[]> file) =>
        XenDifferentialTests.RunOurs(LivepatchProfile.Xen417, Arm64Arch.Instance, null, xensyms, buildIdHex, steps, file);

    [Fact]
    public void Every_step_of_the_kept_arm64_corpus_ends_as_it_did_on_arm64_xen()
    {
        var (steps, xen, file) = XenDifferentialTests.ReadKept(DataDir);
        string xensyms = File.ReadAllText(Path.Combine(DataDir, "xensyms"));
        string buildId = File.ReadAllText(Path.Combine(DataDir, "build-id")).Trim();
        XenDifferentialTests.AssertSame(steps, xen, RunOurs(xensyms, buildId, steps, file));
        Assert.True(steps.Count >= 250, $"the arm64 corpus has {steps.Count} steps");
        // Both kinds of verdict are there for the arm64 rules: accepted and refused relocations, patches.
        string Outcome(string op, string name) => xen[steps.FindIndex(s => s.Op == op && s.Name == name)];
        Assert.Equal("0 -", Outcome("upload", "rel_call26"));
        Assert.Equal("1 75", Outcome("upload", "rel_call26_over"));
        Assert.Equal("1 95", Outcome("upload", "rel_ld_prel_lo19"));
        Assert.Equal("1 22", Outcome("upload", "old_size3"));
        Assert.Equal("1 75", Outcome("upload", "new_addr_backward_limit"));
        Assert.Equal("0 -", Outcome("apply", "new_addr_forward_limit"));
    }

    [Theory]
    [InlineData("new_addr_forward_limit", "outside the B's [-128 MiB, +128 MiB)")]
    [InlineData("new_addr_misaligned", "is not word aligned")]
    [InlineData("new_addr_forward_reach", null)]
    [InlineData("new_addr_backward_reach", null)]
    public void Check_accepts_what_xen_accepts_and_says_which_patches_become_a_break(string payload, string? why)
    {
        string xensyms = File.ReadAllText(Path.Combine(DataDir, "xensyms"));
        byte[] buildId = Convert.FromHexString(File.ReadAllText(Path.Combine(DataDir, "build-id")).Trim());
        Assert.True(OfflineHypervisor.TryFromXenSyms(xensyms, buildId, Elf.ElfMachine.AArch64, out var target, out string? error), error);
        var report = PayloadCheck.Run(payload, File.ReadAllBytes(Path.Combine(DataDir, "corpus", payload + ".livepatch")), target, LivepatchProfile.Xen417);
        Assert.Null(report.Error);
        var notes = report.Notes.Where(n => n.Contains("BRK #0x800", StringComparison.Ordinal)).ToList();
        if (why == null)
            Assert.Empty(notes);
        else
            Assert.Contains(why, Assert.Single(notes), StringComparison.Ordinal);
    }

    [Fact]
    public void The_arm64_corpus_goes_through_real_arm64_xen_under_qemu_as_through_our_core()
    {
        XenQemuArm64.EnsureFetched();
        string work = Repo.TempDirectory("differential-arm64");
        Tool.Run("bash", Repo.Path("tests", "qemu", "build-hello-payload.sh"), "--arch", "arm64", work, XenQemuArm64.XenSyms).EnsureSuccess();
        byte[] hello = File.ReadAllBytes(Path.Combine(work, "xen_hello_world.livepatch"));
        string listing = XenQemuArm64.XenSymsListing;
        var (files, steps) = Arm64UploadCorpus.Generate(hello, OldAddress(listing, "xen_extra_version"));
        string input = Path.Combine(work, "in");
        XenDifferentialTests.WriteCorpus(input, files, steps);
        var result = XenQemuArm64.Run(input, XenDifferentialTests.DomScript, TimeSpan.FromMinutes(5));
        var xen = result.File("results").Split('\n', StringSplitOptions.RemoveEmptyEntries).ToList();
        Assert.Equal(XenQemuArm64.BuildId, result.BuildId);
        var ours = RunOurs(listing, result.BuildId, steps, f => files.Single(x => x.File == f).Data);

        if (Environment.GetEnvironmentVariable("XLP_RECORD") == "1")
        {
            if (Directory.Exists(DataDir))
                Directory.Delete(DataDir, recursive: true);
            XenDifferentialTests.WriteCorpus(DataDir, files, steps);
            File.WriteAllLines(Path.Combine(DataDir, "xen-results.txt"), xen);
            File.WriteAllText(Path.Combine(DataDir, "xensyms"), listing);
            File.WriteAllText(Path.Combine(DataDir, "build-id"), result.BuildId + "\n");
        }
        foreach (string crash in new[] { "Panic on CPU", "Unexpected Trap", "Xen BUG", "Hardware Dom0 crashed" })
            Assert.False(result.SerialLog.Contains(crash, StringComparison.Ordinal), $"the corpus crashed Xen ({crash})");
        // The patches Xen takes but cannot encode as a B: it says so, and writes its break instruction instead.
        Assert.Contains("offset out of range", result.SerialLog, StringComparison.Ordinal);
        Assert.Contains("must be word aligned", result.SerialLog, StringComparison.Ordinal);
        XenDifferentialTests.AssertSame(steps, xen, ours);
    }

    private static ulong OldAddress(string listing, string name)
    {
        foreach (string line in listing.Split('\n'))
        {
            var p = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
            if (p.Length == 3 && p[2] == name)
                return ulong.Parse(p[0], NumberStyles.HexNumber, CultureInfo.InvariantCulture);
        }
        throw new KeyNotFoundException($"{name} is not in the hypervisor's symbols");
    }
}
