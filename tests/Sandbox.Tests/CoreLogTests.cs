using System.Text.RegularExpressions;
using XenLivepatch.Abi;
using XenLivepatch.TestKit;

namespace XenLivepatch.Sandbox.Tests;

/// <summary>
/// What the core logs, line by line, for every kind of action the sandbox runs: an apply and a revert that
/// the core writes, the same with action hooks, a failing apply hook, a REPLACE over a stack, refusals
/// (not the top, data after a revert, expectations), a REPLACE aborted after its reverts. Xen prints these
/// lines from the pause; the core prints them after it, in the same order (tests/Data/golden/sandbox/core-log.txt).
/// </summary>
[Collection("sandbox")]
public partial class CoreLogTests
{
    [GeneratedRegex("actual:[0-9a-f]+")]
    private static partial Regex ActualBytes();

    [Fact]
    public void The_core_logs_each_action_as_xen_does()
    {
        using var host = SandboxArtifacts.Boot();
        var lines = new List<string>();
        host.Core.Log += line =>
        {
            lock (lines)
                lines.Add(line);
        };
        var d = new Driver(host);
        void Step(string what)
        {
            lock (lines)
                lines.Add($"== {what}");
        }

        Step("apply and revert, written by the core");
        Assert.Equal((0, (int?)0, (LivepatchState?)LivepatchState.Applied), d.Load("xen_hello_world"));
        Assert.Equal((0, (int?)0, (LivepatchState?)LivepatchState.Checked), d.Act("xen_hello_world", LivepatchAction.Revert));
        Step("apply after a revert, with .bss");
        Assert.Equal((0, (int?)-(int)XenErrno.EINVAL, (LivepatchState?)LivepatchState.Checked), d.Act("xen_hello_world", LivepatchAction.Apply));
        Assert.Equal(0, host.Core.Action("xen_hello_world", LivepatchAction.Unload));

        Step("action hooks");
        Assert.Equal((0, (int?)0, (LivepatchState?)LivepatchState.Applied), d.Load("xen_action_hooks"));
        Assert.Equal((0, (int?)0, (LivepatchState?)LivepatchState.Checked), d.Act("xen_action_hooks", LivepatchAction.Revert));
        Assert.Equal(0, host.Core.Action("xen_action_hooks", LivepatchAction.Unload));
        Step("an apply hook that fails");
        Assert.Null(d.Upload("xen_action_hooks_noapply"));
        Assert.Equal((0, (int?)-(int)XenErrno.EINVAL, (LivepatchState?)LivepatchState.Checked), d.Act("xen_action_hooks_noapply", LivepatchAction.Apply));
        Assert.Equal(0, host.Core.Action("xen_action_hooks_noapply", LivepatchAction.Unload));

        Step("pre and post hooks, NOPs");
        Assert.Equal((0, (int?)0, (LivepatchState?)LivepatchState.Applied), d.Load("xen_prepost_hooks"));
        // Its pre-revert hook vetoes the first revert (-1), not the second.
        Assert.Equal((-1, (int?)-1, (LivepatchState?)LivepatchState.Applied), d.Act("xen_prepost_hooks", LivepatchAction.Revert));
        Assert.Equal((0, (int?)0, (LivepatchState?)LivepatchState.Checked), d.Act("xen_prepost_hooks", LivepatchAction.Revert));
        Assert.Equal(0, host.Core.Action("xen_prepost_hooks", LivepatchAction.Unload));
        Assert.Equal((0, (int?)0, (LivepatchState?)LivepatchState.Applied), d.Load("xen_nop"));
        Assert.Equal((0, (int?)0, (LivepatchState?)LivepatchState.Checked), d.Act("xen_nop", LivepatchAction.Revert));
        Assert.Equal(0, host.Core.Action("xen_nop", LivepatchAction.Unload));

        Step("a stack, a revert that is not the top's, and REPLACE");
        Assert.Equal((0, (int?)0, (LivepatchState?)LivepatchState.Applied), d.Load("xen_hello_world"));
        Assert.Equal((0, (int?)0, (LivepatchState?)LivepatchState.Applied), d.Load("xen_bye_world"));
        Assert.Equal((-(int)XenErrno.EBUSY, (int?)0, (LivepatchState?)LivepatchState.Applied), d.Act("xen_hello_world", LivepatchAction.Revert));
        Assert.Null(d.Upload("xen_replace", "xen_replace_world"));
        Assert.Equal((0, (int?)0, (LivepatchState?)LivepatchState.Applied), d.Act("xen_replace", LivepatchAction.Replace));
        Assert.Equal((0, (int?)0, (LivepatchState?)LivepatchState.Checked), d.Act("xen_replace", LivepatchAction.Revert));
        foreach (string name in new[] { "xen_replace", "xen_bye_world", "xen_hello_world" })
            Assert.Equal(0, host.Core.Action(name, LivepatchAction.Unload));

        Step("expectations");
        Assert.Equal((0, (int?)0, (LivepatchState?)LivepatchState.Applied), d.Load("xen_expectations"));
        Assert.Equal((0, (int?)0, (LivepatchState?)LivepatchState.Checked), d.Act("xen_expectations", LivepatchAction.Revert));
        Assert.Null(d.Upload("xen_expectations_fail"));
        Assert.Equal((-(int)XenErrno.EINVAL, (int?)0, (LivepatchState?)LivepatchState.Checked), d.Act("xen_expectations_fail", LivepatchAction.Apply));
        Step("REPLACE whose expectations fail once everything is reverted");
        Assert.Null(d.Upload("xen_hello_world"));
        Assert.Equal((0, (int?)0, (LivepatchState?)LivepatchState.Applied), d.Act("xen_hello_world", LivepatchAction.Apply));
        Assert.Equal((0, (int?)-(int)XenErrno.EINVAL, (LivepatchState?)LivepatchState.Checked), d.Act("xen_expectations_fail", LivepatchAction.Replace));
        Assert.Equal("xen_expectations:Checked,xen_expectations_fail:Checked,xen_hello_world:Checked", d.List());

        Assert.True(host.WaitForEntries(10, TimeSpan.FromSeconds(10)), "the vCPUs stopped running");
        string log;
        lock (lines)
            log = string.Join("\n", lines) + "\n";
        // The bytes an expectation finds are the image's, which the compiler decides.
        Golden.Assert(ActualBytes().Replace(log, "actual:(the image's bytes)"), "sandbox/core-log.txt");
    }
}
