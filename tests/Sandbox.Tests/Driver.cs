using XenLivepatch.Abi;
using XenLivepatch.Hypervisor;

namespace XenLivepatch.Sandbox.Tests;

/// <summary>Drives a sandbox's core the way a tool does: an action, then its outcome once the vCPUs have run it.</summary>
internal sealed class Driver(SandboxHost host)
{
    public SandboxHost Host { get; } = host;

    private LivepatchCore Core => Host.Core;

    public LivepatchError? Upload(string name, string? file = null) => Core.Upload(name, SandboxArtifacts.Payload(file ?? name));

    /// <summary>ACTION, then wait for rc to leave -EAGAIN: (hypercall result, rc, state), or (rc, null, null) when the payload is gone.</summary>
    /// <remarks>
    /// The default timeout is 1 s, not Xen's 30 ms: test processes share two cores, and a vCPU thread the OS
    /// does not schedule for 30 ms would fail an action that these tests expect to succeed. The deadline tests
    /// pass their own timeout.
    /// </remarks>
    public (int Hypercall, int? Rc, LivepatchState? State) Act(string name, LivepatchAction action, LivepatchActionFlags flags = 0, uint timeoutNs = 1_000_000_000)
    {
        int rc = Core.Action(name, action, timeoutNs, flags);
        var p = Core.Find(name);
        if (p == null)
            return (rc, null, null);
        Assert.True(SmokeTests.SpinUntil(() => p.Rc != -(int)XenErrno.EAGAIN && !Core.ActionPending), $"{action} {name} did not complete");
        return (rc, p.Rc, p.State);
    }

    /// <summary>upload + apply, as the tool's <c>load</c> does (unloading when the apply fails).</summary>
    public (int Hypercall, int? Rc, LivepatchState? State) Load(string name)
    {
        Assert.Null(Upload(name));
        var r = Act(name, LivepatchAction.Apply);
        if (r.Hypercall != 0 || r.Rc != 0)
            Core.Action(name, LivepatchAction.Unload);
        return r;
    }

    /// <summary>What every vCPU sees after some more entries.</summary>
    public string Seen()
    {
        Assert.True(Host.WaitForEntries(50, TimeSpan.FromSeconds(10)), "the vCPUs stopped running");
        var values = Host.Vcpus.Stats.Select(s => s.Last).Distinct().ToList();
        return Assert.Single(values);
    }

    public int MinorSeen()
    {
        Assert.True(Host.WaitForEntries(50, TimeSpan.FromSeconds(10)), "the vCPUs stopped running");
        long marks = Host.Vcpus.Stats.Sum(s => s.Iterations);
        _ = marks;
        return Host.Vcpus.Stats[0].LastMinor;
    }

    public string List() => string.Join(",", Core.Payloads.Select(p => $"{p.Name}:{p.State}"));
}
