using System.Diagnostics;
using System.Runtime.CompilerServices;
using XenLivepatch.Abi;
using XenLivepatch.Hypervisor;

namespace XenLivepatch.Sandbox;

/// <summary>
/// The rendezvous Xen's <c>check_for_livepatch_work</c> does, among the sandbox's vCPUs: the vCPU that takes the
/// work up readies itself and, once it has seen every other vCPU running, checks in as the master; the others check
/// in and wait for <c>ready</c>, check in again with "interrupts off", and spin until released; the master runs the
/// work once all are in (one deadline for both phases), releases them, and every vCPU then serialises its own
/// instruction stream (IRET to self) before it runs patched code. A vCPU that is still inside the hypervisor at the
/// deadline fails the action with -EBUSY and nothing is written. The thread that asked never spins.
/// </summary>
/// <remarks>
/// The spin loops have no PAUSE: under KVM on AMD, a run of PAUSEs trips the pause filter and the host deschedules
/// the spinning vCPU for milliseconds where the whole rendezvous takes microseconds. The deadline bounds them.
/// </remarks>
internal sealed unsafe class Rendezvous
{
    private static readonly double s_ticksToNs = 1e9 / Stopwatch.Frequency;
    // A vCPU counts as running when it passed its safe point within this long of a look.
    private static readonly long s_freshTicks = Stopwatch.Frequency / 1_000_000;
    // Each vCPU's last pass through its safe point (a Stopwatch timestamp), a cache line apart.
    private const int BeatStride = 16;
    private readonly int _vcpus;
    private readonly delegate* unmanaged<void> _serialize;
    private readonly long[] _beats;
    private readonly bool _waitForRunning;
    private readonly List<RendezvousTiming> _timings = [];
    private volatile Round? _round;

    private sealed class Round(Action work, long timeoutTicks, Action<int> completed, long notBefore, Action? prepare)
    {
        public readonly Action Work = work;
        public readonly Action? Prepare = prepare;
        // The vCPU that has taken the work up and prepares to run it; the others go on with guest code until it checks in.
        public int Candidate = -1;
        public readonly long NotBefore = notBefore;
        public readonly long TimeoutTicks = timeoutTicks;
        // Until when the vCPU that took the work up waits for the others to be running before it checks in
        // regardless (see CanStart): a quarter of the timeout, which itself counts from the master's check-in,
        // as Xen's counts from the master's arrival in check_for_livepatch_work.
        public readonly long GiveUp = notBefore + timeoutTicks / 4;
        public readonly Action<int> Completed = completed;
        public int Semaphore = -1;
        public volatile bool Ready;
        public volatile bool DoWork = true;
    }

    /// <summary>A rendezvous of <paramref name="vcpus"/> vCPUs, each calling <paramref name="serialize"/> on release.</summary>
    public Rendezvous(int vcpus, delegate* unmanaged<void> serialize)
    {
        _vcpus = vcpus;
        _serialize = serialize;
        _beats = new long[(vcpus + 1) * BeatStride];
        // With more vCPU threads than CPUs to run them, they are never all running at once: no waiting for it.
        _waitForRunning = vcpus <= Math.Min(Environment.ProcessorCount, 64);
        // The rendezvous' own code, compiled before the first one rather than by the vCPUs in it.
        PauseCode.Prepare(typeof(Rendezvous), nameof(CheckIn), nameof(Master), nameof(Other), nameof(Abort), nameof(CanStart));
    }

    /// <summary>How long after <see cref="Start"/> the vCPUs take up the work (see <see cref="VcpuSet.StartDelay"/>).</summary>
    public TimeSpan StartDelay { get; set; } = TimeSpan.FromMicroseconds(50);

    /// <summary>Every rendezvous so far (a snapshot).</summary>
    public IReadOnlyList<RendezvousTiming> Timings
    {
        get { lock (_timings) return [.. _timings]; }
    }

    /// <summary>Runs the work on the calling thread, the only CPU there is (no vCPU runs guest code), at a safe point.</summary>
    public void RunOnCaller(Action work, Action<int> completed, Action? prepare)
    {
        prepare?.Invoke();
        long t0 = Stopwatch.GetTimestamp();
        work();
        double pause = (Stopwatch.GetTimestamp() - t0) * s_ticksToNs;
        lock (_timings)
            _timings.Add(new RendezvousTiming(pause, pause, 0));
        completed(0);
    }

    /// <summary>Posts the work; the vCPUs take it up at their safe points once <see cref="StartDelay"/> has passed.</summary>
    public void Start(Action work, ulong timeoutNs, Action<int> completed, Action? prepare)
    {
        // The work's code (a lambda of the core) is compiled now, not by the master in the pause.
        PauseCode.Prepare(work);
        PauseCode.Prepare(prepare);
        _round = new Round(work, (long)(timeoutNs / s_ticksToNs), completed, Stopwatch.GetTimestamp() + (long)(StartDelay.TotalSeconds * Stopwatch.Frequency), prepare);
    }

