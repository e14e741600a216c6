using System.Buffers.Binary;

namespace XenLivepatch.Abi;

/// <summary><c>struct xen_livepatch_name</c> (16 bytes): a guest handle to the name and its size, NUL included.</summary>
public readonly record struct XenLivepatchName(ulong Name, ushort Size, ushort Pad0 = 0, ushort Pad1 = 0, ushort Pad2 = 0)
{
    /// <summary><c>sizeof(struct xen_livepatch_name)</c>.</summary>
    public const int SizeOf = 16;

    /// <summary>Member offsets.</summary>
    public static class FieldLocations
    {
        /// <summary><c>XEN_GUEST_HANDLE_64(char) name</c>.</summary>
        public const int Name = 0;
        /// <summary><c>uint16_t size</c>.</summary>
        public const int Size = 8;
        /// <summary><c>uint16_t pad[3]</c>.</summary>
        public const int Pad = 10;
    }

    /// <summary>The members, for layout checks.</summary>
    public static IReadOnlyList<AbiField> Fields { get; } =
        [new("name", FieldLocations.Name, 8), new("size", FieldLocations.Size, 2), new("pad", FieldLocations.Pad, 6)];

    /// <summary>True when every <c>pad</c> word is zero (Xen's get_name rejects anything else).</summary>
    public bool PadIsZero => Pad0 == 0 && Pad1 == 0 && Pad2 == 0;

    /// <summary>Reads the structure.</summary>
    public static XenLivepatchName Read(ReadOnlySpan<byte> s) => new(
        BinaryPrimitives.ReadUInt64LittleEndian(s[FieldLocations.Name..]),
        BinaryPrimitives.ReadUInt16LittleEndian(s[FieldLocations.Size..]),
        BinaryPrimitives.ReadUInt16LittleEndian(s[FieldLocations.Pad..]),
        BinaryPrimitives.ReadUInt16LittleEndian(s[(FieldLocations.Pad + 2)..]),
        BinaryPrimitives.ReadUInt16LittleEndian(s[(FieldLocations.Pad + 4)..]));

    /// <summary>Writes the structure.</summary>
    public void Write(Span<byte> d)
    {
        BinaryPrimitives.WriteUInt64LittleEndian(d[FieldLocations.Name..], Name);
        BinaryPrimitives.WriteUInt16LittleEndian(d[FieldLocations.Size..], Size);
        BinaryPrimitives.WriteUInt16LittleEndian(d[FieldLocations.Pad..], Pad0);
        BinaryPrimitives.WriteUInt16LittleEndian(d[(FieldLocations.Pad + 2)..], Pad1);
        BinaryPrimitives.WriteUInt16LittleEndian(d[(FieldLocations.Pad + 4)..], Pad2);
    }
}

/// <summary><c>struct xen_livepatch_status</c> (8 bytes).</summary>
public readonly record struct XenLivepatchStatus(uint State, int Rc)
{
    /// <summary><c>sizeof(struct xen_livepatch_status)</c>.</summary>
    public const int SizeOf = 8;

    /// <summary>Member offsets.</summary>
    public static class FieldLocations
    {
        /// <summary><c>uint32_t state</c> (LIVEPATCH_STATE_*).</summary>
        public const int State = 0;
        /// <summary><c>int32_t rc</c>: 0, or -XEN_Exx (-XEN_EAGAIN while an action runs).</summary>
        public const int Rc = 4;
    }

    /// <summary>The members, for layout checks.</summary>
    public static IReadOnlyList<AbiField> Fields { get; } = [new("state", FieldLocations.State, 4), new("rc", FieldLocations.Rc, 4)];

    /// <summary>Reads the structure.</summary>
    public static XenLivepatchStatus Read(ReadOnlySpan<byte> s) =>
        new(BinaryPrimitives.ReadUInt32LittleEndian(s[FieldLocations.State..]), BinaryPrimitives.ReadInt32LittleEndian(s[FieldLocations.Rc..]));

    /// <summary>Writes the structure.</summary>
    public void Write(Span<byte> d)
    {
        BinaryPrimitives.WriteUInt32LittleEndian(d[FieldLocations.State..], State);
        BinaryPrimitives.WriteInt32LittleEndian(d[FieldLocations.Rc..], Rc);
    }
}
