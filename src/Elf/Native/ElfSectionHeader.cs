namespace XenLivepatch.Elf;

/// <summary>A section header (<c>Elf32_Shdr</c> / <c>Elf64_Shdr</c>), widened to 64 bits.</summary>
public readonly record struct ElfSectionHeader
{
    /// <summary>Field offsets of <c>Elf64_Shdr</c> (64 bytes).</summary>
    public static class Layout64
    {
        /// <summary><c>sh_name</c>.</summary>
        public const int Name = 0;
        /// <summary><c>sh_type</c>.</summary>
        public const int Type = 4;
        /// <summary><c>sh_flags</c>.</summary>
        public const int Flags = 8;
        /// <summary><c>sh_addr</c>.</summary>
        public const int Addr = 16;
        /// <summary><c>sh_offset</c>.</summary>
        public const int Offset = 24;
        /// <summary><c>sh_size</c>.</summary>
        public const int Size = 32;
        /// <summary><c>sh_link</c>.</summary>
        public const int Link = 40;
        /// <summary><c>sh_info</c>.</summary>
        public const int Info = 44;
        /// <summary><c>sh_addralign</c>.</summary>
        public const int AddrAlign = 48;
        /// <summary><c>sh_entsize</c>.</summary>
        public const int EntSize = 56;
        /// <summary><c>sizeof(Elf64_Shdr)</c>.</summary>
        public const int EntrySize = 64;
    }

    /// <summary>Field offsets of <c>Elf32_Shdr</c> (40 bytes).</summary>
    public static class Layout32
    {
        /// <summary><c>sh_name</c>.</summary>
        public const int Name = 0;
        /// <summary><c>sh_type</c>.</summary>
        public const int Type = 4;
        /// <summary><c>sh_flags</c>.</summary>
        public const int Flags = 8;
        /// <summary><c>sh_addr</c>.</summary>
        public const int Addr = 12;
        /// <summary><c>sh_offset</c>.</summary>
        public const int Offset = 16;
        /// <summary><c>sh_size</c>.</summary>
        public const int Size = 20;
        /// <summary><c>sh_link</c>.</summary>
        public const int Link = 24;
        /// <summary><c>sh_info</c>.</summary>
        public const int Info = 28;
        /// <summary><c>sh_addralign</c>.</summary>
        public const int AddrAlign = 32;
        /// <summary><c>sh_entsize</c>.</summary>
        public const int EntSize = 36;
        /// <summary><c>sizeof(Elf32_Shdr)</c>.</summary>
        public const int EntrySize = 40;
    }

    /// <summary>Size of one header for a class: 40 or 64.</summary>
    public static int SizeOf(ElfClass elfClass) => elfClass == ElfClass.Elf64 ? Layout64.EntrySize : Layout32.EntrySize;

    /// <summary><c>sh_name</c>: offset of the name in the section name string table.</summary>
    public uint NameOffset { get; init; }
    /// <summary><c>sh_type</c>.</summary>
    public ElfSectionType Type { get; init; }
    /// <summary><c>sh_flags</c>.</summary>
    public ElfSectionFlags Flags { get; init; }
    /// <summary><c>sh_addr</c>.</summary>
    public ulong Address { get; init; }
    /// <summary><c>sh_offset</c>.</summary>
    public ulong Offset { get; init; }
    /// <summary><c>sh_size</c>.</summary>
    public ulong Size { get; init; }
    /// <summary><c>sh_link</c>.</summary>
    public uint Link { get; init; }
    /// <summary><c>sh_info</c>.</summary>
    public uint Info { get; init; }
    /// <summary><c>sh_addralign</c>.</summary>
    public ulong AddressAlign { get; init; }
    /// <summary><c>sh_entsize</c>.</summary>
    public ulong EntrySize { get; init; }

    /// <summary>True when the section occupies bytes in the file (every type but SHT_NOBITS and SHT_NULL).</summary>
    public bool HasFileData => Type is not (ElfSectionType.NoBits or ElfSectionType.Null);

    /// <summary>Reads one header from the start of <paramref name="s"/>, which must hold <see cref="SizeOf"/> bytes.</summary>
    public static ElfSectionHeader Read(ReadOnlySpan<byte> s, ElfLayout l)
    {
        if (l.Is64)
        {
            return new ElfSectionHeader
            {
                NameOffset = l.U32(s, Layout64.Name),
                Type = (ElfSectionType)l.U32(s, Layout64.Type),
                Flags = (ElfSectionFlags)l.U64(s, Layout64.Flags),
                Address = l.U64(s, Layout64.Addr),
                Offset = l.U64(s, Layout64.Offset),
                Size = l.U64(s, Layout64.Size),
                Link = l.U32(s, Layout64.Link),
                Info = l.U32(s, Layout64.Info),
                AddressAlign = l.U64(s, Layout64.AddrAlign),
                EntrySize = l.U64(s, Layout64.EntSize),
            };
        }
        return new ElfSectionHeader
        {
            NameOffset = l.U32(s, Layout32.Name),
            Type = (ElfSectionType)l.U32(s, Layout32.Type),
            Flags = (ElfSectionFlags)l.U32(s, Layout32.Flags),
            Address = l.U32(s, Layout32.Addr),
            Offset = l.U32(s, Layout32.Offset),
            Size = l.U32(s, Layout32.Size),
            Link = l.U32(s, Layout32.Link),
            Info = l.U32(s, Layout32.Info),
            AddressAlign = l.U32(s, Layout32.AddrAlign),
            EntrySize = l.U32(s, Layout32.EntSize),
        };
    }

    /// <summary>Writes this header at the start of <paramref name="d"/>.</summary>
    public void Write(Span<byte> d, ElfLayout l)
    {
        if (l.Is64)
        {
            l.W32(d, Layout64.Name, NameOffset);
            l.W32(d, Layout64.Type, (uint)Type);
            l.W64(d, Layout64.Flags, (ulong)Flags);
            l.W64(d, Layout64.Addr, Address);
            l.W64(d, Layout64.Offset, Offset);
            l.W64(d, Layout64.Size, Size);
            l.W32(d, Layout64.Link, Link);
            l.W32(d, Layout64.Info, Info);
            l.W64(d, Layout64.AddrAlign, AddressAlign);
            l.W64(d, Layout64.EntSize, EntrySize);
            return;
        }
        l.W32(d, Layout32.Name, NameOffset);
        l.W32(d, Layout32.Type, (uint)Type);
        l.WWord(d, Layout32.Flags, (ulong)Flags);
        l.WWord(d, Layout32.Addr, Address);
        l.WWord(d, Layout32.Offset, Offset);
        l.WWord(d, Layout32.Size, Size);
        l.W32(d, Layout32.Link, Link);
        l.W32(d, Layout32.Info, Info);
        l.WWord(d, Layout32.AddrAlign, AddressAlign);
        l.WWord(d, Layout32.EntSize, EntrySize);
    }
}
