using XenLivepatch.Abi;

namespace XenLivepatch.Sandbox.Tests;

/// <summary>
/// Xen's own livepatch test sequence (reference §6.3, livepatch_test.pl), step by step, against the sandbox
/// while its two vCPUs run guest entries throughout: each step's result, and the value the vCPUs read.
/// </summary>
[Collection("sandbox")]
public class XenSequenceTests
{
    private const int EINVAL = -(int)XenErrno.EINVAL;
    private const int ENOENT = -(int)XenErrno.ENOENT;

    [Fact]
    public void The_sequence_of_xens_livepatch_test()
    {
        using var host = SandboxArtifacts.Boot();
        var d = new Driver(host);
        string original = d.Seen();
        Assert.Equal("-sandbox", original);

        // 1-2. Empty list; reverting an unknown payload fails.
        Assert.Equal("", d.List());
        Assert.Equal((ENOENT, (int?)null, (LivepatchState?)null), d.Act("xen_hello_world", LivepatchAction.Revert));

        // 3-5. load hello_world; a second upload under the name fails with EEXIST.
        Assert.Equal((0, (int?)0, (LivepatchState?)LivepatchState.Applied), d.Load("xen_hello_world"));
        Assert.Equal("Hello World", d.Seen());
        Assert.Equal(XenErrno.EEXIST, d.Upload("xen_hello_world")?.Errno);
        Assert.Equal("xen_hello_world:Applied", d.List());
        Assert.True(SmokeTests.SpinUntil(() => host.HookLog.Contains("Hook executing.") && host.HookLog.Contains("hi_func: Hi! (called times) 1")), string.Join("|", host.HookLog));

        // 6-7. revert restores the original; unload; a second unload fails.
        Assert.Equal((0, (int?)0, (LivepatchState?)LivepatchState.Checked), d.Act("xen_hello_world", LivepatchAction.Revert));
        Assert.Equal(original, d.Seen());
        Assert.True(SmokeTests.SpinUntil(() => host.HookLog.Contains("Hook unloaded.") && host.HookLog.Contains("check_fnc: Hi func called 1") && host.HookLog.Contains("hi_func: Hi! (called times) 2")), string.Join("|", host.HookLog));
        Assert.Equal(0, host.Core.Action("xen_hello_world", LivepatchAction.Unload));
        Assert.Equal(ENOENT, host.Core.Action("xen_hello_world", LivepatchAction.Unload));

        // 8. hello again, then bye stacked on it.
        Assert.Equal((0, (int?)0, (LivepatchState?)LivepatchState.Applied), d.Load("xen_hello_world"));
        Assert.Equal((0, (int?)0, (LivepatchState?)LivepatchState.Applied), d.Load("xen_bye_world"));
        Assert.Equal("Bye World!", d.Seen());

        // 9. replace reverts bye then hello (newest first) and applies replace; readers see 15 characters.
        Assert.Null(d.Upload("xen_replace", "xen_replace_world"));
        Assert.Equal((0, (int?)0, (LivepatchState?)LivepatchState.Applied), d.Act("xen_replace", LivepatchAction.Replace));
        Assert.Equal("Hello Again Wor", d.Seen());
        Assert.Equal("xen_hello_world:Checked,xen_bye_world:Checked,xen_replace:Applied", d.List());

        // 10. hello has .bss: re-applying it fails in rc; bye depends on hello, not on replace; replace: no action.
        Assert.Equal((0, (int?)EINVAL, (LivepatchState?)LivepatchState.Checked), d.Act("xen_hello_world", LivepatchAction.Apply));
        Assert.Equal((EINVAL, (int?)0, (LivepatchState?)LivepatchState.Checked), d.Act("xen_bye_world", LivepatchAction.Apply));
        Assert.Equal((0, (int?)0, (LivepatchState?)LivepatchState.Applied), d.Act("xen_replace", LivepatchAction.Apply));
        Assert.Equal("Hello Again Wor", d.Seen());

        // 11. revert replace, unload all three.
        Assert.Equal((0, (int?)0, (LivepatchState?)LivepatchState.Checked), d.Act("xen_replace", LivepatchAction.Revert));
        Assert.Equal(original, d.Seen());
        foreach (string n in new[] { "xen_replace", "xen_bye_world", "xen_hello_world" })
            Assert.Equal(0, host.Core.Action(n, LivepatchAction.Unload));
        Assert.Equal("", d.List());

        // 12. nop: load, revert, apply again (no data), xen_minor_version returns something else.
        Assert.Equal(17, d.MinorSeen());
        Assert.Equal((0, (int?)0, (LivepatchState?)LivepatchState.Applied), d.Load("xen_nop"));
        Assert.NotEqual(17, d.MinorSeen());
        Assert.Equal((0, (int?)0, (LivepatchState?)LivepatchState.Checked), d.Act("xen_nop", LivepatchAction.Revert));
        Assert.Equal(17, d.MinorSeen());
        Assert.Equal((0, (int?)0, (LivepatchState?)LivepatchState.Applied), d.Act("xen_nop", LivepatchAction.Apply));
        Assert.NotEqual(17, d.MinorSeen());

        // 13-14. unload while applied is refused; revert, unload.
        Assert.Equal(EINVAL, host.Core.Action("xen_nop", LivepatchAction.Unload));
        Assert.Equal((0, (int?)0, (LivepatchState?)LivepatchState.Checked), d.Act("xen_nop", LivepatchAction.Revert));
        Assert.Equal(0, host.Core.Action("xen_nop", LivepatchAction.Unload));
        Assert.Equal(17, d.MinorSeen());
        Assert.Equal("", d.List());
        Assert.Equal(0, host.Bugs);
    }
}
