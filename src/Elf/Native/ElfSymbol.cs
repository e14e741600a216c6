namespace XenLivepatch.Elf;

/// <summary>A symbol table entry (<c>Elf32_Sym</c> / <c>Elf64_Sym</c>), widened to 64 bits.</summary>
public readonly record struct ElfSymbol
{
    /// <summary>Field offsets of <c>Elf64_Sym</c> (24 bytes).</summary>
    public static class Layout64
    {
        /// <summary><c>st_name</c>.</summary>
        public const int Name = 0;
        /// <summary><c>st_info</c>.</summary>
        public const int Info = 4;
        /// <summary><c>st_other</c>.</summary>
        public const int Other = 5;
        /// <summary><c>st_shndx</c>.</summary>
        public const int Shndx = 6;
        /// <summary><c>st_value</c>.</summary>
        public const int Value = 8;
        /// <summary><c>st_size</c>.</summary>
        public const int Size = 16;
        /// <summary><c>sizeof(Elf64_Sym)</c>.</summary>
        public const int EntrySize = 24;
    }

    /// <summary>Field offsets of <c>Elf32_Sym</c> (16 bytes).</summary>
    public static class Layout32
    {
        /// <summary><c>st_name</c>.</summary>
        public const int Name = 0;
        /// <summary><c>st_value</c>.</summary>
        public const int Value = 4;
        /// <summary><c>st_size</c>.</summary>
        public const int Size = 8;
        /// <summary><c>st_info</c>.</summary>
        public const int Info = 12;
        /// <summary><c>st_other</c>.</summary>
        public const int Other = 13;
        /// <summary><c>st_shndx</c>.</summary>
        public const int Shndx = 14;
        /// <summary><c>sizeof(Elf32_Sym)</c>.</summary>
        public const int EntrySize = 16;
    }

    /// <summary>Size of one entry for a class: 16 or 24.</summary>
    public static int SizeOf(ElfClass elfClass) => elfClass == ElfClass.Elf64 ? Layout64.EntrySize : Layout32.EntrySize;

    /// <summary><c>st_name</c>: offset of the name in the linked string table.</summary>
    public uint NameOffset { get; init; }
    /// <summary><c>st_value</c>.</summary>
    public ulong Value { get; init; }
    /// <summary><c>st_size</c>.</summary>
    public ulong Size { get; init; }
    /// <summary><c>st_info</c>: binding (high nibble) and type (low nibble).</summary>
    public byte Info { get; init; }
    /// <summary><c>st_other</c>: visibility in the low 2 bits.</summary>
    public byte Other { get; init; }
    /// <summary><c>st_shndx</c> as stored (may be a reserved index such as SHN_XINDEX).</summary>
    public ushort SectionIndex { get; init; }

    /// <summary>The type (<c>ELF_ST_TYPE</c>).</summary>
    public ElfSymbolType Type => (ElfSymbolType)(Info & 0xf);
    /// <summary>The binding (<c>ELF_ST_BIND</c>).</summary>
    public ElfSymbolBinding Binding => (ElfSymbolBinding)(Info >> 4);
    /// <summary>The visibility (<c>ELF_ST_VISIBILITY</c>).</summary>
    public ElfSymbolVisibility Visibility => (ElfSymbolVisibility)(Other & 0x3);

    /// <summary>
    /// True when <c>st_shndx</c> is a reserved index (SHN_UNDEF, SHN_ABS, SHN_COMMON, …) rather than a section:
    /// every value but SHN_XINDEX from SHN_LORESERVE up, and 0. When false, the symbol's section is
    /// <c>st_shndx</c>, or the SHT_SYMTAB_SHNDX entry when <c>st_shndx</c> is SHN_XINDEX (whose value can then
    /// be any section number, 0xfff1 included).
    /// </summary>
    public bool HasReservedSectionIndex =>
        SectionIndex == 0 || (SectionIndex >= (ushort)ElfSpecialSection.LoReserve && SectionIndex != (ushort)ElfSpecialSection.XIndex);

    /// <summary>Packs a binding and a type into <c>st_info</c>.</summary>
    public static byte MakeInfo(ElfSymbolBinding binding, ElfSymbolType type) => (byte)(((byte)binding << 4) | ((byte)type & 0xf));

    /// <summary>Reads one entry from the start of <paramref name="s"/>.</summary>
    public static ElfSymbol Read(ReadOnlySpan<byte> s, ElfLayout l)
    {
        if (l.Is64)
        {
            return new ElfSymbol
            {
                NameOffset = l.U32(s, Layout64.Name),
                Info = s[Layout64.Info],
                Other = s[Layout64.Other],
                SectionIndex = l.U16(s, Layout64.Shndx),
                Value = l.U64(s, Layout64.Value),
                Size = l.U64(s, Layout64.Size),
            };
        }
        return new ElfSymbol
        {
            NameOffset = l.U32(s, Layout32.Name),
            Value = l.U32(s, Layout32.Value),
            Size = l.U32(s, Layout32.Size),
            Info = s[Layout32.Info],
            Other = s[Layout32.Other],
            SectionIndex = l.U16(s, Layout32.Shndx),
        };
    }

    /// <summary>Writes this entry at the start of <paramref name="d"/>.</summary>
    public void Write(Span<byte> d, ElfLayout l)
    {
        if (l.Is64)
        {
            l.W32(d, Layout64.Name, NameOffset);
            d[Layout64.Info] = Info;
            d[Layout64.Other] = Other;
            l.W16(d, Layout64.Shndx, SectionIndex);
            l.W64(d, Layout64.Value, Value);
            l.W64(d, Layout64.Size, Size);
            return;
        }
        l.W32(d, Layout32.Name, NameOffset);
        l.WWord(d, Layout32.Value, Value);
        l.WWord(d, Layout32.Size, Size);
        d[Layout32.Info] = Info;
        d[Layout32.Other] = Other;
        l.W16(d, Layout32.Shndx, SectionIndex);
    }
}
