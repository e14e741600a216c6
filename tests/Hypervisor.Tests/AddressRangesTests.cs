namespace XenLivepatch.Hypervisor.Tests;

/// <summary>
/// Payload memory's first fit and lookup by address (AddressRanges, what the offline hypervisor and the sandbox
/// place payloads with) give the addresses a walk over every block in address order gives, for random sequences
/// of loads and unloads, in both ways a window is laid out: blocks back to back, and vm_alloc's (a guard page
/// before each block and a free page after it).
/// </summary>
public class AddressRangesTests
{
    private const ulong Page = PayloadAllocation.PageSize;
    private const ulong Origin = 0xffff82d040600000;

    // The walk the index replaces: every block, lowest first.
    private static ulong WalkFirstFit(List<(ulong Start, ulong End)> blocks, ulong bytes, bool vmap)
    {
        ulong at = vmap ? Origin + Page : Origin;
        foreach (var (start, end) in blocks.OrderBy(b => b.Start))
        {
            if (vmap ? at + Page + bytes < start : start - at >= bytes)
                return vmap ? at + Page : at;
            at = end;
        }
        return vmap ? at + Page : at;
    }

    private static ulong IndexFirstFit(AddressRanges<int> ranges, ulong bytes, bool vmap)
    {
        foreach (var (from, to) in ranges.FreeRuns())
        {
            if (to == ulong.MaxValue || (vmap ? from + Page + bytes < to : to - from >= bytes))
                return vmap ? from + Page : from;
        }
        throw new InvalidOperationException("no open-ended run");
    }

    [Theory]
    [InlineData(false, 1)]
    [InlineData(false, 2)]
    [InlineData(true, 3)]
    [InlineData(true, 4)]
    public void First_fit_and_lookup_agree_with_a_walk_over_every_block(bool vmap, int seed)
    {
        var random = new Random(seed);
        var ranges = new AddressRanges<int>(vmap ? Origin + Page : Origin, vmap ? Page : 0);
        var blocks = new List<(ulong Start, ulong End)>();
        var ids = new Dictionary<ulong, int>();
        for (int step = 0; step < 3000; step++)
        {
            if (blocks.Count > 0 && random.Next(3) == 0)
            {
                var (start, _) = blocks[random.Next(blocks.Count)];
                Assert.True(ranges.Remove(start, ids[start]));
                Assert.False(ranges.Remove(start, ids[start]));
                blocks.RemoveAll(b => b.Start == start);
                continue;
            }
            ulong bytes = (ulong)random.Next(1, 6) * Page;
            ulong at = IndexFirstFit(ranges, bytes, vmap);
            Assert.Equal(WalkFirstFit(blocks, bytes, vmap), at);
            ranges.Add(at, at + bytes, step);
            ids[at] = step;
            blocks.Add((at, at + bytes));
            // An address inside a block finds it; one in a gap finds the block below (or none).
            var (probeStart, probeEnd) = blocks[random.Next(blocks.Count)];
            ulong inside = probeStart + (ulong)random.NextInt64((long)(probeEnd - probeStart));
            Assert.True(ranges.TryFindAtOrBelow(inside, out int found));
            Assert.Equal(ids[probeStart], found);
        }
        Assert.Equal(blocks.Count, ranges.Values.Count);
        Assert.Equal(blocks.OrderBy(b => b.Start).Select(b => ids[b.Start]), ranges.Values);
        Assert.False(ranges.TryFindAtOrBelow(Origin - 1, out _));
    }

    [Fact]
    public void A_block_that_overlaps_another_is_refused()
    {
        var ranges = new AddressRanges<int>(Origin, 0);
        ranges.Add(Origin + Page, Origin + 3 * Page, 1);
        Assert.Throws<InvalidOperationException>(() => ranges.Add(Origin + 2 * Page, Origin + 4 * Page, 2));
        Assert.Throws<InvalidOperationException>(() => ranges.Add(Origin, Origin + 2 * Page, 3));
        Assert.Throws<ArgumentOutOfRangeException>(() => ranges.Add(Origin - Page, Origin, 4));
        Assert.False(ranges.Remove(Origin + Page, 2));
        Assert.Equal([1], ranges.Values);
    }
}
