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

    /// <summary>Answers the size probe for one payload, then a batch holding <paramref name="name"/> with length <paramref name="len"/>.</summary>
    private sealed class OneName(byte[] name, uint len) : ISysctlTransport
    {
        public string Description => "a hypervisor with one odd name";
        public LivepatchAbi Abi => LivepatchAbi.Xen417;
        public ValueTask DisposeAsync() => ValueTask.CompletedTask;

        public ValueTask<int> CallAsync(byte[] sysctl, IReadOnlyList<WireBuffer> buffers, CancellationToken cancellationToken = default)
        {
            var op = XenSysctl.ReadLivepatch(sysctl, Abi.Layout);
            uint total = (uint)name.Length;
            if (op.List.Nr != 0)
            {
                // The buffers in the order the client lays them out: status, names, lengths, metadata, metadata lengths.
                name.CopyTo(buffers[1].Data, 0);
                BitConverter.TryWriteBytes(buffers[2].Data, len);
            }
            var reply = op.List with { Nr = op.List.Nr == 0 ? 1u : 0u, NameTotalSize = total, MetadataTotalSize = 0, Version = 1 };
            (op with { List = reply }).Write(sysctl.AsSpan(XenSysctl.UnionOffset), Abi.Layout);
            return ValueTask.FromResult(op.List.Nr == 0 ? 0 : 1);
        }
    }

    // Found by fuzzing (fuzz/corpus/client/crash-empty-name): names no hypervisor holds came out as entries, an empty
    // one, or one of 128 bytes that GET could not be given back.
    [Theory]
    [InlineData(1, 1)]
    [InlineData(128, 128)]
    public async Task A_listed_name_that_no_hypervisor_holds_is_EOVERFLOW(int size, uint len)
    {
        byte[] name = new byte[size];
        name.AsSpan(0, size - 1).Fill((byte)'a');   // NUL-terminated: an empty name
        if (size == 128)
            name[^1] = (byte)'a';                   // 128 bytes and no NUL
        await using var client = new LivepatchClient(new OneName(name, len));
        var list = await client.ListAllAsync();
        Assert.Equal(-(int)XenErrno.EOVERFLOW, list.Result.Rc);
        Assert.Empty(list.Entries);
        // The longest name Xen holds (127 bytes and its NUL) is listed.
        byte[] longest = [.. Enumerable.Repeat((byte)'b', 127), 0];
        await using var honest = new LivepatchClient(new OneName(longest, 128));
        var ok = await honest.ListAllAsync();
        Assert.True(ok.Result.Succeeded, ok.Result.ToString());
        Assert.Equal(new string('b', 127), Assert.Single(ok.Entries).Name);
    }
}
