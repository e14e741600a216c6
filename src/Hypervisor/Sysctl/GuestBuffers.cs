using XenLivepatch.Abi;

namespace XenLivepatch.Hypervisor;

/// <summary>
/// Guest memory made of the caller buffers a sysctl carries (the sandbox socket, in-process calls): an
/// access is allowed inside one buffer and faults everywhere else, as a handle outside the caller's
/// mapped memory would.
/// </summary>
public sealed class GuestBuffers : IGuestMemory
{
    private readonly IReadOnlyList<WireBuffer> _buffers;

    /// <summary>Wraps the buffers.</summary>
    public GuestBuffers(IReadOnlyList<WireBuffer> buffers) => _buffers = buffers;

    private WireBuffer? Find(ulong address, ulong length)
    {
        foreach (var b in _buffers)
        {
            if (address >= b.Address && length <= (ulong)b.Data.Length && address - b.Address <= (ulong)b.Data.Length - length)
                return b;
        }
        return null;
    }

    /// <inheritdoc/>
    public bool Okay(ulong address, ulong length) => length == 0 || Find(address, length) != null;

    /// <inheritdoc/>
    public bool Read(ulong address, Span<byte> destination)
    {
        if (destination.IsEmpty)
            return true;
        var b = Find(address, (ulong)destination.Length);
        if (b == null)
            return false;
        b.Data.AsSpan((int)(address - b.Address), destination.Length).CopyTo(destination);
        return true;
    }

    /// <inheritdoc/>
    public bool Write(ulong address, ReadOnlySpan<byte> source)
    {
        if (source.IsEmpty)
            return true;
        var b = Find(address, (ulong)source.Length);
        if (b == null)
            return false;
        source.CopyTo(b.Data.AsSpan((int)(address - b.Address)));
        return true;
    }
}
