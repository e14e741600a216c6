using System.Buffers.Binary;

namespace XenLivepatch.Abi;

/// <summary>
/// <c>struct xen_sysctl_livepatch_list</c>: 40 bytes in the seed's form (names in 128-byte slots), 64 bytes
/// since Xen 4.14 (names and metadata packed back to back, with their total sizes).
/// </summary>
public readonly record struct SysctlLivepatchList
{
    /// <summary><c>uint32_t version</c> (OUT): the payload list's version stamp.</summary>
    public uint Version { get; init; }
    /// <summary><c>uint32_t idx</c> (IN): where to start in the hypervisor's list.</summary>
    public uint Idx { get; init; }
    /// <summary><c>uint32_t nr</c> (IN: entries wanted, 0 to probe; OUT: entries remaining).</summary>
    public uint Nr { get; init; }
    /// <summary><c>uint32_t pad</c> (must be 0).</summary>
    public uint Pad { get; init; }
    /// <summary><c>uint32_t name_total_size</c> (Xen 4.14+).</summary>
    public uint NameTotalSize { get; init; }
    /// <summary><c>uint32_t metadata_total_size</c> (Xen 4.14+).</summary>
    public uint MetadataTotalSize { get; init; }
    /// <summary><c>XEN_GUEST_HANDLE_64(xen_livepatch_status_t) status</c>.</summary>
    public ulong Status { get; init; }
    /// <summary><c>XEN_GUEST_HANDLE_64(char) name</c>.</summary>
    public ulong Name { get; init; }
    /// <summary><c>XEN_GUEST_HANDLE_64(uint32) len</c>.</summary>
    public ulong Len { get; init; }
    /// <summary><c>XEN_GUEST_HANDLE_64(char) metadata</c> (Xen 4.14+).</summary>
    public ulong Metadata { get; init; }
    /// <summary><c>XEN_GUEST_HANDLE_64(uint32) metadata_len</c> (Xen 4.14+).</summary>
    public ulong MetadataLen { get; init; }

    /// <summary>Size in a layout: 40 or 64.</summary>
    public static int SizeOf(SysctlLayout layout) => layout == SysctlLayout.Seed2016 ? 40 : 64;

    /// <summary>Member offsets of the seed's 2016 form.</summary>
    public static class FieldLocations2016
    {
        /// <summary><c>version</c>.</summary>
        public const int Version = 0;
        /// <summary><c>idx</c>.</summary>
        public const int Idx = 4;
        /// <summary><c>nr</c>.</summary>
        public const int Nr = 8;
        /// <summary><c>pad</c>.</summary>
        public const int Pad = 12;
        /// <summary><c>status</c>.</summary>
        public const int Status = 16;
        /// <summary><c>name</c>.</summary>
        public const int Name = 24;
        /// <summary><c>len</c>.</summary>
        public const int Len = 32;
    }

    /// <summary>Member offsets since Xen 4.14.</summary>
    public static class FieldLocations
    {
        /// <summary><c>version</c>.</summary>
        public const int Version = 0;
        /// <summary><c>idx</c>.</summary>
        public const int Idx = 4;
        /// <summary><c>nr</c>.</summary>
        public const int Nr = 8;
        /// <summary><c>pad</c>.</summary>
        public const int Pad = 12;
        /// <summary><c>name_total_size</c>.</summary>
        public const int NameTotalSize = 16;
        /// <summary><c>metadata_total_size</c>.</summary>
        public const int MetadataTotalSize = 20;
        /// <summary><c>status</c>.</summary>
        public const int Status = 24;
        /// <summary><c>name</c>.</summary>
        public const int Name = 32;
        /// <summary><c>len</c>.</summary>
        public const int Len = 40;
        /// <summary><c>metadata</c>.</summary>
        public const int Metadata = 48;
        /// <summary><c>metadata_len</c>.</summary>
        public const int MetadataLen = 56;
    }

    /// <summary>The members in a layout, for layout checks.</summary>
    public static IReadOnlyList<AbiField> Fields(SysctlLayout layout) => layout == SysctlLayout.Seed2016
        ? [new("version", 0, 4), new("idx", 4, 4), new("nr", 8, 4), new("pad", 12, 4), new("status", 16, 8), new("name", 24, 8), new("len", 32, 8)]
        : [new("version", 0, 4), new("idx", 4, 4), new("nr", 8, 4), new("pad", 12, 4), new("name_total_size", 16, 4), new("metadata_total_size", 20, 4),
           new("status", 24, 8), new("name", 32, 8), new("len", 40, 8), new("metadata", 48, 8), new("metadata_len", 56, 8)];

    /// <summary>Reads the structure.</summary>
    public static SysctlLivepatchList Read(ReadOnlySpan<byte> s, SysctlLayout layout)
    {
        if (layout == SysctlLayout.Seed2016)
        {
            return new SysctlLivepatchList
            {
                Version = U32(s, FieldLocations2016.Version), Idx = U32(s, FieldLocations2016.Idx), Nr = U32(s, FieldLocations2016.Nr), Pad = U32(s, FieldLocations2016.Pad),
                Status = U64(s, FieldLocations2016.Status), Name = U64(s, FieldLocations2016.Name), Len = U64(s, FieldLocations2016.Len),
            };
        }
        return new SysctlLivepatchList
        {
            Version = U32(s, FieldLocations.Version), Idx = U32(s, FieldLocations.Idx), Nr = U32(s, FieldLocations.Nr), Pad = U32(s, FieldLocations.Pad),
            NameTotalSize = U32(s, FieldLocations.NameTotalSize), MetadataTotalSize = U32(s, FieldLocations.MetadataTotalSize),
            Status = U64(s, FieldLocations.Status), Name = U64(s, FieldLocations.Name), Len = U64(s, FieldLocations.Len),
            Metadata = U64(s, FieldLocations.Metadata), MetadataLen = U64(s, FieldLocations.MetadataLen),
        };
    }

    /// <summary>Writes the structure. In the 2016 layout the 4.14 members must be zero.</summary>
    public void Write(Span<byte> d, SysctlLayout layout)
    {
        if (layout == SysctlLayout.Seed2016)
        {
            if (NameTotalSize != 0 || MetadataTotalSize != 0 || Metadata != 0 || MetadataLen != 0)
                throw new ArgumentException("the 2016 list structure has no metadata or total-size members", nameof(layout));
            U32(d, FieldLocations2016.Version, Version); U32(d, FieldLocations2016.Idx, Idx); U32(d, FieldLocations2016.Nr, Nr); U32(d, FieldLocations2016.Pad, Pad);
            U64(d, FieldLocations2016.Status, Status); U64(d, FieldLocations2016.Name, Name); U64(d, FieldLocations2016.Len, Len);
            return;
        }
        U32(d, FieldLocations.Version, Version); U32(d, FieldLocations.Idx, Idx); U32(d, FieldLocations.Nr, Nr); U32(d, FieldLocations.Pad, Pad);
        U32(d, FieldLocations.NameTotalSize, NameTotalSize); U32(d, FieldLocations.MetadataTotalSize, MetadataTotalSize);
        U64(d, FieldLocations.Status, Status); U64(d, FieldLocations.Name, Name); U64(d, FieldLocations.Len, Len);
        U64(d, FieldLocations.Metadata, Metadata); U64(d, FieldLocations.MetadataLen, MetadataLen);
    }

    private static uint U32(ReadOnlySpan<byte> s, int o) => BinaryPrimitives.ReadUInt32LittleEndian(s[o..]);

    private static ulong U64(ReadOnlySpan<byte> s, int o) => BinaryPrimitives.ReadUInt64LittleEndian(s[o..]);

    private static void U32(Span<byte> d, int o, uint v) => BinaryPrimitives.WriteUInt32LittleEndian(d[o..], v);

    private static void U64(Span<byte> d, int o, ulong v) => BinaryPrimitives.WriteUInt64LittleEndian(d[o..], v);
}
