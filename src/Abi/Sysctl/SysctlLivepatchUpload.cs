using System.Buffers.Binary;

namespace XenLivepatch.Abi;

/// <summary><c>struct xen_sysctl_livepatch_upload</c> (32 bytes, both layouts).</summary>
public readonly record struct SysctlLivepatchUpload(XenLivepatchName Name, ulong Size, ulong Payload)
{
    /// <summary><c>sizeof</c>.</summary>
    public const int SizeOf = 32;

    /// <summary>Member offsets.</summary>
    public static class FieldLocations
    {
        /// <summary><c>xen_livepatch_name_t name</c>.</summary>
        public const int Name = 0;
        /// <summary><c>uint64_t size</c>: the ELF file's size.</summary>
        public const int Size = 16;
        /// <summary><c>XEN_GUEST_HANDLE_64(uint8) payload</c>.</summary>
        public const int Payload = 24;
    }

    /// <summary>The members, for layout checks.</summary>
    public static IReadOnlyList<AbiField> Fields { get; } =
        [.. XenLivepatchName.Fields.Select(f => f.Within("name", FieldLocations.Name)), new("size", FieldLocations.Size, 8), new("payload", FieldLocations.Payload, 8)];

    /// <summary>Reads the structure.</summary>
    public static SysctlLivepatchUpload Read(ReadOnlySpan<byte> s) => new(
        XenLivepatchName.Read(s[FieldLocations.Name..]),
        BinaryPrimitives.ReadUInt64LittleEndian(s[FieldLocations.Size..]),
        BinaryPrimitives.ReadUInt64LittleEndian(s[FieldLocations.Payload..]));

    /// <summary>Writes the structure.</summary>
    public void Write(Span<byte> d)
    {
        Name.Write(d[FieldLocations.Name..]);
        BinaryPrimitives.WriteUInt64LittleEndian(d[FieldLocations.Size..], Size);
        BinaryPrimitives.WriteUInt64LittleEndian(d[FieldLocations.Payload..], Payload);
    }
}

/// <summary><c>struct xen_sysctl_livepatch_get</c> (24 bytes, both layouts).</summary>
public readonly record struct SysctlLivepatchGet(XenLivepatchName Name, XenLivepatchStatus Status)
{
    /// <summary><c>sizeof</c>.</summary>
    public const int SizeOf = 24;

    /// <summary>Member offsets.</summary>
    public static class FieldLocations
    {
        /// <summary><c>xen_livepatch_name_t name</c>.</summary>
        public const int Name = 0;
        /// <summary><c>xen_livepatch_status_t status</c> (OUT).</summary>
        public const int Status = 16;
    }

    /// <summary>The members, for layout checks.</summary>
    public static IReadOnlyList<AbiField> Fields { get; } =
        [.. XenLivepatchName.Fields.Select(f => f.Within("name", FieldLocations.Name)), .. XenLivepatchStatus.Fields.Select(f => f.Within("status", FieldLocations.Status))];

    /// <summary>Reads the structure.</summary>
    public static SysctlLivepatchGet Read(ReadOnlySpan<byte> s) =>
        new(XenLivepatchName.Read(s[FieldLocations.Name..]), XenLivepatchStatus.Read(s[FieldLocations.Status..]));

    /// <summary>Writes the structure.</summary>
    public void Write(Span<byte> d)
    {
        Name.Write(d[FieldLocations.Name..]);
        Status.Write(d[FieldLocations.Status..]);
    }
}
