using System.Collections.Concurrent;
using System.Text;
using XenLivepatch.Hypervisor;

namespace XenLivepatch.Sandbox;

/// <summary>How to start a sandbox.</summary>
public sealed record SandboxOptions
{
    /// <summary>The image (default: artifacts/sandbox/xen-syms).</summary>
    public string? ImagePath { get; init; }
    /// <summary>How many vCPU threads run guest entries (default 2).</summary>
    public int Vcpus { get; init; } = 2;
    /// <summary>The livepatch rules (default Xen 4.17).</summary>
    public LivepatchProfile Profile { get; init; } = LivepatchProfile.Xen417;
    /// <summary>How code is made writable for patching (the naive mode is the benchmark's baseline).</summary>
    public PatchingMode Patching { get; init; } = PatchingMode.DualMapping;
    /// <summary>Where the log goes (the core's and the hooks' lines); null for none.</summary>
    public TextWriter? Log { get; init; }
    /// <summary>The signature policy and trusted keys (default: the profile's policy, no keys).</summary>
    public Signing.PayloadTrust? Trust { get; init; }
}

/// <summary>
/// A running sandbox hypervisor: the image mapped at its link address, the livepatch core over it, the
/// vCPUs entering it, and the sysctl handler every transport calls. The core's log lines and the lines
/// payload hooks write (<c>sandbox_log</c>) go to the log with Xen's prefixes, from a thread of their own:
/// nothing is printed while the vCPUs are stopped.
/// </summary>
public sealed unsafe class SandboxHost : IDisposable
{
    private readonly BlockingCollection<string> _lines = new(new ConcurrentQueue<string>());
    private readonly Thread? _logger;
    private readonly Thread? _ringReader;
    private volatile bool _stopping;
    private readonly TextWriter? _log;

    private SandboxHost(SandboxOptions options)
    {
        _log = options.Log;
        Image = SandboxImage.Load(options.ImagePath ?? SandboxImage.DefaultPath());
        Memory = new SandboxMemory(Image, options.Patching);
        Hooks = new NativeHooks();
        Vcpus = new VcpuSet(Memory, options.Vcpus);
        Core = new LivepatchCore(options.Profile, X86_64Arch.Instance, Image, Memory, Vcpus, Hooks)
        {
            Trust = options.Trust ?? new Signing.PayloadTrust(options.Profile.SignaturePolicy, Signing.TrustStore.Empty),
        };
        Handler = new SysctlHandler(Core);
        if (_log != null)
        {
            Core.Log += line => _lines.Add("(XEN) livepatch: " + Printable(line));
            _logger = new Thread(() =>
            {
                foreach (string line in _lines.GetConsumingEnumerable())
                    _log.WriteLine(line);
            }) { IsBackground = true, Name = "sandbox-log" };
            _logger.Start();
        }
        _ringReader = new Thread(ReadRing) { IsBackground = true, Name = "sandbox-ring" };
        _ringReader.Start();
        Vcpus.Start();
    }

    /// <summary>The image.</summary>
    public SandboxImage Image { get; }
    /// <summary>Its memory.</summary>
    public SandboxMemory Memory { get; }
    /// <summary>The vCPUs.</summary>
    public VcpuSet Vcpus { get; }
    /// <summary>The hook runner.</summary>
    public NativeHooks Hooks { get; }
    /// <summary>The livepatch core.</summary>
    public LivepatchCore Core { get; }
    /// <summary>The sysctl handler (what the socket and in-process transports call).</summary>
    public SysctlHandler Handler { get; }

    /// <summary>Lines the payloads' hooks wrote (sandbox_log), in order.</summary>
    public IReadOnlyList<string> HookLog
    {
        get
        {
            DrainRing();
            lock (_hookLog)
                return [.. _hookLog];
        }
    }

    private readonly List<string> _hookLog = [];

    /// <summary>Boots a sandbox.</summary>
    public static SandboxHost Start(SandboxOptions? options = null) => new(options ?? new SandboxOptions());

