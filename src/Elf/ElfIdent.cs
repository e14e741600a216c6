namespace XenLivepatch.Elf;

/// <summary>File class (<c>EI_CLASS</c>): the width of addresses and offsets.</summary>
public enum ElfClass : byte
{
    /// <summary><c>ELFCLASSNONE</c>: invalid.</summary>
    None = 0,
    /// <summary><c>ELFCLASS32</c>: 32-bit objects.</summary>
    Elf32 = 1,
    /// <summary><c>ELFCLASS64</c>: 64-bit objects.</summary>
    Elf64 = 2,
}

/// <summary>Data encoding (<c>EI_DATA</c>): the byte order of every multi-byte field.</summary>
public enum ElfEncoding : byte
{
    /// <summary><c>ELFDATANONE</c>: invalid.</summary>
    None = 0,
    /// <summary><c>ELFDATA2LSB</c>: two's complement, little endian.</summary>
    LittleEndian = 1,
    /// <summary><c>ELFDATA2MSB</c>: two's complement, big endian.</summary>
    BigEndian = 2,
}

/// <summary>Offsets and values of the identification bytes at the start of every ELF file.</summary>
public static class ElfIdent
{
    /// <summary>Size of <c>e_ident</c>.</summary>
    public const int Size = 16;
    /// <summary>Index of <c>EI_CLASS</c>.</summary>
    public const int ClassIndex = 4;
    /// <summary>Index of <c>EI_DATA</c>.</summary>
    public const int DataIndex = 5;
    /// <summary>Index of <c>EI_VERSION</c>.</summary>
    public const int VersionIndex = 6;
    /// <summary>Index of <c>EI_OSABI</c>.</summary>
    public const int OsAbiIndex = 7;
    /// <summary>Index of <c>EI_ABIVERSION</c>.</summary>
    public const int AbiVersionIndex = 8;
    /// <summary><c>EV_CURRENT</c>, the only defined version.</summary>
    public const byte CurrentVersion = 1;

    /// <summary><c>\x7fELF</c>.</summary>
    public static ReadOnlySpan<byte> Magic => [0x7f, (byte)'E', (byte)'L', (byte)'F'];
}
