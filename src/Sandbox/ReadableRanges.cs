using System.Runtime.CompilerServices;

namespace XenLivepatch.Sandbox;

/// <summary>
/// The address ranges of the sandbox's memory that may be read (the image's segments, secured payloads). Changed
/// under a lock; read without one, from a copy replaced on each change: the core reads old code while the CPUs are
/// stopped, where no lock may be taken.
/// </summary>
internal sealed class ReadableRanges
{
    private readonly Lock _lock = new();
    private readonly List<(ulong Start, ulong End)> _ranges = [];
    private volatile (ulong Start, ulong End)[] _snapshot = [];

    public void Add(ulong start, ulong end)
    {
        lock (_lock)
        {
            _ranges.Add((start, end));
            _snapshot = [.. _ranges];
        }
    }

    public void Remove(ulong start, ulong end)
    {
        lock (_lock)
        {
            _ranges.Remove((start, end));
            _snapshot = [.. _ranges];
        }
    }

    /// <summary>True when one range holds every byte of [address, address + length).</summary>
    // Inlined into SandboxMemory.Read, which the pause calls (the core reads the old code there).
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public bool Covers(ulong address, ulong length)
    {
        foreach (var (start, end) in _snapshot)
        {
            if (address >= start && address < end && length <= end - address)
                return true;
        }
        return false;
    }
}
