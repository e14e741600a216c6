using System.Buffers.Binary;

namespace XenLivepatch.Abi;

/// <summary>
/// <c>struct xen_sysctl_livepatch_op</c>: <c>cmd</c>, <c>flags</c> (the 2016 <c>pad</c>) and a union of the four
/// sub-op structures: 48 bytes in the seed's form, 72 since Xen 4.14. Only the member that <see cref="Cmd"/>
/// selects is meaningful; writing clears the rest of the union.
/// </summary>
public readonly record struct SysctlLivepatchOp
{
    /// <summary>Offset of the union.</summary>
    public const int UnionOffset = 8;

    /// <summary><c>uint32_t cmd</c> (XEN_SYSCTL_LIVEPATCH_*).</summary>
    public LivepatchSubOp Cmd { get; init; }
    /// <summary><c>uint32_t flags</c> (LIVEPATCH_FLAG_FORCE); <c>pad</c> in the 2016 header, which required 0.</summary>
    public uint Flags { get; init; }
    /// <summary><c>u.upload</c>, when <see cref="Cmd"/> is Upload.</summary>
    public SysctlLivepatchUpload Upload { get; init; }
    /// <summary><c>u.get</c>, when <see cref="Cmd"/> is Get.</summary>
    public SysctlLivepatchGet Get { get; init; }
    /// <summary><c>u.list</c>, when <see cref="Cmd"/> is List.</summary>
    public SysctlLivepatchList List { get; init; }
    /// <summary><c>u.action</c>, when <see cref="Cmd"/> is Action.</summary>
    public SysctlLivepatchAction Action { get; init; }

    /// <summary>Size of the union in a layout: its largest member, <c>list</c>.</summary>
    public static int UnionSize(SysctlLayout layout) => SysctlLivepatchList.SizeOf(layout);

    /// <summary>Size in a layout: 48 or 72.</summary>
    public static int SizeOf(SysctlLayout layout) => UnionOffset + UnionSize(layout);

    /// <summary>The members in a layout, for layout checks.</summary>
    public static IReadOnlyList<AbiField> Fields(SysctlLayout layout) =>
    [
        new("cmd", 0, 4),
        new(layout == SysctlLayout.Seed2016 ? "pad" : "flags", 4, 4),
        .. SysctlLivepatchUpload.Fields.Select(f => f.Within("u.upload", UnionOffset)),
        .. SysctlLivepatchGet.Fields.Select(f => f.Within("u.get", UnionOffset)),
        .. SysctlLivepatchList.Fields(layout).Select(f => f.Within("u.list", UnionOffset)),
        .. SysctlLivepatchAction.Fields(layout).Select(f => f.Within("u.action", UnionOffset)),
    ];

    /// <summary>Reads <c>cmd</c>, <c>flags</c> and the union member <c>cmd</c> selects (none for an unknown cmd).</summary>
    public static SysctlLivepatchOp Read(ReadOnlySpan<byte> s, SysctlLayout layout)
    {
        var cmd = (LivepatchSubOp)BinaryPrimitives.ReadUInt32LittleEndian(s);
        uint flags = BinaryPrimitives.ReadUInt32LittleEndian(s[4..]);
        var u = s.Slice(UnionOffset, UnionSize(layout));
        return cmd switch
        {
            LivepatchSubOp.Upload => new SysctlLivepatchOp { Cmd = cmd, Flags = flags, Upload = SysctlLivepatchUpload.Read(u) },
            LivepatchSubOp.Get => new SysctlLivepatchOp { Cmd = cmd, Flags = flags, Get = SysctlLivepatchGet.Read(u) },
            LivepatchSubOp.List => new SysctlLivepatchOp { Cmd = cmd, Flags = flags, List = SysctlLivepatchList.Read(u, layout) },
            LivepatchSubOp.Action => new SysctlLivepatchOp { Cmd = cmd, Flags = flags, Action = SysctlLivepatchAction.Read(u, layout) },
            _ => new SysctlLivepatchOp { Cmd = cmd, Flags = flags },
        };
    }

    /// <summary>Writes <c>cmd</c>, <c>flags</c> and the selected union member; the rest of the union is zeroed.</summary>
    public void Write(Span<byte> d, SysctlLayout layout)
    {
        BinaryPrimitives.WriteUInt32LittleEndian(d, (uint)Cmd);
        BinaryPrimitives.WriteUInt32LittleEndian(d[4..], Flags);
        var u = d.Slice(UnionOffset, UnionSize(layout));
        u.Clear();
        switch (Cmd)
        {
            case LivepatchSubOp.Upload: Upload.Write(u); break;
            case LivepatchSubOp.Get: Get.Write(u); break;
            case LivepatchSubOp.List: List.Write(u, layout); break;
            case LivepatchSubOp.Action: Action.Write(u, layout); break;
        }
    }
}

/// <summary>
/// <c>struct xen_sysctl</c> (136 bytes): <c>cmd</c>, <c>interface_version</c> and a 128-byte union. This is the
/// buffer that crosses the hypercall (and our sandbox socket): the livepatch op sits at the union's start.
/// </summary>
public readonly record struct XenSysctl(uint Cmd, uint InterfaceVersion)
{
    /// <summary><c>sizeof(struct xen_sysctl)</c>.</summary>
    public const int SizeOf = 136;

    /// <summary>Offset of the union.</summary>
    public const int UnionOffset = 8;

    /// <summary>Size of the union (<c>uint8_t pad[128]</c>).</summary>
    public const int UnionSize = 128;

    /// <summary>The members in a layout, for layout checks.</summary>
    public static IReadOnlyList<AbiField> Fields(SysctlLayout layout) =>
    [
        new("cmd", 0, 4),
        new("interface_version", 4, 4),
        new("u.pad", UnionOffset, UnionSize),
        .. SysctlLivepatchOp.Fields(layout).Select(f => f.Within("u.livepatch", UnionOffset)),
    ];

    /// <summary>Reads <c>cmd</c> and <c>interface_version</c>.</summary>
    public static XenSysctl ReadHeader(ReadOnlySpan<byte> s) =>
        new(BinaryPrimitives.ReadUInt32LittleEndian(s), BinaryPrimitives.ReadUInt32LittleEndian(s[4..]));

    /// <summary>Encodes a livepatch sysctl of dialect <paramref name="abi"/> into a new 136-byte buffer.</summary>
    public static byte[] EncodeLivepatch(LivepatchAbi abi, in SysctlLivepatchOp op)
    {
        var buffer = new byte[SizeOf];
        WriteLivepatch(buffer, abi, op);
        return buffer;
    }

    /// <summary>Writes a whole livepatch sysctl of dialect <paramref name="abi"/> (the union is zeroed first).</summary>
    public static void WriteLivepatch(Span<byte> d, LivepatchAbi abi, in SysctlLivepatchOp op)
    {
        ArgumentNullException.ThrowIfNull(abi);
        d[..SizeOf].Clear();
        BinaryPrimitives.WriteUInt32LittleEndian(d, Livepatch.SysctlCommand);
        BinaryPrimitives.WriteUInt32LittleEndian(d[4..], abi.InterfaceVersion);
        op.Write(d[UnionOffset..], abi.Layout);
    }

    /// <summary>Reads the livepatch op of a sysctl buffer in <paramref name="layout"/>.</summary>
    public static SysctlLivepatchOp ReadLivepatch(ReadOnlySpan<byte> s, SysctlLayout layout) =>
        SysctlLivepatchOp.Read(s[UnionOffset..], layout);
}
