using XenLivepatch.Abi;
using XenLivepatch.Hypervisor;

namespace XenLivepatch.Sandbox.Tests;

/// <summary>
/// The rendezvous starts only when every vCPU is running, and the pause is the writes: a vCPU that is away
/// holds nobody, and the writes worked out before the pause land byte for byte.
/// </summary>
[Collection("sandbox")]
public class RendezvousTests
{
    [Fact]
    public void While_a_vcpu_is_away_the_others_keep_entering_the_image_and_the_action_waits_for_it()
    {
        using var host = SandboxArtifacts.Boot();
        var d = new Driver(host);
        Assert.Null(d.Upload("xen_hello_world"));
        host.HoldGate = true;
        host.Vcpus.RequestHold(1);
        Assert.True(SmokeTests.SpinUntil(() => host.Held >= 1), "vCPU 1 did not enter the hold hypercall");
        int rounds = host.Vcpus.Timings.Count;
        Assert.Equal(0, host.Core.Action("xen_hello_world", LivepatchAction.Apply, 4_000_000_000));
        // vCPU 0 is not held waiting for vCPU 1: it goes on making guest entries, and no rendezvous begins.
        long before = host.Vcpus.Stats[0].Iterations;
        Assert.True(SmokeTests.SpinUntil(() => host.Vcpus.Stats[0].Iterations > before + 5_000), "vCPU 0 stopped entering the image");
        Assert.Equal(-(int)XenErrno.EAGAIN, host.Core.Find("xen_hello_world")!.Rc);
        Assert.Equal(rounds, host.Vcpus.Timings.Count);
        Assert.Equal("-sandbox", host.LastExtraVersion(0));
        // Back from the hypervisor, vCPU 1 takes part and the action completes.
        host.HoldGate = false;
        Assert.True(SmokeTests.SpinUntil(() => !host.Core.ActionPending), "the apply did not complete");
        var p = host.Core.Find("xen_hello_world")!;
        Assert.Equal((0, LivepatchState.Applied), (p.Rc, p.State));
        Assert.Equal(0, host.Vcpus.Timings[^1].Rc);
        Assert.Equal("Hello World", d.Seen());
    }

    [Fact]
    public void A_vcpu_the_host_does_not_run_past_the_deadline_delays_the_action_and_does_not_fail_it()
    {
        using var host = SandboxArtifacts.Boot();
        var d = new Driver(host);
        Assert.Null(d.Upload("xen_hello_world"));
        // vCPU 1's thread blocks between two safe points, as one a busy host's scheduler took off its core: it does
        // not come, and it does not run either.
        host.Vcpus.RequestAway(1);
        Assert.True(SmokeTests.SpinUntil(() => host.Vcpus.Away >= 1), "vCPU 1 did not go away");
        Assert.Equal(0, host.Core.Action("xen_hello_world", LivepatchAction.Apply, 20_000_000));
        // The master checks in (a quarter of the timeout on) and its 20 ms pass: the round waits on, holding vCPU 0.
        Assert.True(SmokeTests.SpinUntil(() => host.Vcpus.Extending), "the rendezvous did not wait past its deadline");
        Assert.Equal(-(int)XenErrno.EAGAIN, host.Core.Find("xen_hello_world")!.Rc);
        Assert.Equal("-sandbox", host.LastExtraVersion(0));
        // Back on a core, vCPU 1 comes, and the action completes as on a host that runs every vCPU.
        host.Vcpus.ComeBack(1);
        Assert.True(SmokeTests.SpinUntil(() => !host.Core.ActionPending), "the apply did not complete");
        var p = host.Core.Find("xen_hello_world")!;
        Assert.Equal((0, LivepatchState.Applied), (p.Rc, p.State));
        var t = host.Vcpus.Timings[^1];
        Assert.Equal(0, t.Rc);
        Assert.True(t.ExtendedNs > 0 && t.PauseNs > 20_000_000, $"pause {t.PauseNs} ns, extended {t.ExtendedNs} ns");
        Assert.Equal("Hello World", d.Seen());
    }

