using XenLivepatch.Abi;

namespace XenLivepatch.Control.Tests;

/// <summary>
/// The list rules of libxc's <c>xc_livepatch_list</c> (reference §5.2) against a hypervisor that answers -E2BIG,
/// is preempted, and changes its list while we read it.
/// </summary>
public class ListRetryTests
{
    private static FakeListHypervisor WithPayloads(int count, LivepatchAbi? abi = null)
    {
        var fake = new FakeListHypervisor(abi);
        for (int i = 0; i < count; i++)
            fake.Add($"p{i:00}", state: i % 2 == 0 ? 1u : 2u, metadata: i % 3 == 0 ? $"K{i}=V\0" : "");
        return fake;
    }

    private static async Task<(LivepatchList List, LivepatchListSizes Sizes)> ListEverything(FakeListHypervisor fake)
    {
        await using var client = new LivepatchClient(fake);
        var sizes = await client.GetListSizesAsync();
        Assert.True(sizes.Result.Succeeded, sizes.Result.ToString());
        var list = await client.ListAsync(sizes.Count, 0, sizes.NameTotalSize, sizes.MetadataTotalSize);
        return (list, sizes);
    }

    [Fact]
    public async Task The_probe_asks_for_nothing_and_reads_count_sizes_and_version()
    {
        var fake = WithPayloads(3);
        await using var client = new LivepatchClient(fake);
        var sizes = await client.GetListSizesAsync();
        Assert.Equal((3u, 3u * 4, (uint)"K0=V\0".Length, 4u), (sizes.Count, sizes.NameTotalSize, sizes.MetadataTotalSize, sizes.Version));
        Assert.Equal(new ListRequest(0, 0, 0, 0), Assert.Single(fake.Requests));
    }

    [Fact]
    public async Task One_batch_reads_names_states_and_metadata_in_upload_order()
    {
        var fake = WithPayloads(4);
        var (list, _) = await ListEverything(fake);
        Assert.Equal(0, list.Result.Rc);
        Assert.Equal(["p00", "p01", "p02", "p03"], list.Entries.Select(e => e.Name));
        Assert.Equal([1u, 2u, 1u, 2u], list.Entries.Select(e => e.Status.State));
        Assert.Equal(["K0=V"], list.Entries[0].MetadataStrings);
        Assert.Equal("K3=V\0"u8.ToArray(), list.Entries[3].Metadata);
        Assert.Empty(list.Entries[1].Metadata);
        Assert.Equal((0u, 4u), (list.Left, list.Done));
        Assert.Equal(new ListRequest(0, 4, 16, 10), fake.Requests[1]);
    }

    [Fact]
    public async Task A_preempted_hypervisor_is_read_in_several_batches_that_advance_idx_and_the_buffers()
    {
        var fake = WithPayloads(7);
        fake.PerCall = 3;
        var (list, sizes) = await ListEverything(fake);
        Assert.Equal(0, list.Result.Rc);
        Assert.Equal(Enumerable.Range(0, 7).Select(i => $"p{i:00}"), list.Entries.Select(e => e.Name));
        Assert.Equal(["K0=V", "K3=V", "K6=V"], list.Entries.SelectMany(e => e.MetadataStrings));
        // idx follows what is done; nr is what is still wanted; the sizes are the room left in the buffers.
        Assert.Equal([(0u, 7u), (3u, 4u), (6u, 1u)], fake.Requests.Skip(1).Select(r => (r.Idx, r.Nr)));
        Assert.Equal([sizes.NameTotalSize, sizes.NameTotalSize - 12, sizes.NameTotalSize - 24], fake.Requests.Skip(1).Select(r => r.NameTotalSize));
    }

    [Fact]
    public async Task E2BIG_halves_the_batch_until_the_hypervisor_takes_it()
    {
        var fake = WithPayloads(10);
        fake.E2bigAbove = 3;
        var (list, _) = await ListEverything(fake);
        Assert.Equal(0, list.Result.Rc);
        Assert.Equal(10, list.Entries.Count);
        Assert.Equal([10u, 5u, 2u, 2u, 2u, 2u, 2u], fake.Requests.Skip(1).Select(r => r.Nr));
        Assert.Equal([0u, 0u, 0u, 2u, 4u, 6u, 8u], fake.Requests.Skip(1).Select(r => r.Idx));
    }

    [Fact]
    public async Task E2BIG_for_a_batch_of_one_gives_up_with_E2BIG()
    {
        var fake = WithPayloads(3);
        fake.E2bigAbove = 0;
        var (list, _) = await ListEverything(fake);
        Assert.Equal(-(int)XenErrno.E2BIG, list.Result.Rc);
        Assert.Equal([3u, 1u], fake.Requests.Skip(1).Select(r => r.Nr));
        Assert.Empty(list.Entries);
    }

