using XenLivepatch.Abi;
using XenLivepatch.Control;
using XenLivepatch.Hypervisor;
using XenLivepatch.Sandbox;
using XenLivepatch.TestKit;

namespace XenLivepatch.Host.Tests;

/// <summary>Tests that boot the sandbox (one at a time: it maps its image at a fixed address).</summary>
[CollectionDefinition("sandbox", DisableParallelization = true)]
public sealed class SandboxCollection : ICollectionFixture<SandboxFixture>;

/// <summary>
/// One sandbox hypervisor for the collection (its image mapped, two vCPUs entering it), reached by the control
/// library over the in-process transport with the same bytes as the hypercalls: sysctls and xen_version.
/// </summary>
public sealed class SandboxFixture : IDisposable
{
    /// <summary>Each action's deadline in tests: 1 s, not Xen's 30 ms (test processes share two cores).</summary>
    public const uint TimeoutNs = 1_000_000_000;

    public SandboxFixture() => Host = SandboxHost.Start(new SandboxOptions { ImagePath = SandboxBuild.Image, Vcpus = 2 });

    public SandboxHost Host { get; }

    public LivepatchClient Client() => new(InProcessTransport.Create(
        (sysctl, buffers) => Host.Handler.Handle(sysctl, new GuestBuffers(buffers), privileged: true),
        Host.Core.Profile.Abi, "the sandbox in this process",
        (cmd, arg, buffers) => Host.Handler.XenVersion(cmd, arg, new GuestBuffers(buffers), privileged: true)));

    public ConvergeRunner Runner => new() { TimeoutNs = TimeoutNs };

    /// <summary>Takes every payload off: the applied stack reverted top first (a veto is asked again), all unloaded.</summary>
    public void Reset()
    {
        var core = Host.Core;
        for (int guard = 0; core.Applied.Count > 0 && guard < 50; guard++)
        {
            core.Action(core.Applied[^1].Name, LivepatchAction.Revert, TimeoutNs);
            Assert.True(core.WaitIdle(TimeSpan.FromSeconds(30)), "a revert did not finish");
        }
        Assert.Empty(core.Applied);
        foreach (var p in core.Payloads)
            Assert.Equal(0, core.Action(p.Name, LivepatchAction.Unload));
        Assert.Empty(core.Payloads);
    }

    /// <summary>Runs an action as a tool would and waits for its outcome; answers the hypercall's result or the action's rc.</summary>
    public int Act(string name, LivepatchAction action, LivepatchActionFlags flags = LivepatchActionFlags.None)
    {
        int rc = Host.Core.Action(name, action, TimeoutNs, flags);
        Assert.True(Host.Core.WaitIdle(TimeSpan.FromSeconds(30)), $"{action} {name} did not finish");
        return rc != 0 ? rc : Host.Core.Find(name)?.Rc ?? 0;
    }

    /// <summary>What the vCPUs read from XENVER_extraversion now.</summary>
    public string Extraversion()
    {
        Assert.True(Host.WaitForEntries(20, TimeSpan.FromSeconds(10)), "the vCPUs stopped running");
        return Host.LastExtraVersion(0);
    }

    public void Dispose() => Host.Dispose();
}
