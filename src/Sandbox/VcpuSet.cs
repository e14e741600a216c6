using System.Text;
using XenLivepatch.Hypervisor;

namespace XenLivepatch.Sandbox;

/// <summary>
/// The sandbox's CPUs: N threads that enter the image through its hypercall table in a loop, like guests trapping
/// into Xen, and reach a safe point between entries (Xen's idle loop with an empty stack), where they take part in
/// the <see cref="Rendezvous"/> that runs an action. Scheduling an action returns at once.
/// </summary>
public sealed unsafe class VcpuSet : ILivepatchCpus, IDisposable
{
    // The image's hypercall numbers and XENVER_ sub-ops (image/sandbox.h).
    private const ulong HypercallXenVersion = 0, HypercallHold = 1;
    private const long XenverVersion = 0, XenverExtraversion = 1;
    private readonly delegate* unmanaged<ulong, long, long, long, long> _hypercall;
    private readonly Rendezvous _rendezvous;
    private readonly Thread[] _threads;
    private readonly VcpuStats[] _stats;
    private readonly int[] _holdRequests;
    private readonly int[] _awayRequests;
    private readonly ManualResetEventSlim[] _comeBack;
    private long _away;
    private volatile bool _stop;

    /// <summary>Creates <paramref name="count"/> vCPUs over the image mapped in <paramref name="memory"/>.</summary>
    public VcpuSet(SandboxMemory memory, int count)
    {
        ArgumentNullException.ThrowIfNull(memory);
        ArgumentOutOfRangeException.ThrowIfNegative(count);
        _hypercall = (delegate* unmanaged<ulong, long, long, long, long>)memory.Image.Address("hypercall");
        _rendezvous = new Rendezvous(count, (delegate* unmanaged<void>)memory.Image.Address("serialize"));
        _threads = new Thread[count];
        _stats = new VcpuStats[count];
        _holdRequests = new int[count];
        _awayRequests = new int[count];
        _comeBack = new ManualResetEventSlim[count];
        for (int i = 0; i < count; i++)
        {
            _stats[i] = new VcpuStats { Index = i };
            _comeBack[i] = new ManualResetEventSlim(false, spinCount: 0);
            int index = i;
            _threads[i] = new Thread(() => Run(index)) { IsBackground = true, Name = $"vcpu{i}" };
        }
    }

    /// <summary>Each vCPU's counters.</summary>
    public IReadOnlyList<VcpuStats> Stats => _stats;

    /// <summary>Every rendezvous so far (a snapshot).</summary>
    public IReadOnlyList<RendezvousTiming> Timings => _rendezvous.Timings;

    /// <summary>
    /// How long after <see cref="Schedule"/> the vCPUs take up the work (default 50 µs; Xen's CPUs take it up
    /// when they next pass their check, not at once). By then the thread that asked has gone back to sleep:
    /// on a host with as many cores as vCPUs, a rendezvous that started while it still ran would wait for it to
    /// give a core back.
    /// </summary>
    public TimeSpan StartDelay
    {
        get => _rendezvous.StartDelay;
        set => _rendezvous.StartDelay = value;
    }

    /// <summary>Starts the vCPU threads.</summary>
    public void Start()
    {
        foreach (var t in _threads)
            t.Start();
    }

    /// <summary>
    /// How long past its deadline an action waits for vCPUs whose threads the host has not run before it fails with
    /// -EBUSY regardless (default 5 s; see <see cref="Rendezvous"/>).
    /// </summary>
    public TimeSpan ExtensionCap
    {
        get => _rendezvous.ExtensionCap;
        set => _rendezvous.ExtensionCap = value;
    }

    /// <summary>Asks vCPU <paramref name="index"/> to make the hold hypercall on its next entry.</summary>
    public void RequestHold(int index) => Volatile.Write(ref _holdRequests[index], 1);

    /// <summary>
    /// Takes vCPU <paramref name="index"/> off its core after its next safe point until <see cref="ComeBack"/>, as a
    /// busy host's scheduler does: its thread blocks (it does not run, unlike a vCPU held inside the hypervisor) and
    /// passes no safe point meanwhile. A test hook.
    /// </summary>
    public void RequestAway(int index)
    {
        _comeBack[index].Reset();
        Volatile.Write(ref _awayRequests[index], 1);
    }

    /// <summary>Lets vCPU <paramref name="index"/> run again after <see cref="RequestAway"/>.</summary>
    public void ComeBack(int index) => _comeBack[index].Set();

    /// <summary>How many times a vCPU has gone away (<see cref="RequestAway"/>).</summary>
    public long Away => Volatile.Read(ref _away);

    /// <summary>Whether a rendezvous is waiting past its deadline for vCPUs whose threads the host has not run.</summary>
    public bool Extending => _rendezvous.Extending;

    /// <inheritdoc/>
    public void Schedule(Action work, ulong timeoutNs, Action<int> completed, Action? prepare = null)
    {
        if (_threads.Length == 0 || _stop)
            _rendezvous.RunOnCaller(work, completed, prepare);
        else
            _rendezvous.Start(work, timeoutNs, completed, prepare);
    }

    private void Run(int index)
    {
        var stats = _stats[index];
        byte* buffer = stackalloc byte[16];
        ulong last0 = ulong.MaxValue, last1 = ulong.MaxValue;
        string lastText = "";
        long lastMinor = -1;
        _rendezvous.ThreadStarted(index);
        while (!_stop)
        {
            _rendezvous.SafePoint(index);
            if (Volatile.Read(ref _holdRequests[index]) != 0)
            {
                Volatile.Write(ref _holdRequests[index], 0);
                _hypercall(HypercallHold, 0, 0, 0);
                continue;
            }
            if (Volatile.Read(ref _awayRequests[index]) != 0)
            {
                Volatile.Write(ref _awayRequests[index], 0);
                Interlocked.Increment(ref _away);
                _comeBack[index].Wait();
                continue;
            }
            // XENVER_extraversion, then XENVER_version: a guest asking who we are.
            _hypercall(HypercallXenVersion, XenverExtraversion, (long)buffer, 0);
            long version = _hypercall(HypercallXenVersion, XenverVersion, 0, 0);
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

    /// <summary>Stops the vCPUs (after they leave the hypervisor).</summary>
    public void Stop()
    {
        _stop = true;
        foreach (var e in _comeBack)
            e.Set();
        foreach (var t in _threads)
        {
            if (t.IsAlive)
                t.Join(TimeSpan.FromSeconds(10));
        }
    }

    /// <inheritdoc/>
    public void Dispose()
    {
        Stop();
        if (_threads.All(t => !t.IsAlive))
        {
            foreach (var e in _comeBack)
                e.Dispose();
        }
    }
}