    [Fact]
    public async Task A_version_change_between_batches_restarts_from_scratch()
    {
        var fake = WithPayloads(6);
        fake.PerCall = 2;
        // Between the 2nd and 3rd LIST with entries, a payload is replaced by another of the same name length.
        fake.BeforeList = call =>
        {
            if (call == 3)
            {
                fake.Payloads.RemoveAt(5);
                fake.Add("q05", 2, 0, "");
            }
        };
        var (list, _) = await ListEverything(fake);
        Assert.Equal(0, list.Result.Rc);
        Assert.Equal(["p00", "p01", "p02", "p03", "p04", "q05"], list.Entries.Select(e => e.Name));
        // idx 0, 2, then 4 saw a new version: back to 0 with the whole buffers.
        Assert.Equal([0u, 2u, 4u, 0u, 2u, 4u], fake.Requests.Skip(1).Select(r => r.Idx));
        Assert.Equal(fake.Requests[1].NameTotalSize, fake.Requests[4].NameTotalSize);
    }

    [Fact]
    public async Task The_fifth_change_gives_EBUSY()
    {
        var fake = WithPayloads(4);
        fake.PerCall = 1;
        fake.BeforeList = call => fake.Version += call >= 2 ? 1u : 0u;
        var (list, _) = await ListEverything(fake);
        Assert.Equal(-(int)XenErrno.EBUSY, list.Result.Rc);
        // The first LIST fixes the version, four changes are retried, the fifth is given up.
        Assert.Equal(6, fake.Requests.Count - 1);
    }

    [Fact]
    public async Task Four_changes_are_tolerated()
    {
        var fake = WithPayloads(2);
        fake.PerCall = 1;
        fake.BeforeList = call => fake.Version += call is >= 2 and <= 5 ? 1u : 0u;
        var (list, _) = await ListEverything(fake);
        Assert.Equal(0, list.Result.Rc);
        Assert.Equal(["p00", "p01"], list.Entries.Select(e => e.Name));
    }

    [Fact]
    public async Task More_entries_than_asked_is_EOVERFLOW()
    {
        var fake = WithPayloads(2);
        fake.AnswerCountOverride = 5;
        var (list, _) = await ListEverything(fake);
        Assert.Equal(-(int)XenErrno.EOVERFLOW, list.Result.Rc);
    }

    [Fact]
    public async Task Arguments_are_checked_as_libxc_checks_them()
    {
        var fake = WithPayloads(1);
        await using var client = new LivepatchClient(fake);
        Assert.Equal(new LivepatchResult(LivepatchCall.List, -(int)XenErrno.EINVAL, true), (await client.ListAsync(0, 0, 10, 0)).Result);
        Assert.Equal(new LivepatchResult(LivepatchCall.List, -(int)XenErrno.ENOENT, true), (await client.ListAsync(1, 0, 0, 0)).Result);
        Assert.Empty(fake.Requests);
    }

    [Fact]
    public async Task Xen_4_21_gets_buffer_sizes_and_ENOBUFS_makes_ListAll_probe_again()
    {
        var fake = WithPayloads(3, LivepatchAbi.Xen421);
        // Between the probe and the first LIST, p00 goes and a payload with a longer name comes: the names no
        // longer fit the buffer sized from the probe.
        fake.BeforeList = call =>
        {
            if (call == 1)
            {
                fake.Payloads.RemoveAt(0);
                fake.Add("a-longer-name", 1, 0, "X=1\0");
            }
        };
        await using var client = new LivepatchClient(fake);
        var all = await client.ListAllAsync();
        Assert.Equal(0, all.Result.Rc);
        Assert.Equal(["p01", "p02", "a-longer-name"], all.Entries.Select(e => e.Name));
        Assert.Equal([0, -(int)XenErrno.ENOBUFS, 0, 3], fake.Answers);
        Assert.Equal([0u, 3u, 0u, 3u], fake.Requests.Select(q => q.Nr));
        Assert.Equal((12u, 5u), (fake.Requests[1].NameTotalSize, fake.Requests[1].MetadataTotalSize));
    }

    [Fact]
    public async Task ListAsync_reports_ENOBUFS_as_libxc_does()
    {
        var fake = WithPayloads(2, LivepatchAbi.Xen421);
        await using var client = new LivepatchClient(fake);
        var list = await client.ListAsync(2, 0, 4, 0);
        Assert.Equal(-(int)XenErrno.ENOBUFS, list.Result.Rc);
        Assert.Equal(new ListRequest(0, 2, 4, 0), Assert.Single(fake.Requests));
    }

    [Fact]
    public async Task On_Xen_4_17_a_list_that_outgrew_the_buffers_faults_and_ListAll_reads_it_again()
    {
        var fake = WithPayloads(2);
        fake.BeforeList = call =>
        {
            if (call == 1)
            {
                fake.Payloads.RemoveAt(0);
                fake.Add("much-longer-name", 1, 0, "");
            }
        };
        await using var client = new LivepatchClient(fake);
        var all = await client.ListAllAsync();
        Assert.Equal(0, all.Result.Rc);
        Assert.Equal(["p01", "much-longer-name"], all.Entries.Select(e => e.Name));
        Assert.Equal(4, fake.Requests.Count);
    }

    [Fact]
    public async Task ListAll_of_nothing_is_empty_after_one_probe()
    {
        var fake = new FakeListHypervisor();
        await using var client = new LivepatchClient(fake);
        var all = await client.ListAllAsync();
        Assert.Equal((0, 0), (all.Result.Rc, all.Entries.Count));
        Assert.Single(fake.Requests);
    }
}
