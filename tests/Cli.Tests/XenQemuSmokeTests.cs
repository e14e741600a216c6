using System.Text.RegularExpressions;
using XenLivepatch.TestKit;

namespace XenLivepatch.Cli.Tests;

/// <summary>
/// The real-hypervisor oracle works: Debian's Xen 4.17 boots under QEMU (tests/qemu/run.sh) with a PV dom0,
/// where Debian's C <c>xen-livepatch</c> talks to it, and a payload built on the host patches it live.
/// Each test boots once (10-20 s); the first run downloads the Debian packages (tests/qemu/fetch.sh).
/// </summary>
public partial class XenQemuSmokeTests
{
    [GeneratedRegex("^[0-9a-f]{40}$")]
    private static partial Regex Sha1Hex();

    [Fact]
    public void Debians_xen_livepatch_lists_nothing_on_a_freshly_booted_hypervisor()
    {
        var r = XenQemu.Run(Repo.TempDirectory("xen-qemu-files"), "xen-livepatch list\n");

        Assert.True(r.ScriptExitCode == 0, $"xen-livepatch list exited {r.ScriptExitCode}:\n{r.RunLog}");
        Assert.Contains("Nothing to list", r.RunLog, StringComparison.Ordinal);
        Assert.Matches(Sha1Hex(), r.BuildId);
        Assert.Equal(File.ReadAllText(Path.Combine(XenQemu.CacheDirectory, "build-id")).Trim(), r.BuildId);
        Assert.Contains(r.XenSyms.Split('\n'), line => line.EndsWith(" xen_extra_version", StringComparison.Ordinal));
        Assert.Contains("(XEN) Xen version 4.17", r.SerialLog, StringComparison.Ordinal);
    }

    private const string LoadRevertUnload = """
        set -e
        cat /sys/hypervisor/version/extra > out/extra-before
        xen-livepatch load xen_hello_world.livepatch
        xen-livepatch list > out/list-applied
        cat /sys/hypervisor/version/extra > out/extra-applied
        xen-livepatch revert xen_hello_world
        cat /sys/hypervisor/version/extra > out/extra-reverted
        xen-livepatch unload xen_hello_world
        xen-livepatch list > out/list-unloaded
        """;

    [Fact]
    public void A_hello_world_payload_built_here_patches_xen_extra_version_until_reverted()
    {
        XenQemu.EnsureFetched();
        string files = Repo.TempDirectory("xen-hello-payload");
        Tool.Run("bash", Repo.Path("tests", "qemu", "build-hello-payload.sh"), files, XenQemu.HypervisorImage).EnsureSuccess();
        string imageBuildId = File.ReadAllText(Path.Combine(files, "xen-build-id")).Trim();
        Assert.Matches(Sha1Hex(), imageBuildId);

        // One CPU: Xen's 30 ms rendezvous cannot time out (EBUSY) while the emulating host is busy.
        var r = XenQemu.Run(files, LoadRevertUnload, options: ["--smp", "1"]);

        Assert.True(r.ScriptExitCode == 0, $"the script exited {r.ScriptExitCode}:\n{r.RunLog}");
        Assert.Equal(imageBuildId, r.BuildId);
        string before = r.File("extra-before").Trim();
        Assert.NotEqual("Hello World", before);
        Assert.Equal("Hello World", r.File("extra-applied").Trim());
        Assert.Equal(before, r.File("extra-reverted").Trim());
        Assert.Matches(@"(?m)^xen_hello_world\s+\|\s+APPLIED\s+\|\s+LIVEPATCH_RULEZ\s*$", r.File("list-applied"));
        Assert.Contains("Nothing to list", r.File("list-unloaded"), StringComparison.Ordinal);
        Assert.Contains("(XEN) livepatch: xen_hello_world finished APPLY with rc=0", r.SerialLog, StringComparison.Ordinal);
        Assert.Contains("(XEN) livepatch: xen_hello_world finished REVERT with rc=0", r.SerialLog, StringComparison.Ordinal);
    }
}
