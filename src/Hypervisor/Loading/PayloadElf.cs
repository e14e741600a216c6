using System.Text;
using XenLivepatch.Abi;
using XenLivepatch.Elf;

namespace XenLivepatch.Hypervisor;

/// <summary>A section as the loader sees it (Xen's <c>struct livepatch_elf_sec</c>).</summary>
internal sealed class LoaderSection
{
    public int Index { get; init; }
    public ElfSectionHeader Header { get; init; }
    public string Name { get; set; } = "";
    /// <summary>Where move_payload placed it; 0 while not placed (non-SHF_ALLOC sections never are).</summary>
    public ulong LoadAddress { get; set; }
    public bool IsAlloc => (Header.Flags & ElfSectionFlags.Alloc) != 0;
}

/// <summary>A symbol as the loader sees it (Xen's <c>struct livepatch_elf_sym</c>), with its resolved value.</summary>
internal struct LoaderSymbol
{
    public ElfSymbol Raw;
    public string Name;
    public ulong Value;
    public bool Ignored;
}

/// <summary>
/// Xen's <c>livepatch_elf_load</c> (xen/common/livepatch_elf.c): the header, section and symbol checks that
/// come before anything is allocated, each with Xen's errno, in Xen's order. The payload is read as Xen
/// reads it: an <c>Elf64_Ehdr</c> in the CPU's (little-endian) byte order, whatever its identification says.
/// </summary>
internal sealed class PayloadElf
{
    private static readonly ElfLayout s_layout = new(ElfClass.Elf64, ElfEncoding.LittleEndian);

    private PayloadElf(string name, ReadOnlyMemory<byte> data) { Name = name; Data = data; }

    public string Name { get; }
    public ReadOnlyMemory<byte> Data { get; }
    public ushort ShNum { get; private set; }
    public LoaderSection[] Sections { get; private set; } = [];
    public int SymtabIndex { get; private set; }
    public LoaderSection Strtab { get; private set; } = null!;
    public LoaderSymbol[] Symbols { get; private set; } = [];
    public ElfMachine Machine { get; private set; }

    /// <summary><c>livepatch_elf_sec_by_name</c>: the first section with that name (duplicates resolve to the first).</summary>
    public LoaderSection? SectionByName(string name)
    {
        for (int i = 1; i < Sections.Length; i++)
        {
            if (Sections[i].Name == name)
                return Sections[i];
        }
        return null;
    }

    /// <summary>The bytes of a section in the file.</summary>
    public ReadOnlySpan<byte> FileData(LoaderSection s) =>
        s.Header.Type == ElfSectionType.NoBits ? default : Data.Span.Slice((int)s.Header.Offset, (int)s.Header.Size);

    public static LivepatchError? Load(string name, ReadOnlyMemory<byte> data, LivepatchArch arch, out PayloadElf elf)
    {
        elf = new PayloadElf(name, data);
        return elf.HeaderCheck(arch) ?? elf.ResolveSections() ?? elf.ResolveSectionNames() ?? elf.GetSymbols();
    }

    // livepatch_header_check
    private LivepatchError? HeaderCheck(LivepatchArch arch)
    {
        var d = Data.Span;
        if (d.Length < ElfHeader.Layout64.Size)
            return Refuse.ElfTooShort(Name, d.Length);
        if (!d[..4].SequenceEqual(ElfIdent.Magic))
            return Refuse.ElfMagic(Name);
        var l = s_layout;
        uint version = l.U32(d, ElfHeader.Layout64.Version);
        ushort type = l.U16(d, ElfHeader.Layout64.Type);
        ushort phnum = l.U16(d, ElfHeader.Layout64.PhNum);
        byte osabi = d[ElfIdent.OsAbiIndex];
        if (version != 1 || d[ElfIdent.VersionIndex] != 1 || d[ElfIdent.AbiVersionIndex] != 0 ||
            (osabi != (byte)ElfOsAbi.SystemV && osabi != (byte)ElfOsAbi.FreeBsd) || type != (ushort)ElfType.Relocatable || phnum != 0)
        {
            return Refuse.ElfNotRelocatable(Name, type, version, osabi, phnum);
        }
        ushort machine = l.U16(d, ElfHeader.Layout64.Machine);
        if (arch.VerifyElf(Name, d[ElfIdent.ClassIndex], d[ElfIdent.DataIndex], machine) is { } e)
            return e;
        Machine = (ElfMachine)machine;
        ushort shstrndx = l.U16(d, ElfHeader.Layout64.ShStrNdx);
        ushort shnum = l.U16(d, ElfHeader.Layout64.ShNum);
        ulong shoff = l.U64(d, ElfHeader.Layout64.ShOff);
        ushort shentsize = l.U16(d, ElfHeader.Layout64.ShEntSize);
        if (shstrndx == 0)
            return Refuse.ElfNoSectionNames(Name);
        if (shnum >= Livepatch.MaxSections)
            return Refuse.ElfTooManySections(Name, shnum, Livepatch.MaxSections - 1);
        if (shstrndx >= shnum)
            return Refuse.ElfSectionNamesPastEnd(Name, shstrndx, shnum);
        if (shoff >= (ulong)d.Length)
            return Refuse.ElfSectionHeadersOffset(Name, shoff, d.Length);
        if (shentsize < ElfSectionHeader.Layout64.EntrySize)
            return Refuse.ElfSectionHeaderSize(Name, shentsize, ElfSectionHeader.Layout64.EntrySize);
        if (((ulong)d.Length - shoff) / shentsize < shnum)
            return Refuse.ElfSectionHeadersPastEnd(Name, shnum, shentsize, shoff, d.Length);
        ShNum = shnum;
        Sections = new LoaderSection[shnum];
        for (int i = 0; i < shnum; i++)
            Sections[i] = new LoaderSection { Index = i, Header = ElfSectionHeader.Read(d[(int)(shoff + (ulong)i * shentsize)..], l) };
        return null;
    }

