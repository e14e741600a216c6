using System.Diagnostics;
using System.Runtime.CompilerServices;
using XenLivepatch.Abi;
using XenLivepatch.Hypervisor;
using XenLivepatch.Interop;

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
/// <para>The spin loops have no PAUSE: under KVM on AMD, a run of PAUSEs trips the pause filter and the host deschedules
/// the spinning vCPU for milliseconds where the whole rendezvous takes microseconds. The deadline bounds them.</para>
/// <para>The deadline is Xen's on a host that runs every vCPU thread: a CPU of a real machine is never taken off, so
/// "the timeout passed and a CPU did not come" means it ran all that time elsewhere. The sandbox's vCPUs are threads
/// a busy host's scheduler takes off their cores for milliseconds, so a wait that has spun for
/// <see cref="SpinLimit"/> (far longer than a rendezvous on running vCPUs takes) reads the CPU time of each vCPU
/// thread still missing (Linux's per-thread CPU clock), and from then on sleeps between looks, giving its core to
/// the threads it waits for. Past the wall-clock deadline, a missing vCPU fails the round with -EBUSY once its thread
/// has itself run for the timeout without coming (a vCPU held inside the hypervisor spins, and fails it after the
/// timeout of its own running); one the host did not run has not had its timeout yet, and the round waits for it.
/// Nothing waits forever: the round fails anyway <see cref="ExtensionCap"/> past the deadline, or as soon as a
/// missing vCPU's thread has exited.</para>
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
    // Each vCPU thread's CPU clock (LibC.ThreadCpuClock), 0 until the thread has started.
    private readonly int[] _cpuClocks;
    private readonly List<RendezvousTiming> _timings = [];
    private volatile Round? _round;
    private long _rounds;
    private const long SpinLimitNs = 250_000;
    private static readonly long s_spinTicks = (long)(SpinLimitNs / s_ticksToNs);
    // How long a wait that has spun past SpinLimit sleeps between looks.
    private const long NapNs = 50_000;
    // How often (in turns) a vCPU's wait reads the clock to know whether it has spun SpinLimit.
    private const int ClockEvery = 256;

    private sealed class Round(Action work, long timeoutTicks, Action<int> completed, long notBefore, Action? prepare, long sequence, int vcpus)
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
        // Marks a vCPU's arrival in phase p of this round (in its beat line): Sequence * 4 + p.
        public readonly long Sequence = sequence;
        // The vCPU that is the master.
        public int Master = -1;
        // The slow look (Overdue): each missing vCPU's CPU time (ns) at its first look in the current phase, -1
        // before it, and how much more it may run without coming (ns).
        public readonly long[] CpuBase = new long[vcpus];
        public readonly long[] Allowance = new long[vcpus];
        // The phase the slow look is in (0: none yet).
        public int LookPhase;
        // When the wall-clock deadline of a phase passed while a vCPU the host did not run was missing (0: never).
        public long ExtendedSince;
        public long ExtendedTicks;
    }

    /// <summary>
    /// How long a wait of the rendezvous spins before it looks at the missing vCPUs' CPU time and sleeps between looks
    /// (250 µs; a rendezvous of running vCPUs takes a few).
    /// </summary>
    public static TimeSpan SpinLimit => TimeSpan.FromTicks(SpinLimitNs / 100);

    /// <summary>
    /// How long past its wall-clock deadline a round may wait for vCPUs the host did not run before it fails with
    /// -EBUSY regardless (default 5 s).
    /// </summary>
    public TimeSpan ExtensionCap { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>A rendezvous of <paramref name="vcpus"/> vCPUs, each calling <paramref name="serialize"/> on release.</summary>
    public Rendezvous(int vcpus, delegate* unmanaged<void> serialize)
    {
        _vcpus = vcpus;
        _serialize = serialize;
        _beats = new long[(vcpus + 1) * BeatStride];
        _cpuClocks = new int[vcpus];
        // With more vCPU threads than CPUs to run them, they are never all running at once: no waiting for it.
        _waitForRunning = vcpus <= Math.Min(Environment.ProcessorCount, 64);
        // The rendezvous' own code, compiled before the first one rather than by the vCPUs in it.
        PauseCode.Prepare(typeof(Rendezvous), nameof(CheckIn), nameof(Master), nameof(Other), nameof(Abort), nameof(CanStart), nameof(Overdue), nameof(Nap));
    }

    /// <summary>How long after <see cref="Start"/> the vCPUs take up the work (see <see cref="VcpuSet.StartDelay"/>).</summary>
    public TimeSpan StartDelay { get; set; } = TimeSpan.FromMicroseconds(50);

    /// <summary>Whether the current round waits past its deadline for vCPUs whose threads the host has not run.</summary>
    public bool Extending => _round is { } round && Volatile.Read(ref round.ExtendedSince) != 0;

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
        _round = new Round(work, (long)(timeoutNs / s_ticksToNs), completed, Stopwatch.GetTimestamp() + (long)(StartDelay.TotalSeconds * Stopwatch.Frequency), prepare,
            Interlocked.Increment(ref _rounds), _vcpus);
    }

    /// <summary>Called by vCPU <paramref name="index"/>'s thread before its first safe point: its CPU clock is read from then on.</summary>
    public void ThreadStarted(int index) => Volatile.Write(ref _cpuClocks[index], LibC.ThreadCpuClock(LibC.gettid()));

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
            CheckIn(round, index);
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
    private void CheckIn(Round round, int index)
    {
        Volatile.Write(ref _beats[(index + 1) * BeatStride + 1], round.Sequence * 4 + 1);
        if (Interlocked.Increment(ref round.Semaphore) == 0)
        {
            round.Master = index;
            Master(round);
        }
        else
        {
            Other(round, index);
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private void Master(Round round)
    {
        long start = Stopwatch.GetTimestamp();
        // Until then the wait spins; past it, Overdue decides (see the remarks).
        long look = start + Math.Min(s_spinTicks, round.TimeoutTicks);
        int others = _vcpus - 1;
        // Phase 1: every other vCPU reaches its safe point.
        while (Volatile.Read(ref round.Semaphore) != others)
        {
            long now = Stopwatch.GetTimestamp();
            if (now > look && Overdue(round, 1, start, start, now))
            {
                Abort(round, start);
                return;
            }
        }
        long arrived = Stopwatch.GetTimestamp();
        look = arrived + Math.Min(s_spinTicks, round.TimeoutTicks);
        Volatile.Write(ref round.Semaphore, 0);
        round.Ready = true;
        // Phase 2: every other vCPU has "disabled interrupts" and checked in again.
        while (Volatile.Read(ref round.Semaphore) != others)
        {
            long now = Stopwatch.GetTimestamp();
            if (now > look && Overdue(round, 2, start, arrived, now))
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
            _timings.Add(new RendezvousTiming((end - start) * s_ticksToNs, (end - workStart) * s_ticksToNs, 0, (arrived - start) * s_ticksToNs, (start - round.NotBefore) * s_ticksToNs,
                Extended(round, end) * s_ticksToNs));
        round.Completed(0);
    }

    // How long the round waited past a phase's wall-clock deadline.
    private static long Extended(Round round, long end) => round.ExtendedTicks + (round.ExtendedSince != 0 ? end - round.ExtendedSince : 0);

    // The master's wait in phase `phase` (begun at phaseStart; the round at start) has spun past SpinLimit: whether
    // the round has failed. Each vCPU still missing is looked at: its thread's CPU time when first seen missing in
    // the phase, then, past the phase's wall-clock deadline, how much it has run since. A missing vCPU whose thread
    // has run the timeout (less the spin before the first look, which may all have been running) fails the round;
    // so does a thread that has exited (it will not come), and the cap. Otherwise the master sleeps a little: on a
    // host with fewer free cores than vCPUs, the core it gives back may be the one the missing vCPU waits for.
    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    private bool Overdue(Round round, int phase, long start, long phaseStart, long now)
    {
        if (now - start > round.TimeoutTicks + (long)(ExtensionCap.TotalSeconds * Stopwatch.Frequency))
            return true;
        if (round.LookPhase != phase)
        {
            round.LookPhase = phase;
            Array.Fill(round.CpuBase, -1);
            if (round.ExtendedSince != 0)
            {
                round.ExtendedTicks += now - round.ExtendedSince;
                round.ExtendedSince = 0;
            }
        }
        bool pastDeadline = now - phaseStart > round.TimeoutTicks;
        long arrivedMark = round.Sequence * 4 + phase;
        for (int j = 0; j < _vcpus; j++)
        {
            if (j == round.Master || Volatile.Read(ref _beats[(j + 1) * BeatStride + 1]) >= arrivedMark)
                continue;
            int clock = Volatile.Read(ref _cpuClocks[j]);
            // A thread not yet started has not run.
            long cpu = clock == 0 ? 0 : LibC.ClockNs(clock);
            if (cpu < 0)
                return true;
            if (round.CpuBase[j] < 0)
            {
                round.CpuBase[j] = cpu;
                round.Allowance[j] = (long)((round.TimeoutTicks - Math.Min(now - phaseStart, s_spinTicks)) * s_ticksToNs);
            }
            else if (pastDeadline && cpu - round.CpuBase[j] >= round.Allowance[j])
            {
                return true;
            }
        }
        if (pastDeadline && round.ExtendedSince == 0)
            round.ExtendedSince = now;
        Nap();
        return false;
    }

    private static void Nap() => LibC.SleepNs(NapNs);

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private void Abort(Round round, long start)
    {
        _round = null;
        round.DoWork = false;
        long end = Stopwatch.GetTimestamp();
        lock (_timings)
            _timings.Add(new RendezvousTiming((end - start) * s_ticksToNs, 0, -(int)XenErrno.EBUSY, ExtendedNs: Extended(round, end) * s_ticksToNs));
        round.Completed(-(int)XenErrno.EBUSY);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private void Other(Round round, int index)
    {
        // Past SpinLimit the waits sleep between looks, as the master's do: the thread they wait for may be one
        // the host has not run.
        long since = Stopwatch.GetTimestamp();
        for (int turn = 1; round.DoWork && !round.Ready; turn++)
        {
            if (turn % ClockEvery == 0 && Stopwatch.GetTimestamp() - since > s_spinTicks)
                Nap();
        }
        if (!round.DoWork)
            return;
        Volatile.Write(ref _beats[(index + 1) * BeatStride + 1], round.Sequence * 4 + 2);
        Interlocked.Increment(ref round.Semaphore);
        since = Stopwatch.GetTimestamp();
        for (int turn = 1; round.DoWork; turn++)
        {
            if (turn % ClockEvery == 0 && Stopwatch.GetTimestamp() - since > s_spinTicks)
                Nap();
        }
        _serialize();
    }
}