    /// <summary>How many failed assertions the hooks reported (sandbox_bug).</summary>
    public long Bugs => *(long*)Memory.Pointer(Image.Address("sandbox_bugs"));

    /// <summary>While true, a vCPU that makes the hold hypercall stays inside the hypervisor.</summary>
    public bool HoldGate
    {
        get => Volatile.Read(ref *(int*)Memory.Pointer(Image.Address("sandbox_hold_gate"))) != 0;
        set => Volatile.Write(ref *(int*)Memory.Pointer(Image.Address("sandbox_hold_gate")), value ? 1 : 0);
    }

    /// <summary>How many hold hypercalls have been entered.</summary>
    public long Held => Volatile.Read(ref *(long*)Memory.Pointer(Image.Address("sandbox_held")));

    /// <summary>The latest XENVER_extraversion each vCPU read.</summary>
    public string LastExtraVersion(int vcpu) => Vcpus.Stats[vcpu].Last;

    /// <summary>Waits until every vCPU has made <paramref name="entries"/> more guest entries (or the timeout passes).</summary>
    public bool WaitForEntries(long entries, TimeSpan timeout)
    {
        var start = Vcpus.Stats.Select(s => s.Iterations).ToArray();
        var until = DateTime.UtcNow + timeout;
        while (DateTime.UtcNow < until)
        {
            if (Vcpus.Stats.Select((s, i) => s.Iterations - start[i]).All(n => n >= entries))
                return true;
            Thread.Sleep(1);
        }
        return false;
    }

    // The log ring is drained on demand (HookLog) and every 20 ms by a thread of its own: a thread that
    // woke more often would take a core from the vCPUs more often.
    private void ReadRing()
    {
        while (!_stopping)
        {
            DrainRing();
            Thread.Sleep(20);
        }
        DrainRing();
    }

    private readonly Lock _ringLock = new();
    private readonly StringBuilder _ringLine = new();
    private ulong _ringTail;
    private bool _ringClosed;

    private void DrainRing()
    {
        lock (_ringLock)
        {
            if (!_ringClosed)
                DrainRingUnlocked();
        }
    }

    private void DrainRingUnlocked()
    {
        const int size = 65536;
        byte* ring = (byte*)Memory.Pointer(Image.Address("sandbox_log_ring"));
        ulong h = Volatile.Read(ref *(ulong*)Memory.Pointer(Image.Address("sandbox_log_head")));
        if (h - _ringTail > size)
            _ringTail = h - size; // overrun: lose the oldest bytes
        for (; _ringTail < h; _ringTail++)
        {
            char c = (char)ring[_ringTail % size];
            if (c != '\n')
            {
                _ringLine.Append(c);
                continue;
            }
            string text = _ringLine.ToString();
            _ringLine.Clear();
            lock (_hookLog)
                _hookLog.Add(text);
            if (_log != null)
                _lines.Add("(XEN) " + text);
        }
    }

    /// <inheritdoc/>
    public void Dispose()
    {
        Vcpus.Dispose();
        _stopping = true;
        _ringReader?.Join(TimeSpan.FromSeconds(2));
        lock (_ringLock)
        {
            DrainRingUnlocked();
            _ringClosed = true;
        }
        _lines.CompleteAdding();
        _logger?.Join(TimeSpan.FromSeconds(2));
        Hooks.Dispose();
        Memory.Dispose();
        _lines.Dispose();
    }

    /// <summary>
    /// A core log line as one line of text: a payload's name is any bytes but NUL, and a control character in it
    /// (a newline) would otherwise start a line of its own, one that looks like the hypervisor's.
    /// </summary>
    public static string Printable(string line)
    {
        ArgumentNullException.ThrowIfNull(line);
        if (!line.Any(char.IsControl))
            return line;
        var sb = new System.Text.StringBuilder(line.Length + 8);
        foreach (char c in line)
        {
            if (char.IsControl(c))
                sb.Append(System.Globalization.CultureInfo.InvariantCulture, $"\\x{(int)c:x2}");
            else
                sb.Append(c);
        }
        return sb.ToString();
    }
}
