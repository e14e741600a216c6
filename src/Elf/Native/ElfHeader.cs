using System.Diagnostics.CodeAnalysis;

namespace XenLivepatch.Elf;

/// <summary>
/// The ELF header (<c>Elf32_Ehdr</c> / <c>Elf64_Ehdr</c>), field for field, widened to 64 bits. Reading it
/// checks only what is needed to know how to read the rest (magic, class, encoding, length); every other
/// field is reported as found, so that a consumer such as the livepatch loader can apply its own checks in
/// its own order.
/// </summary>
public readonly record struct ElfHeader
{
    /// <summary>Field offsets of <c>Elf64_Ehdr</c> (64 bytes).</summary>
    public static class Layout64
    {
        /// <summary><c>e_type</c>.</summary>
        public const int Type = 16;
        /// <summary><c>e_machine</c>.</summary>
        public const int Machine = 18;
        /// <summary><c>e_version</c>.</summary>
        public const int Version = 20;
        /// <summary><c>e_entry</c>.</summary>
        public const int Entry = 24;
        /// <summary><c>e_phoff</c>.</summary>
        public const int PhOff = 32;
        /// <summary><c>e_shoff</c>.</summary>
        public const int ShOff = 40;
        /// <summary><c>e_flags</c>.</summary>
        public const int Flags = 48;
        /// <summary><c>e_ehsize</c>.</summary>
        public const int EhSize = 52;
        /// <summary><c>e_phentsize</c>.</summary>
        public const int PhEntSize = 54;
        /// <summary><c>e_phnum</c>.</summary>
        public const int PhNum = 56;
        /// <summary><c>e_shentsize</c>.</summary>
        public const int ShEntSize = 58;
        /// <summary><c>e_shnum</c>.</summary>
        public const int ShNum = 60;
        /// <summary><c>e_shstrndx</c>.</summary>
        public const int ShStrNdx = 62;
        /// <summary><c>sizeof(Elf64_Ehdr)</c>.</summary>
        public const int Size = 64;
    }

    /// <summary>Field offsets of <c>Elf32_Ehdr</c> (52 bytes).</summary>
    public static class Layout32
    {
        /// <summary><c>e_type</c>.</summary>
        public const int Type = 16;
        /// <summary><c>e_machine</c>.</summary>
        public const int Machine = 18;
        /// <summary><c>e_version</c>.</summary>
        public const int Version = 20;
        /// <summary><c>e_entry</c>.</summary>
        public const int Entry = 24;
        /// <summary><c>e_phoff</c>.</summary>
        public const int PhOff = 28;
        /// <summary><c>e_shoff</c>.</summary>
        public const int ShOff = 32;
        /// <summary><c>e_flags</c>.</summary>
        public const int Flags = 36;
        /// <summary><c>e_ehsize</c>.</summary>
        public const int EhSize = 40;
        /// <summary><c>e_phentsize</c>.</summary>
        public const int PhEntSize = 42;
        /// <summary><c>e_phnum</c>.</summary>
        public const int PhNum = 44;
        /// <summary><c>e_shentsize</c>.</summary>
        public const int ShEntSize = 46;
        /// <summary><c>e_shnum</c>.</summary>
        public const int ShNum = 48;
        /// <summary><c>e_shstrndx</c>.</summary>
        public const int ShStrNdx = 50;
        /// <summary><c>sizeof(Elf32_Ehdr)</c>.</summary>
        public const int Size = 52;
    }

    /// <summary>Size of the header for a class: 52 or 64.</summary>
    public static int SizeOf(ElfClass elfClass) => elfClass == ElfClass.Elf64 ? Layout64.Size : Layout32.Size;

    /// <summary>ELF32 or ELF64 (<c>EI_CLASS</c>).</summary>
    public ElfClass Class { get; init; }
    /// <summary>Byte order (<c>EI_DATA</c>).</summary>
    public ElfEncoding Encoding { get; init; }
    /// <summary><c>EI_VERSION</c>.</summary>
    public byte IdentVersion { get; init; }
    /// <summary><c>EI_OSABI</c>.</summary>
    public ElfOsAbi OsAbi { get; init; }
    /// <summary><c>EI_ABIVERSION</c>.</summary>
    public byte AbiVersion { get; init; }
    /// <summary><c>e_type</c>.</summary>
    public ElfType Type { get; init; }
    /// <summary><c>e_machine</c>.</summary>
    public ElfMachine Machine { get; init; }
    /// <summary><c>e_version</c>.</summary>
    public uint Version { get; init; }
    /// <summary><c>e_entry</c>.</summary>
    public ulong Entry { get; init; }
    /// <summary><c>e_phoff</c>.</summary>
    public ulong ProgramHeaderOffset { get; init; }
    /// <summary><c>e_shoff</c>.</summary>
    public ulong SectionHeaderOffset { get; init; }
    /// <summary><c>e_flags</c>.</summary>
    public uint Flags { get; init; }
    /// <summary><c>e_ehsize</c>.</summary>
    public ushort HeaderSize { get; init; }
    /// <summary><c>e_phentsize</c>.</summary>
    public ushort ProgramHeaderEntrySize { get; init; }
    /// <summary><c>e_phnum</c>.</summary>
    public ushort ProgramHeaderCount { get; init; }
    /// <summary><c>e_shentsize</c>.</summary>
    public ushort SectionHeaderEntrySize { get; init; }
    /// <summary><c>e_shnum</c> (0 when the count is held in section 0's <c>sh_size</c>).</summary>
    public ushort SectionHeaderCount { get; init; }
    /// <summary><c>e_shstrndx</c> (<c>SHN_XINDEX</c> when the index is held in section 0's <c>sh_link</c>).</summary>
    public ushort SectionNameTableIndex { get; init; }

    /// <summary>The layout (class and byte order) that every other structure of the file uses.</summary>
    public ElfLayout Layout => new(Class, Encoding);

    /// <summary>
    /// Reads the header. Fails only when the bytes cannot be an ELF header at all: too short for the
    /// identification or for the header of the announced class, wrong magic, unknown class or encoding.
    /// </summary>
    public static bool TryRead(ReadOnlySpan<byte> data, out ElfHeader header, [NotNullWhen(false)] out ElfError? error)
    {
        header = default;
        if (data.Length < ElfIdent.Size)
        {
            error = new ElfError(ElfErrorCode.Truncated, $"file is {data.Length} bytes, shorter than the {ElfIdent.Size}-byte identification") { Offset = 0 };
            return false;
        }
        if (!data[..4].SequenceEqual(ElfIdent.Magic))
        {
            error = new ElfError(ElfErrorCode.BadMagic, $"bad magic {Convert.ToHexString(data[..4])}, expected 7F454C46") { Offset = 0 };
            return false;
        }
        var cls = (ElfClass)data[ElfIdent.ClassIndex];
        if (cls is not (ElfClass.Elf32 or ElfClass.Elf64))
        {
            error = new ElfError(ElfErrorCode.BadClass, $"unknown class {(byte)cls} in EI_CLASS") { Offset = ElfIdent.ClassIndex };
            return false;
        }
        var enc = (ElfEncoding)data[ElfIdent.DataIndex];
        if (enc is not (ElfEncoding.LittleEndian or ElfEncoding.BigEndian))
        {
            error = new ElfError(ElfErrorCode.BadEncoding, $"unknown data encoding {(byte)enc} in EI_DATA") { Offset = ElfIdent.DataIndex };
            return false;
        }
        int size = SizeOf(cls);
        if (data.Length < size)
        {
            error = new ElfError(ElfErrorCode.Truncated, $"file is {data.Length} bytes, shorter than the {size}-byte ELF header") { Offset = 0 };
            return false;
        }
        var l = new ElfLayout(cls, enc);
        bool is64 = l.Is64;
        header = new ElfHeader
        {
            Class = cls,
            Encoding = enc,
            IdentVersion = data[ElfIdent.VersionIndex],
            OsAbi = (ElfOsAbi)data[ElfIdent.OsAbiIndex],
            AbiVersion = data[ElfIdent.AbiVersionIndex],
            Type = (ElfType)l.U16(data, Layout64.Type),
            Machine = (ElfMachine)l.U16(data, Layout64.Machine),
            Version = l.U32(data, Layout64.Version),
            Entry = l.Word(data, Layout64.Entry),
            ProgramHeaderOffset = l.Word(data, is64 ? Layout64.PhOff : Layout32.PhOff),
            SectionHeaderOffset = l.Word(data, is64 ? Layout64.ShOff : Layout32.ShOff),
            Flags = l.U32(data, is64 ? Layout64.Flags : Layout32.Flags),
            HeaderSize = l.U16(data, is64 ? Layout64.EhSize : Layout32.EhSize),
            ProgramHeaderEntrySize = l.U16(data, is64 ? Layout64.PhEntSize : Layout32.PhEntSize),
            ProgramHeaderCount = l.U16(data, is64 ? Layout64.PhNum : Layout32.PhNum),
            SectionHeaderEntrySize = l.U16(data, is64 ? Layout64.ShEntSize : Layout32.ShEntSize),
            SectionHeaderCount = l.U16(data, is64 ? Layout64.ShNum : Layout32.ShNum),
            SectionNameTableIndex = l.U16(data, is64 ? Layout64.ShStrNdx : Layout32.ShStrNdx),
        };
        error = null;
        return true;
    }

    /// <summary>Writes the header (identification included) into the first 52 or 64 bytes of <paramref name="dest"/>.</summary>
    public void Write(Span<byte> dest)
    {
        var l = Layout;
        bool is64 = l.Is64;
        dest[..SizeOf(Class)].Clear();
        ElfIdent.Magic.CopyTo(dest);
        dest[ElfIdent.ClassIndex] = (byte)Class;
        dest[ElfIdent.DataIndex] = (byte)Encoding;
        dest[ElfIdent.VersionIndex] = IdentVersion;
        dest[ElfIdent.OsAbiIndex] = (byte)OsAbi;
        dest[ElfIdent.AbiVersionIndex] = AbiVersion;
        l.W16(dest, Layout64.Type, (ushort)Type);
        l.W16(dest, Layout64.Machine, (ushort)Machine);
        l.W32(dest, Layout64.Version, Version);
        l.WWord(dest, Layout64.Entry, Entry);
        l.WWord(dest, is64 ? Layout64.PhOff : Layout32.PhOff, ProgramHeaderOffset);
        l.WWord(dest, is64 ? Layout64.ShOff : Layout32.ShOff, SectionHeaderOffset);
        l.W32(dest, is64 ? Layout64.Flags : Layout32.Flags, Flags);
        l.W16(dest, is64 ? Layout64.EhSize : Layout32.EhSize, HeaderSize);
        l.W16(dest, is64 ? Layout64.PhEntSize : Layout32.PhEntSize, ProgramHeaderEntrySize);
        l.W16(dest, is64 ? Layout64.PhNum : Layout32.PhNum, ProgramHeaderCount);
        l.W16(dest, is64 ? Layout64.ShEntSize : Layout32.ShEntSize, SectionHeaderEntrySize);
        l.W16(dest, is64 ? Layout64.ShNum : Layout32.ShNum, SectionHeaderCount);
        l.W16(dest, is64 ? Layout64.ShStrNdx : Layout32.ShStrNdx, SectionNameTableIndex);
    }
}