    // elf_resolve_sections
    private LivepatchError? ResolveSections()
    {
        ulong len = (ulong)Data.Length;
        LoaderSection? symtab = null;
        for (int i = 1; i < ShNum; i++)
        {
            var h = Sections[i].Header;
            if (h.Offset < ElfHeader.Layout64.Size)
                return Refuse.SectionAtHeader(Name, i, h.Offset);
            // Xen computes sh_offset + sh_size, which can wrap; a wrapped sum is past the end too.
            if (h.Type != ElfSectionType.NoBits && (h.Offset > len || h.Size > len - h.Offset))
                return Refuse.SectionPastEnd(Name, i, h.Offset, h.Size, len);
            if (h.AddressAlign != 0 && (h.AddressAlign & (h.AddressAlign - 1)) != 0)
                return Refuse.SectionAlignment(Name, i, h.AddressAlign);
            if (h.AddressAlign != 0 && h.Address % h.AddressAlign != 0)
                return Refuse.SectionUnaligned(Name, i, h.Address, h.AddressAlign);
            if ((h.Flags & (ElfSectionFlags.Write | ElfSectionFlags.Alloc)) != 0 && h.Type == ElfSectionType.NoBits && h.Size > Livepatch.MaxPayloadSize)
                return Refuse.SectionNobitsTooLarge(Name, i, h.Size, Livepatch.MaxPayloadSize);
            if (h.Type == ElfSectionType.SymbolTable)
            {
                if (symtab != null)
                    return Refuse.SymtabMultiple(Name);
                symtab = Sections[i];
                SymtabIndex = i;
                if (h.Link >= ShNum)
                    return Refuse.SymtabLinkPastEnd(Name, h.Link, ShNum);
            }
        }
        if (symtab == null)
            return Refuse.SymtabMissing(Name);
        var sh = symtab.Header;
        if (sh.Size == 0 || sh.EntrySize < ElfSymbol.Layout64.EntrySize || sh.Size % sh.EntrySize != 0)
            return Refuse.SymtabCorrupt(Name, sh.Size, sh.EntrySize);
        // The loop above skips section 0 (as Xen's does), so its offset and size were never checked.
        if (sh.Link == 0)
            return Refuse.SymtabLinkNull(Name);
        Strtab = Sections[sh.Link];
        return VerifyStrtab(Strtab) ? null : Refuse.StrtabCorrupt(Name, sh.Link);
    }

    // elf_verify_strtab: an SHT_STRTAB with contents that start and end with NUL.
    private bool VerifyStrtab(LoaderSection s)
    {
        var h = s.Header;
        if (h.Type != ElfSectionType.StringTable || h.Size == 0)
            return false;
        var data = FileData(s);
        return data[0] == 0 && data[^1] == 0;
    }

    // elf_resolve_section_names
    private LivepatchError? ResolveSectionNames()
    {
        var shstrtab = Sections[s_layout.U16(Data.Span, ElfHeader.Layout64.ShStrNdx)];
        if (shstrtab.Index == 0 || !VerifyStrtab(shstrtab))
            return Refuse.SectionNamesCorrupt(Name);
        var names = FileData(shstrtab);
        for (int i = 1; i < ShNum; i++)
        {
            uint at = Sections[i].Header.NameOffset;
            if (at >= (ulong)names.Length)
                return Refuse.SectionNamePastEnd(Name, i);
            Sections[i].Name = CString(names[(int)at..]);
        }
        return null;
    }

    // elf_get_sym
    private LivepatchError? GetSymbols()
    {
        var symtab = Sections[SymtabIndex].Header;
        var data = FileData(Sections[SymtabIndex]);
        var strings = FileData(Strtab);
        int n = (int)(symtab.Size / symtab.EntrySize);
        var symbols = new LoaderSymbol[n];
        for (int i = 1; i < n; i++)
        {
            var s = ElfSymbol.Read(data[(int)((ulong)i * symtab.EntrySize)..], s_layout);
            if (s.NameOffset >= (ulong)strings.Length)
                return Refuse.SymbolNamePastEnd(Name, i);
            symbols[i] = new LoaderSymbol { Raw = s, Name = CString(strings[(int)s.NameOffset..]), Value = s.Value };
        }
        Symbols = symbols;
        return null;
    }

    /// <summary>A NUL-terminated string (the tables are verified to end with NUL).</summary>
    public static string CString(ReadOnlySpan<byte> s)
    {
        int end = s.IndexOf((byte)0);
        return Encoding.Latin1.GetString(end < 0 ? s : s[..end]);
    }
}
