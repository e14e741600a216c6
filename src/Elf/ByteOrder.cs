using System.Buffers.Binary;

namespace XenLivepatch.Elf;

/// <summary>Reads and writes the fields of one ELF file: its byte order and its class decide every access.</summary>
public readonly struct ElfLayout : IEquatable<ElfLayout>
{
    /// <summary>Creates the layout of a file of this class and encoding.</summary>
    public ElfLayout(ElfClass elfClass, ElfEncoding encoding)
    {
        if (elfClass is not (ElfClass.Elf32 or ElfClass.Elf64))
            throw new ArgumentOutOfRangeException(nameof(elfClass), elfClass, "class must be Elf32 or Elf64");
        if (encoding is not (ElfEncoding.LittleEndian or ElfEncoding.BigEndian))
            throw new ArgumentOutOfRangeException(nameof(encoding), encoding, "encoding must be LittleEndian or BigEndian");
        Class = elfClass;
        Encoding = encoding;
    }

    /// <summary>ELF32 or ELF64.</summary>
    public ElfClass Class { get; }

    /// <summary>Little or big endian.</summary>
    public ElfEncoding Encoding { get; }

    /// <summary>True for ELF64.</summary>
    public bool Is64 => Class == ElfClass.Elf64;

    /// <summary>True for little-endian files.</summary>
    public bool IsLittleEndian => Encoding == ElfEncoding.LittleEndian;

    /// <summary>Size of an address or offset field: 4 or 8.</summary>
    public int WordSize => Is64 ? 8 : 4;

    /// <summary>Reads a 16-bit field.</summary>
    public ushort U16(ReadOnlySpan<byte> s, int offset) =>
        IsLittleEndian ? BinaryPrimitives.ReadUInt16LittleEndian(s[offset..]) : BinaryPrimitives.ReadUInt16BigEndian(s[offset..]);

    /// <summary>Reads a 32-bit field.</summary>
    public uint U32(ReadOnlySpan<byte> s, int offset) =>
        IsLittleEndian ? BinaryPrimitives.ReadUInt32LittleEndian(s[offset..]) : BinaryPrimitives.ReadUInt32BigEndian(s[offset..]);

    /// <summary>Reads a 64-bit field.</summary>
    public ulong U64(ReadOnlySpan<byte> s, int offset) =>
        IsLittleEndian ? BinaryPrimitives.ReadUInt64LittleEndian(s[offset..]) : BinaryPrimitives.ReadUInt64BigEndian(s[offset..]);

    /// <summary>Reads an address-sized field (4 bytes in ELF32, 8 in ELF64), zero-extended.</summary>
    public ulong Word(ReadOnlySpan<byte> s, int offset) => Is64 ? U64(s, offset) : U32(s, offset);

    /// <summary>Reads a signed address-sized field (an addend), sign-extended.</summary>
    public long SWord(ReadOnlySpan<byte> s, int offset) => Is64 ? (long)U64(s, offset) : (int)U32(s, offset);

    /// <summary>Writes a 16-bit field.</summary>
    public void W16(Span<byte> s, int offset, ushort value)
    {
        if (IsLittleEndian) BinaryPrimitives.WriteUInt16LittleEndian(s[offset..], value);
        else BinaryPrimitives.WriteUInt16BigEndian(s[offset..], value);
    }

    /// <summary>Writes a 32-bit field.</summary>
    public void W32(Span<byte> s, int offset, uint value)
    {
        if (IsLittleEndian) BinaryPrimitives.WriteUInt32LittleEndian(s[offset..], value);
        else BinaryPrimitives.WriteUInt32BigEndian(s[offset..], value);
    }

    /// <summary>Writes a 64-bit field.</summary>
    public void W64(Span<byte> s, int offset, ulong value)
    {
        if (IsLittleEndian) BinaryPrimitives.WriteUInt64LittleEndian(s[offset..], value);
        else BinaryPrimitives.WriteUInt64BigEndian(s[offset..], value);
    }

    /// <summary>Writes an address-sized field; in ELF32 the value must fit in 32 bits.</summary>
    public void WWord(Span<byte> s, int offset, ulong value)
    {
        if (Is64)
        {
            W64(s, offset, value);
            return;
        }
        if (value > uint.MaxValue)
            throw new ArgumentOutOfRangeException(nameof(value), value, "value does not fit in an ELF32 field");
        W32(s, offset, (uint)value);
    }

    /// <summary>Writes a signed address-sized field; in ELF32 the value must fit in 32 bits.</summary>
    public void WSWord(Span<byte> s, int offset, long value)
    {
        if (Is64)
        {
            W64(s, offset, (ulong)value);
            return;
        }
        if (value is < int.MinValue or > int.MaxValue)
            throw new ArgumentOutOfRangeException(nameof(value), value, "addend does not fit in an ELF32 field");
        W32(s, offset, (uint)(int)value);
    }

    /// <inheritdoc/>
    public bool Equals(ElfLayout other) => Class == other.Class && Encoding == other.Encoding;

    /// <inheritdoc/>
    public override bool Equals(object? obj) => obj is ElfLayout other && Equals(other);

    /// <inheritdoc/>
    public override int GetHashCode() => HashCode.Combine(Class, Encoding);

    /// <summary>Equality.</summary>
    public static bool operator ==(ElfLayout left, ElfLayout right) => left.Equals(right);

    /// <summary>Inequality.</summary>
    public static bool operator !=(ElfLayout left, ElfLayout right) => !left.Equals(right);

    /// <inheritdoc/>
    public override string ToString() => $"{(Is64 ? "ELF64" : "ELF32")} {(IsLittleEndian ? "LE" : "BE")}";
}
