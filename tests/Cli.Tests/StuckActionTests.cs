using XenLivepatch.Abi;
using XenLivepatch.Hypervisor;
using XenLivepatch.TestKit;

namespace XenLivepatch.Cli.Tests;

/// <summary>
/// A payload whose action collided with another payload's pending one: Xen 4.17 has already set its rc to -EAGAIN
/// and leaves it there (reference §7.4, quirk 4), so Xen's tool would refuse every action on it for good. Our tool
/// asks the hypervisor instead, which clears it; the seed profile does not leave the rc stuck at all.
/// </summary>
public class StuckActionTests
{
    /// <summary>CPUs that run an action only when the test says so.</summary>
    private sealed class ManualCpus : ILivepatchCpus
    {
        private readonly Queue<(Action Work, Action<int> Completed)> _pending = new();

        public void Schedule(Action work, ulong timeoutNs, Action<int> completed, Action? prepare = null) => _pending.Enqueue((work, completed));

        public void RunPending()
        {
            while (_pending.TryDequeue(out var a))
            {
                a.Work();
                a.Completed(0);
            }
        }
    }

    // The seed's payloads: livepatch_func version 1, no .livepatch.xen_depends.
    private static readonly Lazy<(string Hello, string Nop)> s_seed = new(() =>
    {
        var image = LivepatchFixtures.Image();
        return (LivepatchFixtures.BuildPayload(image, "seed_hello", ["hello_world.c"], "--cflags", "-DLIVEPATCH_V1", "--no-xen-depends"),
                LivepatchFixtures.BuildPayload(image, "seed_nop", ["nop.c"], "--cflags", "-DLIVEPATCH_V1", "--no-xen-depends"));
    });

    private static (OfflineXen Xen, ManualCpus Cpus) Collided(LivepatchProfile profile)
    {
        var cpus = new ManualCpus();
        var xen = OfflineXen.Create(profile: profile, cpus: cpus);
        bool seed = profile == LivepatchProfile.Seed2016;
        Assert.Null(xen.Core.Upload("first", File.ReadAllBytes(seed ? s_seed.Value.Hello : Payloads.Hello)));
        Assert.Null(xen.Core.Upload("second", File.ReadAllBytes(seed ? s_seed.Value.Nop : Payloads.Nop)));
        // first's apply is pending; second's collides with it.
        Assert.Equal(0, xen.Core.Action("first", LivepatchAction.Apply));
        Assert.Equal(-(int)XenErrno.EBUSY, xen.Core.Action("second", LivepatchAction.Apply, flags: LivepatchActionFlags.ApplyNoDeps));
        cpus.RunPending();
        return (xen, cpus);
    }

    [Fact]
    public void Xen_4_17_leaves_the_collided_payload_in_progress_and_our_tool_gets_it_out()
    {
        var (xen, cpus) = Collided(LivepatchProfile.Xen417);
        Assert.Equal((LivepatchState.Checked, -(int)XenErrno.EAGAIN), (xen.Core.Find("second")!.State, xen.Core.Find("second")!.Rc));
        var host = CliRun.Host(xen);
        // A revert is not allowed in CHECKED: nothing to ask the hypervisor, Xen's text.
        Assert.Equal(new CliRun(2, "", "Cannot execute revert.\nOperation already in progress.\n"), CliRun.With(host, "revert", "second"));
        // An apply is: the hypervisor takes it, and the payload applies (over first: --nodeps).
        var runsDuringTheWait = new ToolHost { OpenTransport = host.OpenTransport, Delay = (_, _) => { cpus.RunPending(); return Task.CompletedTask; } };
        Assert.Equal(new CliRun(0, "Applying second... completed\n", ""), CliRun.With(runsDuringTheWait, "apply", "second", "--nodeps"));
        Assert.Equal((LivepatchState.Applied, 0), (xen.Core.Find("second")!.State, xen.Core.Find("second")!.Rc));
    }

    [Fact]
    public void An_action_really_pending_still_gets_xens_text()
    {
        var cpus = new ManualCpus();
        var xen = OfflineXen.Create(cpus: cpus);
        CliRun.With(xen, "upload", "xen_hello_world", Payloads.Hello);
        Assert.Equal(0, xen.Core.Action("xen_hello_world", LivepatchAction.Apply));
        Assert.Equal(new CliRun(2, "", "Cannot execute apply.\nOperation already in progress.\n"), CliRun.With(xen, "apply", "xen_hello_world"));
        Assert.Equal(new CliRun(2, "", "Cannot execute unload.\nOperation already in progress.\n"), CliRun.With(xen, "unload", "xen_hello_world"));
        cpus.RunPending();
        Assert.Equal(LivepatchState.Applied, xen.Core.Find("xen_hello_world")!.State);
    }

    [Fact]
    public void The_seed_profile_gives_the_collided_payload_its_rc_back()
    {
        var (xen, _) = Collided(LivepatchProfile.Seed2016);
        Assert.Equal((LivepatchState.Checked, 0), (xen.Core.Find("second")!.State, xen.Core.Find("second")!.Rc));
    }
}
