using System.Security.Cryptography;
using XenLivepatch.Abi;

namespace XenLivepatch.Sandbox.Tests;

/// <summary>
/// Hooks with Xen's semantics, and failures that must leave everything as it was: a vCPU held past the
/// deadline, a vetoing pre-apply hook, a failing apply action hook — the state and the text bytes unchanged.
/// </summary>
[Collection("sandbox")]
public class HookAndFaultTests
{
    private const int EINVAL = -(int)XenErrno.EINVAL;

    // The hypervisor's text, as bytes: what must not change when an action fails.
    private static string TextHash(SandboxHost host)
    {
        ulong start = host.Image.Symbols.TextStart;
        var bytes = new byte[(int)(host.Image.Symbols.TextEnd - start)];
        Assert.Equal(Hypervisor.MemoryReadStatus.Ok, host.Memory.Read(start, bytes));
        return Convert.ToHexString(SHA256.HashData(bytes));
    }

    [Fact]
    public void A_vcpu_held_past_the_deadline_fails_the_action_with_EBUSY_and_nothing_is_written()
    {
        using var host = SandboxArtifacts.Boot();
        // No cap in reach: the held vCPU runs (it spins inside the hypervisor), so its own timeout fails the round.
        host.Vcpus.ExtensionCap = TimeSpan.FromMinutes(10);
        var d = new Driver(host);
        Assert.Null(d.Upload("xen_hello_world"));
        string text = TextHash(host);
        host.HoldGate = true;
        host.Vcpus.RequestHold(1);
        Assert.True(SmokeTests.SpinUntil(() => host.Held >= 1), "vCPU 1 did not enter the hold hypercall");
        var r = d.Act("xen_hello_world", LivepatchAction.Apply, timeoutNs: 20_000_000);
        Assert.Equal((0, (int?)-(int)XenErrno.EBUSY, (LivepatchState?)LivepatchState.Checked), r);
        Assert.Equal(text, TextHash(host));
        Assert.Equal(-(int)XenErrno.EBUSY, host.Vcpus.Timings[^1].Rc);
        Assert.True(host.Vcpus.Timings[^1].PauseNs >= 20_000_000, $"failed before the deadline: {host.Vcpus.Timings[^1].PauseNs} ns");
        host.HoldGate = false;
        // Released, the same payload applies.
        Assert.Equal((0, (int?)0, (LivepatchState?)LivepatchState.Applied), d.Act("xen_hello_world", LivepatchAction.Apply));
        Assert.Equal("Hello World", d.Seen());
    }

    [Fact]
    public void A_vetoing_pre_apply_hook_returns_its_error_and_nothing_is_written()
    {
        using var host = SandboxArtifacts.Boot();
        var d = new Driver(host);
        Assert.Null(d.Upload("xen_prepost_hooks_fail"));
        string text = TextHash(host);
        var r = d.Act("xen_prepost_hooks_fail", LivepatchAction.Apply);
        Assert.Equal((EINVAL, (int?)EINVAL, (LivepatchState?)LivepatchState.Checked), r);
        Assert.Equal(text, TextHash(host));
        Assert.Equal("-sandbox", d.Seen());
        Assert.True(SmokeTests.SpinUntil(() => host.HookLog.Contains("pre_apply_hook: refusing.")));
        Assert.Equal(0, host.Bugs);
    }

    [Fact]
    public void A_failing_apply_action_hook_leaves_the_payload_checked()
    {
        using var host = SandboxArtifacts.Boot();
        var d = new Driver(host);
        Assert.Null(d.Upload("xen_action_hooks_noapply"));
        string text = TextHash(host);
        var r = d.Act("xen_action_hooks_noapply", LivepatchAction.Apply);
        Assert.Equal((0, (int?)EINVAL, (LivepatchState?)LivepatchState.Checked), r);
        Assert.Equal(text, TextHash(host));
        Assert.True(SmokeTests.SpinUntil(() => host.HookLog.Contains("noapply post_apply_hook: nothing applied, as expected.")), string.Join("|", host.HookLog));
        Assert.Equal(0, host.Bugs);
    }

    [Fact]
    public void Action_hooks_replace_the_patching()
    {
        using var host = SandboxArtifacts.Boot();
        var d = new Driver(host);
        Assert.Null(d.Upload("xen_action_hooks"));
        string text = TextHash(host);
        Assert.Equal((0, (int?)0, (LivepatchState?)LivepatchState.Applied), d.Act("xen_action_hooks", LivepatchAction.Apply));
        Assert.Equal("-sandbox", d.Seen());
        Assert.Equal(text, TextHash(host));
        Assert.Equal((0, (int?)0, (LivepatchState?)LivepatchState.Checked), d.Act("xen_action_hooks", LivepatchAction.Revert));
        Assert.True(SmokeTests.SpinUntil(() => host.HookLog.Contains("action revert_hook: functions marked reverted.")));
        Assert.Equal(0, host.Bugs);
    }

    [Fact]
    public void Vetoing_hooks_can_refuse_a_revert_and_forbid_replace()
    {
        using var host = SandboxArtifacts.Boot();
        var d = new Driver(host);
        Assert.Null(d.Upload("xen_prepost_hooks"));
        Assert.Equal((0, (int?)0, (LivepatchState?)LivepatchState.Applied), d.Act("xen_prepost_hooks", LivepatchAction.Apply));
        Assert.Equal("Hello World", d.Seen());
        // REPLACE is refused while a payload with vetoing hooks is applied.
        Assert.Null(d.Upload("xen_replace", "xen_replace_world"));
        Assert.Equal(-(int)XenErrno.EOPNOTSUPP, host.Core.Action("xen_replace", LivepatchAction.Replace));
        // The first pre-revert vetoes with -1 (EPERM); the second lets it through.
        Assert.Equal((-(int)XenErrno.EPERM, (int?)-(int)XenErrno.EPERM, (LivepatchState?)LivepatchState.Applied), d.Act("xen_prepost_hooks", LivepatchAction.Revert));
        Assert.Equal("Hello World", d.Seen());
        Assert.Equal((0, (int?)0, (LivepatchState?)LivepatchState.Checked), d.Act("xen_prepost_hooks", LivepatchAction.Revert));
        Assert.Equal("-sandbox", d.Seen());
        Assert.True(SmokeTests.SpinUntil(() => host.HookLog.Contains("post_revert_hook: counts as expected.")), string.Join("|", host.HookLog));
        Assert.Equal(0, host.Bugs);
    }

    [Fact]
    public void Expectations_are_checked_against_the_running_code()
    {
        using var host = SandboxArtifacts.Boot();
        var d = new Driver(host);
        Assert.Null(d.Upload("xen_expectations_fail"));
        Assert.Equal((EINVAL, (int?)0, (LivepatchState?)LivepatchState.Checked), d.Act("xen_expectations_fail", LivepatchAction.Apply));
        Assert.Equal((0, (int?)0, (LivepatchState?)LivepatchState.Applied), d.Load("xen_expectations"));
        Assert.Equal("Hello World", d.Seen());
    }
}