    /// <summary>
    /// vCPU <paramref name="index"/> at its safe point between guest entries (Xen's idle loop with an empty stack):
    /// it shows it is running, and takes part in the rendezvous when there is one.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void SafePoint(int index)
    {
        long now = Stopwatch.GetTimestamp();
        Volatile.Write(ref _beats[(index + 1) * BeatStride], now);
        var round = _round;
        if (round != null && now >= round.NotBefore && CanStart(round, index, now))
            CheckIn(round);
    }

    // Whether this vCPU may check in now, rather than go on with guest code. Once one has, every other checks
    // in at its next safe point. Before that, one vCPU (the first to see the work) takes it up: it readies
    // itself for the work (the prepare step: the writes' table and the lines they land on, into its caches
    // and TLB) and then waits until it has seen every other vCPU pass its safe point, each within a
    // microsecond of a look and all within a few (the others' guest entries may be long: it watches for up to
    // 2 µs per pass), that is, until all of them are running. A vCPU thread taken off its core (on 2 cores the
    // thread that asked, the runtime's threads and the host's other work take turns with them) would
    // otherwise keep the others held until it runs again, for as long as a scheduler's slice. Until then every
    // vCPU runs guest code: the waiting holds nobody (and there is none when there are more vCPU threads than
    // CPUs, which can never all run at once). Past a quarter of the timeout any vCPU checks in, and the
    // rendezvous has the whole timeout from then (under load, when two vCPU threads are rarely on their cores
    // at once, it fails no more often than without the wait).
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private bool CanStart(Round round, int index, long now)
    {
        if (Volatile.Read(ref round.Semaphore) >= 0 || now > round.GiveUp || !_waitForRunning)
            return true;
        int candidate = Volatile.Read(ref round.Candidate);
        if (candidate < 0 && (candidate = Interlocked.CompareExchange(ref round.Candidate, index, -1)) < 0)
        {
            candidate = index;
            if (round.Prepare is { } prepare)
            {
                // The work's delegate and the closure it shares with prepare are read now too.
                GC.KeepAlive(round.Work.Target);
                prepare();
            }
            now = Stopwatch.GetTimestamp();
        }
        if (candidate != index)
            return false;
        ulong pending = (_vcpus == 64 ? ulong.MaxValue : (1UL << _vcpus) - 1) & ~(1UL << index);
        long t = now;
        while (true)
        {
            for (int j = 0; j < _vcpus; j++)
            {
                if ((pending & (1UL << j)) != 0 && t - Volatile.Read(ref _beats[(j + 1) * BeatStride]) <= s_freshTicks)
                    pending &= ~(1UL << j);
            }
            if (pending == 0 || Volatile.Read(ref round.Semaphore) >= 0)
                return true;
            t = Stopwatch.GetTimestamp();
            if (t - now > 2 * s_freshTicks)
                return false;
        }
    }

    // The first vCPU to check in is the master and the pause starts there. Only the vCPU that took the work up
    // has prepared (CanStart): were each to ready its caches before checking in, the first to finish would wait
    // inside the pause for the others.
    private void CheckIn(Round round)
    {
        if (Interlocked.Increment(ref round.Semaphore) == 0)
            Master(round);
        else
            Other(round);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private void Master(Round round)
    {
        long start = Stopwatch.GetTimestamp();
        long deadline = start + round.TimeoutTicks;
        int others = _vcpus - 1;
        // Phase 1: every other vCPU reaches its safe point.
        while (Volatile.Read(ref round.Semaphore) != others)
        {
            if (Stopwatch.GetTimestamp() > deadline)
            {
                Abort(round, start);
                return;
            }
        }
        long arrived = Stopwatch.GetTimestamp();
        Volatile.Write(ref round.Semaphore, 0);
        round.Ready = true;
        // Phase 2: every other vCPU has "disabled interrupts" and checked in again.
        while (Volatile.Read(ref round.Semaphore) != others)
        {
            if (Stopwatch.GetTimestamp() > deadline)
            {
                Abort(round, start);
                return;
            }
        }
        long workStart = Stopwatch.GetTimestamp();
        round.Work();
        long end = Stopwatch.GetTimestamp();
        _round = null;
        round.DoWork = false;
        _serialize();
        lock (_timings)
            _timings.Add(new RendezvousTiming((end - start) * s_ticksToNs, (end - workStart) * s_ticksToNs, 0, (arrived - start) * s_ticksToNs, (start - round.NotBefore) * s_ticksToNs));
        round.Completed(0);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private void Abort(Round round, long start)
    {
        _round = null;
        round.DoWork = false;
        double held = (Stopwatch.GetTimestamp() - start) * s_ticksToNs;
        lock (_timings)
            _timings.Add(new RendezvousTiming(held, 0, -(int)XenErrno.EBUSY));
        round.Completed(-(int)XenErrno.EBUSY);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private void Other(Round round)
    {
        while (round.DoWork && !round.Ready)
        {
        }
        if (!round.DoWork)
            return;
        Interlocked.Increment(ref round.Semaphore);
        while (round.DoWork)
        {
        }
        _serialize();
    }
}
