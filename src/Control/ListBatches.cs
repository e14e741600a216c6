using System.Buffers.Binary;
using XenLivepatch.Abi;

namespace XenLivepatch.Control;

/// <summary>
/// <c>xc_livepatch_list</c>'s batching (<see cref="LivepatchClient.ListAsync"/> documents the rules): LIST calls
/// until the entries asked for are in, halving the batch on -E2BIG, restarting when the list changes, and
/// refusing a reply that claims more than its buffers hold.
/// </summary>
internal static class ListBatches
{
    /// <summary>Reads up to <paramref name="max"/> entries from <paramref name="start"/>, in batches.</summary>
    public static async Task<LivepatchList> ReadAsync(ISysctlTransport transport, uint max, uint start, uint nameTotalSize, uint metadataTotalSize,
        CancellationToken cancellationToken)
    {
        if (max == 0)
            return Failed(-(int)XenErrno.EINVAL, local: true);
        // The 2016 layout has no name buffer size: each name has a 128-byte slot, and the size probe answers 0.
        bool seed = transport.Abi.Layout == SysctlLayout.Seed2016;
        if (nameTotalSize == 0 && !seed)
            return Failed(-(int)XenErrno.ENOENT, local: true);
        var entries = new List<LivepatchListEntry>();
        // Xen refuses a batch above 1024 entries (E2BIG); asking for more would only size buffers for them.
        uint batch = Math.Min(max, Livepatch.ListMaxBatch), version = 0, left = 0, nameUsed = 0, metadataUsed = 0;
        int retries = 0;
        while (true)
        {
            uint nr = Math.Min(max - (uint)entries.Count, batch);
            // The buffers are what this batch can need, whatever the sizes claim: a name takes at most 128 bytes,
            // and the metadata at most LivepatchClient.MaxMetadataBuffer (the probe's numbers come from the transport).
            uint nameRoom = Math.Min(nameTotalSize - nameUsed, nr * (uint)Livepatch.NameSize);
            uint metadataRoom = Math.Min(metadataTotalSize - metadataUsed, LivepatchClient.MaxMetadataBuffer);
            var buffers = new GuestLayout();
            var status = buffers.Out(checked((int)nr * XenLivepatchStatus.SizeOf));
            // The 2016 layout has fixed 128-byte name slots and no metadata.
            var names = buffers.Out(seed ? checked((int)nr * Livepatch.NameSize) : (int)nameRoom);
            var lengths = buffers.Out(checked((int)nr * 4));
            var metadata = seed ? null : buffers.Out((int)metadataRoom);
            var metadataLengths = seed ? null : buffers.Out(checked((int)nr * 4));
            var op = new SysctlLivepatchOp
            {
                Cmd = LivepatchSubOp.List,
                List = new SysctlLivepatchList
                {
                    Idx = start + (uint)entries.Count,
                    Nr = nr,
                    // Buffer sizes on input since Xen 4.21 (interface 0x16); earlier hypervisors overwrite them.
                    NameTotalSize = seed ? 0 : nameRoom,
                    MetadataTotalSize = seed ? 0 : metadataRoom,
                    Status = status.Address,
                    Name = names.Address,
                    Len = lengths.Address,
                    Metadata = metadata?.Address ?? 0,
                    MetadataLen = metadataLengths?.Address ?? 0,
                },
            };
            byte[] sysctl = XenSysctl.EncodeLivepatch(transport.Abi, op);
            int rc = await transport.CallAsync(sysctl, buffers.Buffers, cancellationToken).ConfigureAwait(false);
            if (rc == -(int)XenErrno.E2BIG)
            {
                if (batch <= 1)
                    return Failed(rc, entries, left, version);
                batch >>= 1;
                continue;
            }
            var reply = XenSysctl.ReadLivepatch(sysctl, transport.Abi.Layout).List;
            if (rc < 0)
            {
                // Xen copies the structure back on errors too: its version tells whether the list changed.
                return Failed(rc, entries, left, reply.Version != 0 ? reply.Version : version);
            }
            if (version == 0)
                version = reply.Version;
            // No progress while entries remain counts as a change too, so that a list that keeps shrinking under
            // us cannot make this loop forever.
            if (reply.Version != version || (rc == 0 && reply.Nr != 0 && entries.Count < max))
            {
                if (retries++ >= LivepatchClient.MaxListRetries)
                    return Failed(-(int)XenErrno.EBUSY, entries, left, version);
                entries.Clear();
                nameUsed = metadataUsed = 0;
                version = reply.Version;
                continue;
            }
            if (rc > nr)
                return Failed(-(int)XenErrno.EOVERFLOW, entries, left, version);
            left = reply.Nr;
            uint nameWritten = seed ? 0 : reply.NameTotalSize, metadataWritten = seed ? 0 : reply.MetadataTotalSize;
            if (nameWritten > nameRoom || metadataWritten > metadataRoom ||
                !TryParseBatch(rc, seed, status.Data, names.Data, nameWritten, lengths.Data, metadata?.Data, metadataWritten, metadataLengths?.Data, entries))
            {
                // The hypervisor says it wrote more than the buffers hold, or the lengths do not add up.
                return Failed(-(int)XenErrno.EOVERFLOW, entries, left, version);
            }
            nameUsed += nameWritten;
            metadataUsed += metadataWritten;
            if (entries.Count >= max || left == 0)
                return new LivepatchList(new LivepatchResult(LivepatchCall.List, 0), entries, left, version);
        }
    }

