using XenLivepatch.Abi;

namespace XenLivepatch.Control.Tests;

/// <summary>
/// The control library trusts no transport's numbers (privcmd reaches a real hypervisor; a socket can be anyone's):
/// a LIST probe or batch answering sizes and counts no hypervisor could hold ends in an errno, never an exception,
/// and never makes the client allocate what the numbers claim.
/// </summary>
public class HostileTransportTests
{
    /// <summary>Answers every LIST with the same made-up structure and result, and writes nothing into the buffers.</summary>
    private sealed class LyingList(uint nr, uint nameTotal, uint metadataTotal, int rc = 0) : ISysctlTransport
    {
        public List<(uint Nr, long Buffers)> Calls { get; } = [];
        public string Description => "a lying hypervisor";
        public LivepatchAbi Abi => LivepatchAbi.Xen417;
        public ValueTask DisposeAsync() => ValueTask.CompletedTask;

        public ValueTask<int> CallAsync(byte[] sysctl, IReadOnlyList<WireBuffer> buffers, CancellationToken cancellationToken = default)
        {
            var op = XenSysctl.ReadLivepatch(sysctl, Abi.Layout);
            Calls.Add((op.List.Nr, buffers.Sum(b => (long)b.Data.Length)));
            var reply = op.List with { Nr = nr, NameTotalSize = nameTotal, MetadataTotalSize = metadataTotal, Version = 1 };
            (op with { List = reply }).Write(sysctl.AsSpan(XenSysctl.UnionOffset), Abi.Layout);
            return ValueTask.FromResult(op.List.Nr == 0 ? 0 : rc);
        }
    }

    [Theory]
    [InlineData(1u, 0xffffffffu, 0u)]
    [InlineData(1u << 28, 0xffffffffu, 0xffffffffu)]
    [InlineData(1u << 31, 16u, 0u)]
    [InlineData(0xffffffffu, 0xffffffffu, 0xffffffffu)]
    public async Task A_list_whose_numbers_cannot_be_true_fails_with_an_errno(uint nr, uint nameTotal, uint metadataTotal)
    {
        var lying = new LyingList(nr, nameTotal, metadataTotal, rc: 1);
        await using var client = new LivepatchClient(lying);
        long before = GC.GetAllocatedBytesForCurrentThread();
        var list = await client.ListAllAsync();
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        Assert.False(list.Result.Succeeded);
        Assert.Contains(list.Result.Errno, new[] { (int)XenErrno.EOVERFLOW, (int)XenErrno.EBUSY });
        Assert.True(allocated < 64L << 20, $"{allocated} bytes allocated for a lying LIST");
        Assert.All(lying.Calls, c => Assert.True(c.Nr <= Livepatch.ListMaxBatch && c.Buffers <= (1L << 20) + LivepatchClient.MaxMetadataBuffer, $"a batch of {c.Nr} with {c.Buffers} bytes of buffers"));
    }

    [Fact]
    public async Task A_probe_claiming_more_name_bytes_than_its_names_can_hold_is_EOVERFLOW()
    {
        await using var client = new LivepatchClient(new LyingList(2, 257, 0));
        var sizes = await client.GetListSizesAsync();
        Assert.Equal(-(int)XenErrno.EOVERFLOW, sizes.Result.Rc);
        await using var honest = new LivepatchClient(new LyingList(2, 256, 0));
        Assert.True((await honest.GetListSizesAsync()).Result.Succeeded);
    }
}
