using System.Buffers.Binary;

namespace XenLivepatch.Abi;

/// <summary><c>struct xen_sysctl_livepatch_action</c>: 24 bytes in the seed's form, 32 since Xen 4.14 (flags, pad).</summary>
public readonly record struct SysctlLivepatchAction
{
    /// <summary><c>xen_livepatch_name_t name</c>.</summary>
    public XenLivepatchName Name { get; init; }
    /// <summary><c>uint32_t cmd</c> (LIVEPATCH_ACTION_*).</summary>
    public uint Cmd { get; init; }
    /// <summary><c>uint32_t timeout</c> in ns; 0 means the hypervisor's 30 ms.</summary>
    public uint Timeout { get; init; }
    /// <summary><c>uint32_t flags</c> (Xen 4.14+; LIVEPATCH_ACTION_APPLY_NODEPS).</summary>
    public uint Flags { get; init; }
    /// <summary><c>uint32_t pad</c> (Xen 4.14+; must be 0).</summary>
    public uint Pad { get; init; }

    /// <summary>Size in a layout: 24 or 32.</summary>
    public static int SizeOf(SysctlLayout layout) => layout == SysctlLayout.Seed2016 ? 24 : 32;

    /// <summary>Member offsets (flags and pad exist since Xen 4.14).</summary>
    public static class FieldLocations
    {
        /// <summary><c>name</c>.</summary>
        public const int Name = 0;
        /// <summary><c>cmd</c>.</summary>
        public const int Cmd = 16;
        /// <summary><c>timeout</c>.</summary>
        public const int Timeout = 20;
        /// <summary><c>flags</c>.</summary>
        public const int Flags = 24;
        /// <summary><c>pad</c>.</summary>
        public const int Pad = 28;
    }

    /// <summary>The members in a layout, for layout checks.</summary>
    public static IReadOnlyList<AbiField> Fields(SysctlLayout layout) =>
    [
        .. XenLivepatchName.Fields.Select(f => f.Within("name", FieldLocations.Name)),
        new("cmd", FieldLocations.Cmd, 4),
        new("timeout", FieldLocations.Timeout, 4),
        .. layout == SysctlLayout.Seed2016 ? (AbiField[])[] : [new("flags", FieldLocations.Flags, 4), new("pad", FieldLocations.Pad, 4)],
    ];

    /// <summary>Reads the structure.</summary>
    public static SysctlLivepatchAction Read(ReadOnlySpan<byte> s, SysctlLayout layout) => new()
    {
        Name = XenLivepatchName.Read(s[FieldLocations.Name..]),
        Cmd = BinaryPrimitives.ReadUInt32LittleEndian(s[FieldLocations.Cmd..]),
        Timeout = BinaryPrimitives.ReadUInt32LittleEndian(s[FieldLocations.Timeout..]),
        Flags = layout == SysctlLayout.Seed2016 ? 0 : BinaryPrimitives.ReadUInt32LittleEndian(s[FieldLocations.Flags..]),
        Pad = layout == SysctlLayout.Seed2016 ? 0 : BinaryPrimitives.ReadUInt32LittleEndian(s[FieldLocations.Pad..]),
    };

    /// <summary>Writes the structure. In the 2016 layout flags and pad must be zero.</summary>
    public void Write(Span<byte> d, SysctlLayout layout)
    {
        Name.Write(d[FieldLocations.Name..]);
        BinaryPrimitives.WriteUInt32LittleEndian(d[FieldLocations.Cmd..], Cmd);
        BinaryPrimitives.WriteUInt32LittleEndian(d[FieldLocations.Timeout..], Timeout);
        if (layout == SysctlLayout.Seed2016)
        {
            if (Flags != 0 || Pad != 0)
                throw new ArgumentException("the 2016 action structure has no flags or pad", nameof(layout));
            return;
        }
        BinaryPrimitives.WriteUInt32LittleEndian(d[FieldLocations.Flags..], Flags);
        BinaryPrimitives.WriteUInt32LittleEndian(d[FieldLocations.Pad..], Pad);
    }
}
