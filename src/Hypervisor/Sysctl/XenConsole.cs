using System.Text;
using XenLivepatch.Abi;

namespace XenLivepatch.Hypervisor;

/// <summary>
/// Xen's console ring (xen/drivers/char/console.c: <c>conring</c>, <c>conringc</c>, <c>conringp</c>): what the
/// hypervisor printed, each line prefixed "(XEN) ", kept in a power-of-two byte ring that overwrites its oldest
/// bytes; <c>XEN_SYSCTL_readconsole</c> reads it (<c>xl dmesg</c>). The livepatch core's log lines land here
/// with Xen's "livepatch: " prefix, and so does what debug key 'x' prints.
/// </summary>
public sealed class XenConsole
{
    /// <summary>Xen's default ring: 16 KiB (<c>_CONRING_SIZE</c>), grown here to hold long 'x' dumps.</summary>
    public const int DefaultSize = 64 * 1024;

    private readonly byte[] _ring;
    private readonly Lock _lock = new();
    // Free-running byte counters, as Xen's: the ring holds [_consumer, _producer), at most _ring.Length bytes.
    private uint _consumer;
    private uint _producer;

    /// <summary>A ring of <paramref name="size"/> bytes (a power of two).</summary>
    public XenConsole(int size = DefaultSize)
    {
        if (size <= 0 || (size & (size - 1)) != 0)
            throw new ArgumentOutOfRangeException(nameof(size), size, "the console ring's size must be a power of two");
        _ring = new byte[size];
    }

    /// <summary>A ring that records <paramref name="core"/>'s log lines as Xen prints them ("(XEN) livepatch: ...").</summary>
    public static XenConsole For(LivepatchCore core, int size = DefaultSize)
    {
        ArgumentNullException.ThrowIfNull(core);
        var console = new XenConsole(size);
        core.Log += line => console.PrintLine("livepatch: " + line);
        return console;
    }

    /// <summary>The ring's size in bytes.</summary>
    public int Size => _ring.Length;

    /// <summary><c>printk</c> of one line: "(XEN) " + <paramref name="line"/> + newline.</summary>
    public void PrintLine(string line)
    {
        ArgumentNullException.ThrowIfNull(line);
        byte[] bytes = Encoding.UTF8.GetBytes("(XEN) " + line + "\n");
        lock (_lock)
        {
            // conring_puts: the producer runs ahead; the consumer is pushed so the ring never holds more than its size.
            foreach (byte b in bytes)
                _ring[_producer++ & (uint)(_ring.Length - 1)] = b;
            if (_producer - _consumer > (uint)_ring.Length)
                _consumer = _producer - (uint)_ring.Length;
        }
    }

    /// <summary>Everything the ring holds now, as text (for tests and logs).</summary>
    public string Text
    {
        get
        {
            lock (_lock)
            {
                var bytes = new byte[_producer - _consumer];
                for (uint i = 0; i < bytes.Length; i++)
                    bytes[i] = _ring[(_consumer + i) & (uint)(_ring.Length - 1)];
                return Encoding.UTF8.GetString(bytes);
            }
        }
    }

    /// <summary>
    /// <c>read_console_ring</c>: copies from the oldest byte (or from <c>index</c> when <c>incremental</c> and
    /// <c>index</c> is still inside the ring) into the caller's buffer, up to <c>count</c> bytes; answers the
    /// bytes written in <c>count</c> and where it stopped in <c>index</c>; with <c>clear</c>, forgets what was
    /// read. -EFAULT when the buffer is not the caller's.
    /// </summary>
    public int Read(ref SysctlReadConsole op, IGuestMemory guest)
    {
        ArgumentNullException.ThrowIfNull(guest);
        lock (_lock)
        {
            uint c = _consumer, p = _producer, max = op.Count, sofar = 0;
            uint mask = (uint)(_ring.Length - 1);
            // An index between the consumer and the producer (the ring may have wrapped the counters) is honoured.
            if (op.Incremental != 0 && (c <= p ? c < op.Index && op.Index <= p : c < op.Index || op.Index <= p))
                c = op.Index;
            while (c != p && sofar < max)
            {
                uint idx = c & mask;
                uint len = p - c;
                if (idx + len > (uint)_ring.Length)
                    len = (uint)_ring.Length - idx;
                if (sofar + len > max)
                    len = max - sofar;
                if (!guest.Write(op.Buffer + sofar, _ring.AsSpan((int)idx, (int)len)))
                    return -(int)XenErrno.EFAULT;
                sofar += len;
                c += len;
            }
            if (op.Clear != 0)
                _consumer = p - c > (uint)_ring.Length ? p - (uint)_ring.Length : c;
            op = op with { Count = sofar, Index = c };
            return 0;
        }
    }
}
