using System.Buffers.Binary;
using System.Text;
using XenLivepatch.Abi;

namespace XenLivepatch.Hypervisor;

/// <summary>
/// The caller's memory, as the hypervisor reaches it through guest handles (addresses in the caller's
/// space): <c>copy_from_guest</c>, <c>copy_to_guest</c> and <c>guest_handle_okay</c>.
/// </summary>
public interface IGuestMemory
{
    /// <summary>Copies from the caller; false when the range is not the caller's (-EFAULT).</summary>
    bool Read(ulong address, Span<byte> destination);

    /// <summary>Copies to the caller; false when the range is not the caller's (-EFAULT).</summary>
    bool Write(ulong address, ReadOnlySpan<byte> source);

    /// <summary><c>guest_handle_okay</c>: whether [address, address+length) may be accessed.</summary>
    bool Okay(ulong address, ulong length);
}

/// <summary>
/// <c>do_sysctl</c> for XEN_SYSCTL_livepatch_op and <c>livepatch_op</c> (xen/common/sysctl.c,
/// xen/common/livepatch.c): decodes the 136-byte <c>xen_sysctl</c>, checks the interface version and the
/// caller's privilege, runs the sub-op on the core with the caller's buffers, and writes the structure back
/// (even on error, as Xen does, except for -ENOSYS and -EOPNOTSUPP). Every transport (the sandbox socket,
/// in-process calls) goes through here, with the same bytes as the real hypercall.
/// </summary>
public sealed partial class SysctlHandler
{
    /// <summary>Creates the handler for a core, with a console ring that records the core's log lines.</summary>
    public SysctlHandler(LivepatchCore core)
    {
        Core = core;
        Console = XenConsole.For(core);
    }

    /// <summary>The core.</summary>
    public LivepatchCore Core { get; }

    private LivepatchProfile Profile => Core.Profile;

    /// <summary>Handles one sysctl; returns the hypercall's result (0, a count for LIST, or -errno).</summary>
    public int Handle(Span<byte> sysctl, IGuestMemory guest, bool privileged)
    {
        if (sysctl.Length < XenSysctl.SizeOf)
            return LivepatchCheck.SysctlTooShort.Rc();
        var header = XenSysctl.ReadHeader(sysctl);
        if (header.InterfaceVersion != Profile.Abi.InterfaceVersion)
            return LivepatchCheck.SysctlInterfaceVersion.Rc();
        if (!privileged)
            return LivepatchCheck.SysctlNotPrivileged.Rc();
        if (header.Cmd != Livepatch.SysctlCommand)
            return OtherSysctl(header.Cmd, sysctl, guest);
        var layout = Profile.Abi.Layout;
        var op = XenSysctl.ReadLivepatch(sysctl, layout);
        int rc = LivepatchOp(ref op, guest);
        if (rc != -(int)XenErrno.ENOSYS && rc != -(int)XenErrno.EOPNOTSUPP)
            op.Write(sysctl[XenSysctl.UnionOffset..], layout);
        return rc;
    }

    private int LivepatchOp(ref SysctlLivepatchOp op, IGuestMemory guest)
    {
        if (Profile.AcceptsOpFlags)
        {
            // Unknown bits pass as long as FORCE is set too (Xen's quirk).
            if ((op.Flags & ~(uint)LivepatchOpFlags.Force) != 0 && (op.Flags & (uint)LivepatchOpFlags.Force) == 0)
                return LivepatchCheck.OpFlagsUnknown.Rc();
        }
        else if (op.Flags != 0)
        {
            return LivepatchCheck.OpPadNotZero.Rc();
        }
        switch (op.Cmd)
        {
            case LivepatchSubOp.Upload:
                return Upload(op.Upload, (op.Flags & (uint)LivepatchOpFlags.Force) != 0 && Profile.AcceptsOpFlags, guest);
            case LivepatchSubOp.Get:
            {
                var get = op.Get;
                int rc = GetName(get.Name, guest, out string name);
                if (rc != 0)
                    return rc;
                rc = Core.Get(name, out var status);
                if (rc == 0)
                    op = op with { Get = get with { Status = status } };
                return rc;
            }
            case LivepatchSubOp.List:
            {
                var list = op.List;
                int rc = List(ref list, guest);
                op = op with { List = list };
                return rc;
            }
            case LivepatchSubOp.Action:
            {
                var action = op.Action;
                if (Profile.Abi.Layout == SysctlLayout.Xen414 && action.Pad != 0)
                    return LivepatchCheck.ActionPadNotZero.Rc();
                int rc = GetName(action.Name, guest, out string name);
                if (rc != 0)
                    return rc;
                return Core.Action(name, (LivepatchAction)action.Cmd, action.Timeout, (LivepatchActionFlags)action.Flags);
            }
            default:
                return LivepatchCheck.OpUnknown.Rc();
        }
    }

    // get_name: size 1..128, pad zero, the bytes readable, NUL-terminated; the name stops at the first NUL.
    private static int GetName(in XenLivepatchName n, IGuestMemory guest, out string name)
    {
        name = "";
        if (n.Size == 0 || n.Size > Livepatch.NameSize)
            return LivepatchCheck.NameSize.Rc();
        if (!n.PadIsZero)
            return LivepatchCheck.NamePadNotZero.Rc();
        Span<byte> buffer = stackalloc byte[Livepatch.NameSize];
        var bytes = buffer[..n.Size];
        if (!guest.Read(n.Name, bytes))
            return LivepatchCheck.NameFault.Rc();
        if (bytes[^1] != 0)
            return LivepatchCheck.NameNotTerminated.Rc();
        name = Encoding.Latin1.GetString(bytes[..bytes.IndexOf((byte)0)]);
        return 0;
    }

