using System.Diagnostics;
using System.Runtime.CompilerServices;
using System.Text;
using XenLivepatch.Abi;
using XenLivepatch.Hypervisor;

namespace XenLivepatch.Sandbox;

/// <summary>What one vCPU has done and seen.</summary>
public sealed class VcpuStats
{
    internal long IterationCount;
    internal readonly Dictionary<string, long> Extra = new(StringComparer.Ordinal);
    internal readonly Dictionary<int, long> Minor = [];

    internal volatile string LastValue = "";

    /// <summary>The vCPU's number.</summary>
    public int Index { get; init; }

    /// <summary>The XENVER_extraversion value it read last.</summary>
    public string Last => LastValue;

    internal volatile int LastMinorValue;

    /// <summary>The minor version it read last.</summary>
    public int LastMinor => LastMinorValue;
    /// <summary>Guest entries (loop iterations) so far.</summary>
    public long Iterations => Interlocked.Read(ref IterationCount);

    /// <summary>How often each XENVER_extraversion value was read (a snapshot).</summary>
    public IReadOnlyDictionary<string, long> ExtraVersions
    {
        get { lock (Extra) return new Dictionary<string, long>(Extra); }
    }

    /// <summary>How often each minor version was read (a snapshot).</summary>
    public IReadOnlyDictionary<int, long> MinorVersions
    {
        get { lock (Extra) return new Dictionary<int, long>(Minor); }
    }
}

/// <summary>The timing of one rendezvous, in nanoseconds.</summary>
/// <param name="PauseNs">From the master's election to the release of the others: how long the vCPUs were held.</param>
/// <param name="WorkNs">The action itself (patching), inside the pause.</param>
/// <param name="Rc">0, or -EBUSY when a vCPU missed the deadline.</param>
/// <param name="ArriveNs">From the master's election until every other vCPU had reached its safe point (phase 1).</param>
/// <param name="WaitNs">From the moment the vCPUs could take the work up until the master's election (the vCPUs ran guest code meanwhile).</param>
public readonly record struct RendezvousTiming(double PauseNs, double WorkNs, int Rc, double ArriveNs = 0, double WaitNs = 0)
{
    /// <summary>The pause as a <see cref="TimeSpan"/> (100 ns resolution).</summary>
    public TimeSpan Pause => TimeSpan.FromTicks((long)(PauseNs / 100));
}

/// <summary>
/// The sandbox's CPUs: N threads that enter the image through its hypercall table in a loop, like guests
/// trapping into Xen, and reach a safe point between entries (Xen's idle loop with an empty stack). An
/// action is the rendezvous Xen's <c>check_for_livepatch_work</c> does: the vCPU that takes the work up
/// readies itself and, once it has seen every other vCPU running, checks in as the master; the others check
/// in and wait for <c>ready</c>, check in again with "interrupts off", and spin until released; the master
/// runs the work once all are in (one deadline for both phases), releases them,
/// and every vCPU then serialises its own instruction stream (IRET to self) before it runs patched code.
/// A vCPU that is still inside the hypervisor at the deadline fails the action with -EBUSY and nothing is
/// written. The thread that asked never spins: scheduling returns at once.
/// </summary>
public sealed unsafe class VcpuSet : ILivepatchCpus, IDisposable
{
    private readonly delegate* unmanaged<ulong, long, long, long, long> _hypercall;
    private readonly delegate* unmanaged<void> _serialize;
    private readonly Thread[] _threads;
    private readonly VcpuStats[] _stats;
    private readonly int[] _holdRequests;
    // Each vCPU's last pass through its loop (a Stopwatch timestamp), a cache line apart: whether it is
    // running at all (see CanStart).
    private readonly long[] _beats;
    private const int BeatStride = 16;
    private readonly bool _waitForRunning;
    private readonly List<RendezvousTiming> _timings = [];
    private volatile Round? _round;
    private volatile bool _stop;
    private static readonly double s_ticksToNs = 1e9 / Stopwatch.Frequency;

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

