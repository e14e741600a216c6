using XenLivepatch.TestKit;

namespace XenLivepatch.Cli.Tests;

/// <summary>
/// Payloads made on the host by <c>xen-livepatch build</c> for Debian's real Xen 4.17 under QEMU, from its
/// build-id and <c>/proc/xen/xensyms</c> alone (no xen-syms: old sizes are distances to the next symbol), are
/// loaded, stacked, reverted and unloaded by Debian's C <c>xen-livepatch</c>; the extraversion flips. One boot.
/// </summary>
public class XenQemuBuildTests
{
    private static string Compile(string name, string text) =>
        Tool.CompileC("#pragma GCC visibility push(hidden)\n" + text, Repo.TempDirectory("qemu-" + name), name, "gcc",
            "-O2", "-fpic", "-mno-red-zone", "-fcf-protection=none", "-ffunction-sections", "-fno-asynchronous-unwind-tables", "-fno-common");

    private const string Script = """
        set -e
        cat /sys/hypervisor/version/extra > out/extra-before
        xen-livepatch load xen_built_world.livepatch
        xen-livepatch list > out/list-applied
        cat /sys/hypervisor/version/extra > out/extra-applied
        xen-livepatch load xen_built_bye.livepatch
        cat /sys/hypervisor/version/extra > out/extra-stacked
        xen-livepatch revert xen_built_bye
        cat /sys/hypervisor/version/extra > out/extra-unstacked
        xen-livepatch revert xen_built_world
        cat /sys/hypervisor/version/extra > out/extra-reverted
        xen-livepatch unload xen_built_bye
        xen-livepatch unload xen_built_world
        xen-livepatch list > out/list-unloaded
        """;

    [Fact]
    public void Payloads_built_from_xensyms_are_applied_stacked_and_reverted_by_real_xen()
    {
        var (buildId, xensyms) = XenQemu.Symbols();
        string work = Repo.TempDirectory("qemu-built");
        string symbols = Path.Combine(work, "xensyms");
        File.WriteAllText(symbols, xensyms);
        string files = Path.Combine(work, "in");
        Directory.CreateDirectory(files);
        string hello = Path.Combine(files, "xen_built_world.livepatch");
        string bye = Path.Combine(files, "xen_built_bye.livepatch");
        string[] target = ["--symbols", symbols, "--build-id", buildId];

        var built = CliRun.Ours(["build", "-o", hello, .. target, "--metadata", "LIVEPATCH_BUILT",
            Compile("world", "const char *xen_extra_version(void) { return \"Built World\"; }")]);
        Assert.True(built.ExitCode == 0, built.Stdout + built.Stderr);
        var stacked = CliRun.Ours(["build", "-o", bye, .. target, "--depends-on", hello,
            Compile("bye", "const char *xen_extra_version(void) { return \"Built Bye\"; }")]);
        Assert.True(stacked.ExitCode == 0, stacked.Stdout + stacked.Stderr);

        // One CPU: Xen's 30 ms rendezvous cannot time out (EBUSY) while the emulating host is busy.
        var r = XenQemu.Run(files, Script, options: ["--smp", "1"]);

        Assert.True(r.ScriptExitCode == 0, $"the script exited {r.ScriptExitCode}:\n{r.RunLog}");
        Assert.Equal(buildId, r.BuildId);
        string before = r.File("extra-before").Trim();
        Assert.NotEqual("Built World", before);
        Assert.Equal("Built World", r.File("extra-applied").Trim());
        Assert.Equal("Built Bye", r.File("extra-stacked").Trim());
        Assert.Equal("Built World", r.File("extra-unstacked").Trim());
        Assert.Equal(before, r.File("extra-reverted").Trim());
        Assert.Matches(@"(?m)^xen_built_world\s+\|\s+APPLIED\s+\|\s+LIVEPATCH_BUILT\s*$", r.File("list-applied"));
        Assert.Contains("Nothing to list", r.File("list-unloaded"), StringComparison.Ordinal);
        Assert.Contains("(XEN) livepatch: xen_built_world finished APPLY with rc=0", r.SerialLog, StringComparison.Ordinal);
        Assert.Contains("(XEN) livepatch: xen_built_bye finished APPLY with rc=0", r.SerialLog, StringComparison.Ordinal);
        Assert.DoesNotContain("FATAL PAGE FAULT", r.SerialLog, StringComparison.Ordinal);
    }
}