    [Fact]
    public void A_vcpu_away_beyond_the_cap_fails_the_action_with_EBUSY()
    {
        using var host = SandboxArtifacts.Boot();
        host.Vcpus.ExtensionCap = TimeSpan.FromMilliseconds(100);
        var d = new Driver(host);
        Assert.Null(d.Upload("xen_hello_world"));
        host.Vcpus.RequestAway(1);
        Assert.True(SmokeTests.SpinUntil(() => host.Vcpus.Away >= 1), "vCPU 1 did not go away");
        var r = d.Act("xen_hello_world", LivepatchAction.Apply, timeoutNs: 20_000_000);
        Assert.Equal((0, (int?)-(int)XenErrno.EBUSY, (LivepatchState?)LivepatchState.Checked), r);
        var t = host.Vcpus.Timings[^1];
        Assert.Equal(-(int)XenErrno.EBUSY, t.Rc);
        // The deadline (20 ms), then the cap (100 ms) past it.
        Assert.True(t.PauseNs >= 120_000_000 && t.ExtendedNs >= 80_000_000, $"pause {t.PauseNs} ns, extended {t.ExtendedNs} ns");
        host.Vcpus.ComeBack(1);
        Assert.Equal((0, (int?)0, (LivepatchState?)LivepatchState.Applied), d.Act("xen_hello_world", LivepatchAction.Apply));
        Assert.Equal("Hello World", d.Seen());
    }

    [Fact]
    public void Prepared_writes_of_every_length_land_in_the_text_and_nothing_else_changes()
    {
        using var host = SandboxHost.Start(new SandboxOptions { ImagePath = SandboxArtifacts.Image, Vcpus = 0 });
        var memory = host.Memory;
        ulong text = host.Image.Address("sandbox_bench_1000");
        const int span = 40 * 64;
        var before = new byte[span];
        Assert.Equal(MemoryReadStatus.Ok, memory.Read(text, before));
        // Lengths 1 .. 31 (inline up to 7 bytes, out of line beyond), one every 64 bytes.
        var writes = new List<TextWrite>();
        var expected = (byte[])before.Clone();
        for (int n = 1; n <= Livepatch.OpaqueSize; n++)
        {
            var bytes = Enumerable.Range(0, n).Select(i => (byte)(0xA0 + n + i)).ToArray();
            int at = (n - 1) * 64 + n % 5;
            writes.Add(new TextWrite(text + (ulong)at, bytes));
            bytes.CopyTo(expected, at);
        }
        using (var prepared = memory.PreparePatching([(text, span)], writes))
        {
            prepared.Warm();
            var unchanged = new byte[span];
            Assert.Equal(MemoryReadStatus.Ok, memory.Read(text, unchanged));
            Assert.Equal(before, unchanged); // nothing is written before WriteAll
            Assert.True(prepared.WriteAll());
        }
        var after = new byte[span];
        Assert.Equal(MemoryReadStatus.Ok, memory.Read(text, after));
        Assert.Equal(expected, after);
        // Without a view, nothing is writable: a write outside the prepared pages is refused.
        ulong elsewhere = host.Image.Address("xen_major_version");
        var code = new byte[8];
        Assert.Equal(MemoryReadStatus.Ok, memory.Read(elsewhere, code));
        ulong otherPage = host.Image.Address("sandbox_bench_1999");
        Assert.NotEqual(elsewhere / 4096, otherPage / 4096);
        using (var prepared = memory.PreparePatching([(otherPage, 16)], [new TextWrite(elsewhere, new byte[] { 0xCC, 0xCC })]))
            Assert.False(prepared.WriteAll());
        var still = new byte[8];
        Assert.Equal(MemoryReadStatus.Ok, memory.Read(elsewhere, still));
        Assert.Equal(code, still);
        Assert.False(memory.WriteText(text, [0x90]));
    }
}