    /// <summary>Creates <paramref name="count"/> vCPUs over the image mapped in <paramref name="memory"/>.</summary>
    public VcpuSet(SandboxMemory memory, int count)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(count);
        _hypercall = (delegate* unmanaged<ulong, long, long, long, long>)memory.Image.Address("hypercall");
        _serialize = (delegate* unmanaged<void>)memory.Image.Address("serialize");
        // The rendezvous' own code, compiled before the first one rather than by the vCPUs in it (ahead-of-time
        // code, the published CLI, has nothing left to compile).
        PauseCode.Prepare(typeof(VcpuSet), nameof(SafePoint), nameof(Master), nameof(Other), nameof(Abort), nameof(CanStart));
        _threads = new Thread[count];
        _stats = new VcpuStats[count];
        _holdRequests = new int[count];
        _beats = new long[(count + 1) * BeatStride];
        // With more vCPU threads than CPUs to run them, they are never all running at once: no waiting for it.
        _waitForRunning = count <= Math.Min(Environment.ProcessorCount, 64);
        for (int i = 0; i < count; i++)
        {
            _stats[i] = new VcpuStats { Index = i };
            int index = i;
            _threads[i] = new Thread(() => Run(index)) { IsBackground = true, Name = $"vcpu{i}" };
        }
    }

    /// <summary>How many vCPUs there are.</summary>
    public int Count => _threads.Length;

    /// <summary>Each vCPU's counters.</summary>
    public IReadOnlyList<VcpuStats> Stats => _stats;

    /// <summary>Every rendezvous so far (a snapshot).</summary>
    public IReadOnlyList<RendezvousTiming> Timings
    {
        get { lock (_timings) return [.. _timings]; }
    }

    /// <summary>Starts the vCPU threads.</summary>
    public void Start()
    {
        foreach (var t in _threads)
            t.Start();
    }

    /// <summary>
    /// How long after <see cref="Schedule"/> the vCPUs take up the work (default 50 µs; Xen's CPUs take it up
    /// when they next pass their check, not at once). By then the thread that asked has gone back to sleep:
    /// on a host with as many cores as vCPUs, a rendezvous that started while it still ran would wait for it to
    /// give a core back.
    /// </summary>
    public TimeSpan StartDelay { get; set; } = TimeSpan.FromMicroseconds(50);

    /// <summary>Asks vCPU <paramref name="index"/> to make the hold hypercall on its next entry.</summary>
    public void RequestHold(int index) => Volatile.Write(ref _holdRequests[index], 1);

    /// <inheritdoc/>
    public void Schedule(Action work, ulong timeoutNs, Action<int> completed, Action? prepare = null)
    {
        if (_threads.Length == 0 || _stop)
        {
            // No CPU runs guest code: the caller is the only CPU, and it is at a safe point.
            prepare?.Invoke();
            long t0 = Stopwatch.GetTimestamp();
            work();
            double pause = (Stopwatch.GetTimestamp() - t0) * s_ticksToNs;
            lock (_timings)
                _timings.Add(new RendezvousTiming(pause, pause, 0));
            completed(0);
            return;
        }
        // The work's code (a lambda of the core) is compiled now, not by the master in the pause.
        PauseCode.Prepare(work);
        PauseCode.Prepare(prepare);
        _round = new Round(work, (long)(timeoutNs / s_ticksToNs), completed, Stopwatch.GetTimestamp() + (long)(StartDelay.TotalSeconds * Stopwatch.Frequency), prepare);
    }

    private void Run(int index)
    {
        var stats = _stats[index];
        byte* buffer = stackalloc byte[16];
        ulong last0 = ulong.MaxValue, last1 = ulong.MaxValue;
        string lastText = "";
        long lastMinor = -1;
        while (!_stop)
        {
            long now = Stopwatch.GetTimestamp();
            Volatile.Write(ref _beats[(index + 1) * BeatStride], now);
            var round = _round;
            if (round != null && now >= round.NotBefore && CanStart(round, index, now))
                SafePoint(round);
            if (Volatile.Read(ref _holdRequests[index]) != 0)
            {
                Volatile.Write(ref _holdRequests[index], 0);
                _hypercall(1 /* HYPERCALL_hold */, 0, 0, 0);
                continue;
            }
            // XENVER_extraversion, then XENVER_version: a guest asking who we are.
            _hypercall(0, 1, (long)buffer, 0);
            long version = _hypercall(0, 0, 0, 0);
            ulong w0 = *(ulong*)buffer, w1 = *(ulong*)(buffer + 8);
            int minor = (int)(version & 0xffff);
            if (w0 != last0 || w1 != last1 || minor != lastMinor)
            {
                if (w0 != last0 || w1 != last1)
                {
                    int len = new ReadOnlySpan<byte>(buffer, 16).IndexOf((byte)0);
                    lastText = Encoding.Latin1.GetString(buffer, len < 0 ? 16 : len);
                    stats.LastValue = lastText;
                    last0 = w0;
                    last1 = w1;
                }
                lastMinor = minor;
                stats.LastMinorValue = minor;
            }
            lock (stats.Extra)
            {
                stats.Extra[lastText] = stats.Extra.GetValueOrDefault(lastText) + 1;
                stats.Minor[minor] = stats.Minor.GetValueOrDefault(minor) + 1;
            }
            Interlocked.Increment(ref stats.IterationCount);
        }
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
    // Measured (bench quiesce, 1 function, 2,000 actions): the wait for the late vCPU inside the pause,
    // p99 10-18 µs before the gate, 0.25-0.5 µs with it; the work in the pause, p99 0.9-3 µs before the
    // prepare step, 0.4-1.2 µs with it (alternating runs).
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private bool CanStart(Round round, int index, long now)
    {
        if (Volatile.Read(ref round.Semaphore) >= 0 || now > round.GiveUp || !_waitForRunning)
            return true;
        // One vCPU takes the work up and readies itself (its caches) before it stops anyone.
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
        ulong pending = (_threads.Length == 64 ? ulong.MaxValue : (1UL << _threads.Length) - 1) & ~(1UL << index);
        long t = now;
        while (true)
        {
            for (int j = 0; j < _threads.Length; j++)
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

    private static readonly long s_freshTicks = Stopwatch.Frequency / 1_000_000;

    // The first vCPU to check in is the master and the pause starts there. (An earlier version had every vCPU
    // that saw the work warm its caches before checking in; both usually did at once, and the one that finished
    // first waited for the other inside the pause: bench quiesce, 1,000 functions, p50 146-160 µs against
    // 31-36 µs without. Now only the vCPU that took the work up prepares, and nobody is held meanwhile.)
    private void SafePoint(Round round)
    {
        if (Interlocked.Increment(ref round.Semaphore) == 0)
            Master(round);
        else
            Other(round);
    }

    // No PAUSE in the spin loops: under KVM on AMD (this machine kind), a run of PAUSEs trips the pause
    // filter and the host deschedules the spinning vCPU; measured, the bare rendezvous went from 8 ms at p50
    // with PAUSE to 6 µs without. The spins are bounded by the deadline.
    private static void Relax()
    {
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private void Master(Round round)
    {
        long start = Stopwatch.GetTimestamp();
        long deadline = start + round.TimeoutTicks;
        int others = _threads.Length - 1;
        // Phase 1: every other vCPU reaches its safe point.
        while (Volatile.Read(ref round.Semaphore) != others)
        {
            if (Stopwatch.GetTimestamp() > deadline)
            {
                Abort(round, start);
                return;
            }
            Relax();
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
            Relax();
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
            Relax();
        if (!round.DoWork)
            return;
        Interlocked.Increment(ref round.Semaphore);
        while (round.DoWork)
            Relax();
        _serialize();
    }

    /// <summary>Stops the vCPUs (after they leave the hypervisor).</summary>
    public void Stop()
    {
        _stop = true;
        foreach (var t in _threads)
        {
            if (t.IsAlive)
                t.Join(TimeSpan.FromSeconds(10));
        }
    }

    /// <inheritdoc/>
    public void Dispose() => Stop();
}