    // livepatch_upload after verify_payload
    private int Upload(in SysctlLivepatchUpload upload, bool force, IGuestMemory guest)
    {
        if (GetName(upload.Name, guest, out string name) != 0)
            return LivepatchCheck.UploadName.Rc();
        if (LivepatchCore.CheckUploadSize(name, upload.Size) is { } size)
            return size.Rc;
        if (!guest.Okay(upload.Payload, upload.Size))
            return LivepatchCheck.UploadFault.Rc();
        if (Core.CheckNameUnused(name) is { } used)
            return used.Rc;
        var data = new byte[upload.Size];
        if (!guest.Read(upload.Payload, data))
            return LivepatchCheck.UploadFault.Rc();
        return Core.Upload(name, data, force ? UploadOptions.Force : UploadOptions.None) is { } e ? e.Rc : 0;
    }

    // livepatch_list
    private int List(ref SysctlLivepatchList list, IGuestMemory guest)
    {
        bool seed = Profile.Abi.Layout == SysctlLayout.Seed2016, sizesIn = Profile.Abi.ListSizesAreInputs;
        if (list.Nr > Livepatch.ListMaxBatch)
            return LivepatchCheck.ListBatchTooLarge.Rc();
        if (list.Pad != 0)
            return LivepatchCheck.ListPadNotZero.Rc();
        if (list.Nr != 0 && (!guest.Okay(list.Status, (ulong)list.Nr * XenLivepatchStatus.SizeOf) || !guest.Okay(list.Len, (ulong)list.Nr * 4) ||
            (seed ? !guest.Okay(list.Name, (ulong)list.Nr * Livepatch.NameSize) : !guest.Okay(list.MetadataLen, (ulong)list.Nr * 4))))
            return LivepatchCheck.ListBuffers.Rc();
        var l = list;
        int result = Core.Read((payloads, version) =>
        {
            int count = payloads.Count;
            if (l.Idx >= count && count != 0)
                return LivepatchCheck.ListIndex.Rc();
            uint nameIn = l.NameTotalSize, metaIn = l.MetadataTotalSize;
            uint nameTotal = 0, metaTotal = 0;
            int rc = 0, idx = 0, i = 0;
            if (l.Nr != 0)
            {
                ulong nameOffset = 0, metaOffset = 0;
                Span<byte> word = stackalloc byte[8];
                foreach (var p in payloads)
                {
                    if (l.Idx > i++)
                        continue;
                    byte[] nameBytes = Encoding.Latin1.GetBytes(p.Name + "\0");
                    uint nameLen = (uint)nameBytes.Length;
                    var meta = p.Metadata.Span;
                    uint metaLen = (uint)meta.Length;
                    if (seed)
                    {
                        uint len = nameLen - 1;
                        BinaryPrimitives.WriteUInt32LittleEndian(word, len);
                        if (!guest.Write(l.Name + (ulong)idx * Livepatch.NameSize, nameBytes) || !guest.Write(l.Len + (ulong)idx * 4, word[..4]) ||
                            !WriteStatus(guest, l.Status + (ulong)idx * 8, p))
                        {
                            rc = LivepatchCheck.ListFault.Rc();
                            break;
                        }
                    }
                    else
                    {
                        // Xen 4.21+: the sizes given are the buffers'; what comes back is what this call copied.
                        // Before, the sizes are outputs only, counting the entry a copy failed at too.
                        if (sizesIn && ((ulong)nameTotal + nameLen > nameIn || (ulong)metaTotal + metaLen > metaIn))
                        {
                            rc = LivepatchCheck.ListNoBufferSpace.Rc();
                            break;
                        }
                        if (!sizesIn)
                        {
                            nameTotal += nameLen;
                            metaTotal += metaLen;
                        }
                        if (!guest.Okay(l.Name + nameOffset, nameLen) || (metaLen != 0 && !guest.Okay(l.Metadata + metaOffset, metaLen)))
                        {
                            rc = LivepatchCheck.ListEntryBuffers.Rc();
                            break;
                        }
                        BinaryPrimitives.WriteUInt32LittleEndian(word, nameLen);
                        BinaryPrimitives.WriteUInt32LittleEndian(word[4..], metaLen);
                        if (!guest.Write(l.Name + nameOffset, nameBytes) || !guest.Write(l.Len + (ulong)idx * 4, word[..4]) ||
                            !WriteStatus(guest, l.Status + (ulong)idx * 8, p) || !guest.Write(l.Metadata + metaOffset, meta) ||
                            !guest.Write(l.MetadataLen + (ulong)idx * 4, word[4..]))
                        {
                            rc = LivepatchCheck.ListFault.Rc();
                            break;
                        }
                        if (sizesIn)
                        {
                            nameTotal += nameLen;
                            metaTotal += metaLen;
                        }
                        nameOffset += nameLen;
                        metaOffset += metaLen;
                    }
                    idx++;
                    if (idx >= l.Nr)
                        break;
                }
            }
            else if (!seed)
            {
                foreach (var p in payloads)
                {
                    nameTotal += (uint)Encoding.Latin1.GetByteCount(p.Name) + 1;
                    metaTotal += (uint)p.Metadata.Length;
                }
            }
            l = l with
            {
                Nr = (uint)(count - i),
                Version = version,
                NameTotalSize = seed ? l.NameTotalSize : nameTotal,
                MetadataTotalSize = seed ? l.MetadataTotalSize : metaTotal,
            };
            return rc != 0 ? rc : idx;
        });
        list = l;
        return result;
    }

    private static bool WriteStatus(IGuestMemory guest, ulong address, Payload p)
    {
        Span<byte> s = stackalloc byte[XenLivepatchStatus.SizeOf];
        new XenLivepatchStatus((uint)p.State, p.Rc).Write(s);
        return guest.Write(address, s);
    }
}