    private static LivepatchList Failed(int rc, List<LivepatchListEntry>? entries = null, uint left = 0, uint version = 0, bool local = false) =>
        new(new LivepatchResult(LivepatchCall.List, rc, local), entries ?? [], left, version);

    private static bool TryParseBatch(int count, bool seed, byte[] status, byte[] names, uint namesWritten, byte[] lengths,
        byte[]? metadata, uint metadataWritten, byte[]? metadataLengths, List<LivepatchListEntry> entries)
    {
        uint nameAt = 0, metadataAt = 0;
        for (int k = 0; k < count; k++)
        {
            var st = XenLivepatchStatus.Read(status.AsSpan(k * XenLivepatchStatus.SizeOf));
            uint len = BinaryPrimitives.ReadUInt32LittleEndian(lengths.AsSpan(k * 4));
            byte[] name;
            byte[] meta = [];
            if (seed)
            {
                // 2016: each name in its own 128-byte slot; len excludes the NUL.
                if (len >= Livepatch.NameSize)
                    return false;
                name = names.AsSpan(k * Livepatch.NameSize, (int)len).ToArray();
            }
            else
            {
                // 4.14+: names back to back, len includes the NUL.
                if (len == 0 || len > namesWritten - nameAt)
                    return false;
                var slice = names.AsSpan((int)nameAt, (int)len);
                int nul = slice.IndexOf((byte)0);
                name = slice[..(nul < 0 ? slice.Length : nul)].ToArray();
                nameAt += len;
                uint mlen = BinaryPrimitives.ReadUInt32LittleEndian(metadataLengths!.AsSpan(k * 4));
                if (mlen > metadataWritten - metadataAt)
                    return false;
                meta = metadata!.AsSpan((int)metadataAt, (int)mlen).ToArray();
                metadataAt += mlen;
            }
            // A payload's name has 1 to 127 bytes (Xen refuses others at upload): anything else is not a list a
            // hypervisor holds, and a name the tool could not give back to GET.
            if (name.Length is 0 or >= Livepatch.NameSize)
                return false;
            entries.Add(new LivepatchListEntry(RawText.Decode(name), name, st, meta));
        }
        return seed || (nameAt == namesWritten && metadataAt == metadataWritten);
    }
}
