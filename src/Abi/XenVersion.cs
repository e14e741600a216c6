using System.Buffers.Binary;

namespace XenLivepatch.Abi;

/// <summary>
/// The <c>xen_version</c> hypercall (xen/include/public/version.h): <c>HYPERVISOR_xen_version(cmd, arg)</c>.
/// Only the sub-op a live patching tool needs is named here: <c>XENVER_build_id</c>, the running hypervisor's
/// GNU build-id, which every payload's <c>.livepatch.xen_depends</c> must equal.
/// </summary>
public static class XenVersion
{
    /// <summary><c>__HYPERVISOR_xen_version</c> (xen/include/public/xen.h).</summary>
    public const uint Hypercall = 17;

    /// <summary><c>XENVER_build_id</c>: <c>arg</c> is a <c>xen_build_id_t</c>; a null <c>arg</c> asks for the size.</summary>
    public const int BuildId = 10;

    /// <summary>
    /// The largest build-id buffer a caller needs: a GNU build-id is a SHA-1 (20 bytes) or at most a SHA-512
    /// (64 bytes); Xen keeps the note's descriptor whatever its length, so leave generous room.
    /// </summary>
    public const int MaxBuildId = 256;
}

/// <summary>
/// <c>struct xen_build_id { uint32_t len; unsigned char buf[]; }</c>: <c>len</c> is IN (the room in
/// <c>buf</c>), <c>buf</c> OUT. Xen answers the number of bytes written, -EINVAL for <c>len</c> 0, -ENOBUFS
/// when the build-id is longer than <c>len</c>, -ENODATA when it has none, -EPERM to a caller XSM denies.
/// </summary>
public static class XenBuildId
{
    /// <summary>Member offsets.</summary>
    public static class FieldLocations
    {
        /// <summary><c>uint32_t len</c>.</summary>
        public const int Len = 0;
        /// <summary><c>unsigned char buf[]</c>.</summary>
        public const int Buf = 4;
    }

    /// <summary>The fixed part's size (<c>offsetof(xen_build_id_t, buf)</c>).</summary>
    public const int HeaderSize = 4;

    /// <summary>The members, for layout checks (the flexible array is not measured).</summary>
    public static IReadOnlyList<AbiField> Fields { get; } = [new("len", FieldLocations.Len, 4)];

    /// <summary>A <c>xen_build_id_t</c> with room for <paramref name="room"/> bytes of build-id.</summary>
    public static byte[] Request(int room)
    {
        var b = new byte[HeaderSize + room];
        BinaryPrimitives.WriteUInt32LittleEndian(b, (uint)room);
        return b;
    }

    /// <summary>Reads <c>len</c>.</summary>
    public static uint ReadLen(ReadOnlySpan<byte> s) => BinaryPrimitives.ReadUInt32LittleEndian(s[FieldLocations.Len..]);
}
