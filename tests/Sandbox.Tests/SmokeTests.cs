using XenLivepatch.Abi;
using XenLivepatch.TestKit;

namespace XenLivepatch.Sandbox.Tests;

[Collection("sandbox")]
public class SmokeTests
{
    [Fact]
    public void Vcpus_run_the_image_and_see_its_version()
    {
        using var host = SandboxArtifacts.Boot();
        Assert.True(host.WaitForEntries(1000, TimeSpan.FromSeconds(10)));
        foreach (var s in host.Vcpus.Stats)
        {
            Assert.Equal("-sandbox", s.Last);
            Assert.Equal(new[] { 17 }, s.MinorVersions.Keys);
        }
    }

    [Fact]
    public void Hello_world_changes_what_running_vcpus_see_and_revert_restores_it()
    {
        using var host = SandboxArtifacts.Boot();
        Assert.Null(host.Core.Upload("xen_hello_world", SandboxArtifacts.Payload("xen_hello_world")));
        Assert.Equal(0, host.Core.Action("xen_hello_world", LivepatchAction.Apply));
        Assert.True(SpinUntil(() => host.Core.Find("xen_hello_world")!.Rc != -(int)XenErrno.EAGAIN));
        Assert.Equal((LivepatchState.Applied, 0), (host.Core.Find("xen_hello_world")!.State, host.Core.Find("xen_hello_world")!.Rc));
        Assert.True(host.WaitForEntries(100, TimeSpan.FromSeconds(10)));
        Assert.All(host.Vcpus.Stats, s => Assert.Equal("Hello World", s.Last));
        Assert.Equal(0, host.Core.Action("xen_hello_world", LivepatchAction.Revert));
        Assert.True(SpinUntil(() => host.Core.Find("xen_hello_world")!.Rc != -(int)XenErrno.EAGAIN));
        Assert.True(host.WaitForEntries(100, TimeSpan.FromSeconds(10)));
        Assert.All(host.Vcpus.Stats, s => Assert.Equal("-sandbox", s.Last));
        Assert.Equal(0, host.Bugs);
    }

    internal static bool SpinUntil(Func<bool> condition, int milliseconds = 5000) => Poll.Until(condition, milliseconds);
}
