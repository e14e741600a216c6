namespace XenLivepatch.Hypervisor;

/// <summary>
/// Payload memory's blocks in a window, in address order, so that placing one more and finding the block that
/// holds an address cost the same with 50,000 payloads loaded as with one: a binary search finds a block, and
/// the free runs between blocks wider than a minimum are kept in a set, so a first fit looks at those (what
/// unloads left behind) and at the end of the last block, not at every block. Blocks do not overlap. Not thread
/// safe: the owner locks.
/// </summary>
/// <typeparam name="T">What a block is.</typeparam>
public sealed class AddressRanges<T>
{
    private readonly List<(ulong Start, ulong End)> _ranges = [];
    private readonly List<T> _values = [];
    // The starts of the blocks preceded by more than _minGap free bytes (from the block before, or the origin).
    private readonly SortedSet<ulong> _gapsBefore = [];
    private readonly ulong _origin;
    private readonly ulong _minGap;

    /// <summary>Blocks at or above <paramref name="origin"/>; a free run of <paramref name="minGap"/> bytes or less is never offered.</summary>
    public AddressRanges(ulong origin, ulong minGap)
    {
        _origin = origin;
        _minGap = minGap;
    }

    /// <summary>The blocks, in address order.</summary>
    public IReadOnlyList<T> Values => _values;

    /// <summary>
    /// The free runs wider than the minimum, in address order, as [From, To): from the origin or a block's end to
    /// the next block's start; the last is the run after the last block (or from the origin), To = ulong.MaxValue.
    /// Stop enumerating before changing the blocks.
    /// </summary>
    public IEnumerable<(ulong From, ulong To)> FreeRuns()
    {
        foreach (ulong start in _gapsBefore)
        {
            int i = LowerBound(start);
            yield return (PreviousEnd(i), start);
        }
        yield return (PreviousEnd(_ranges.Count), ulong.MaxValue);
    }

    /// <summary>Adds the block [start, end); it must not overlap another.</summary>
    public void Add(ulong start, ulong end, T value)
    {
        if (end < start || start < _origin)
            throw new ArgumentOutOfRangeException(nameof(start), $"block 0x{start:x}-0x{end:x} is not in the window from 0x{_origin:x}");
        int i = LowerBound(start);
        if ((i < _ranges.Count && _ranges[i].Start < end) || (i > 0 && _ranges[i - 1].End > start) || (i < _ranges.Count && _ranges[i].Start == start))
            throw new InvalidOperationException($"block 0x{start:x}-0x{end:x} overlaps another");
        _ranges.Insert(i, (start, end));
        _values.Insert(i, value);
        UpdateGap(i);
        if (i + 1 < _ranges.Count)
            UpdateGap(i + 1);
    }

    /// <summary>Removes the block <paramref name="value"/> that starts at <paramref name="start"/>; false when there is none.</summary>
    public bool Remove(ulong start, T value)
    {
        int i = LowerBound(start);
        if (i == _ranges.Count || _ranges[i].Start != start || !EqualityComparer<T>.Default.Equals(_values[i], value))
            return false;
        _ranges.RemoveAt(i);
        _values.RemoveAt(i);
        _gapsBefore.Remove(start);
        if (i < _ranges.Count)
            UpdateGap(i);
        return true;
    }

    /// <summary>The block whose start is the highest at or below <paramref name="address"/>: the only one that can hold it.</summary>
    public bool TryFindAtOrBelow(ulong address, out T value)
    {
        int i = LowerBound(address);
        if (i < _ranges.Count && _ranges[i].Start == address)
        {
            value = _values[i];
            return true;
        }
        if (i == 0)
        {
            value = default!;
            return false;
        }
        value = _values[i - 1];
        return true;
    }

    private ulong PreviousEnd(int i) => i == 0 ? _origin : _ranges[i - 1].End;

    private void UpdateGap(int i)
    {
        ulong start = _ranges[i].Start;
        if (start - PreviousEnd(i) > _minGap)
            _gapsBefore.Add(start);
        else
            _gapsBefore.Remove(start);
    }

    // The index of the first block starting at or above address.
    private int LowerBound(ulong address)
    {
        int lo = 0, hi = _ranges.Count;
        while (lo < hi)
        {
            int mid = (lo + hi) >>> 1;
            if (_ranges[mid].Start < address)
                lo = mid + 1;
            else
                hi = mid;
        }
        return lo;
    }
}
