using System.Diagnostics.CodeAnalysis;

namespace XenLivepatch.Elf;

/// <summary>
/// An editable relocatable object (ET_REL): sections with their contents, symbol tables, relocations and
/// groups, linked by reference. Build one from scratch or from an <see cref="ElfFile"/>
/// (<see cref="FromFile"/>), then <see cref="Write"/> it: the writer lays the file out, numbers sections
/// and symbols (locals first), builds the string tables and encodes every table in the object's class and
/// byte order. What it writes is read back identically by <see cref="ElfFile"/>, and by readelf and ld.
/// </summary>
public sealed class ElfObject
{
    /// <summary>Creates an empty object.</summary>
    public ElfObject(ElfClass elfClass, ElfEncoding encoding, ElfMachine machine)
    {
        Layout = new ElfLayout(elfClass, encoding);
        Machine = machine;
    }

    /// <summary>Class and byte order.</summary>
    public ElfLayout Layout { get; }

    /// <summary><c>e_machine</c>.</summary>
    public ElfMachine Machine { get; set; }

    /// <summary><c>e_type</c>; the writer writes relocatable objects only.</summary>
    public ElfType Type { get; set; } = ElfType.Relocatable;

    /// <summary><c>EI_OSABI</c>.</summary>
    public ElfOsAbi OsAbi { get; set; }

    /// <summary><c>EI_ABIVERSION</c>.</summary>
    public byte AbiVersion { get; set; }

    /// <summary><c>e_flags</c>.</summary>
    public uint Flags { get; set; }

    /// <summary>The sections in file order (the null section 0 is implicit).</summary>
    public List<ElfObjectSection> Sections { get; } = [];

    /// <summary>The section name string table; when null the writer appends a <c>.shstrtab</c>.</summary>
    public ElfStringTableSection? SectionNames { get; set; }

    /// <summary>The first SHT_SYMTAB section, or null.</summary>
    public ElfSymbolTableSection? SymbolTable => Sections.OfType<ElfSymbolTableSection>().FirstOrDefault(s => s.Type == ElfSectionType.SymbolTable);

    /// <summary>The first section named <paramref name="name"/>, or null.</summary>
    public ElfObjectSection? FindSection(string name) => Sections.Find(s => s.Name == name);

    /// <summary>Appends a section with contents (or, for SHT_NOBITS, a size of <c>data.Length</c> zero bytes).</summary>
    public ElfObjectSection AddSection(string name, ElfSectionType type, ElfSectionFlags flags, ReadOnlySpan<byte> data, ulong alignment = 1)
    {
        var s = new ElfObjectSection(name, type) { Flags = flags, Alignment = alignment };
        if (type == ElfSectionType.NoBits)
            s.NoBitsSize = (ulong)data.Length;
        else
            s.Data = data.ToArray();
        Sections.Add(s);
        return s;
    }

    /// <summary>Returns the symbol table, creating <c>.symtab</c> and <c>.strtab</c> when there is none.</summary>
    public ElfSymbolTableSection GetOrAddSymbolTable()
    {
        var existing = SymbolTable;
        if (existing != null)
            return existing;
        var strings = new ElfStringTableSection(".strtab");
        var symtab = new ElfSymbolTableSection(".symtab", strings) { Alignment = (ulong)Layout.WordSize };
        Sections.Add(symtab);
        Sections.Add(strings);
        return symtab;
    }

    /// <summary>Returns the relocation section of <paramref name="target"/>, creating <c>.rela&lt;name&gt;</c> (or <c>.rel</c>) when missing.</summary>
    public ElfRelocationSection GetOrAddRelocations(ElfObjectSection target, bool? rela = null)
    {
        foreach (var r in Sections.OfType<ElfRelocationSection>())
        {
            if (ReferenceEquals(r.Target, target))
                return r;
        }
        bool useRela = rela ?? Machine is not (ElfMachine.I386 or ElfMachine.Arm or ElfMachine.Mips);
        var symtab = GetOrAddSymbolTable();
        var section = new ElfRelocationSection((useRela ? ".rela" : ".rel") + target.Name, useRela, target, symtab) { Alignment = (ulong)Layout.WordSize };
        Sections.Add(section);
        return section;
    }

    /// <summary>Adds a section symbol (STT_SECTION, local) for <paramref name="section"/> if there is none, and returns it.</summary>
    public ElfObjectSymbol GetOrAddSectionSymbol(ElfObjectSection section)
    {
        var symtab = GetOrAddSymbolTable();
        var existing = symtab.Symbols.Find(s => s.Type == ElfSymbolType.Section && ReferenceEquals(s.Section, section));
        return existing ?? symtab.Add(new ElfObjectSymbol("") { Type = ElfSymbolType.Section, Binding = ElfSymbolBinding.Local, Section = section });
    }

    /// <summary>
    /// Removes a section and everything that depends on it: its relocation sections, its group membership,
    /// the symbols defined in it and the relocations against those symbols.
    /// </summary>
    public void RemoveSection(ElfObjectSection section)
    {
        Sections.Remove(section);
        Sections.RemoveAll(s => s is ElfRelocationSection r && ReferenceEquals(r.Target, section));
        foreach (var g in Sections.OfType<ElfGroupSection>())
            g.Members.Remove(section);
        var gone = new HashSet<ElfObjectSymbol>(ReferenceEqualityComparer.Instance);
        foreach (var st in Sections.OfType<ElfSymbolTableSection>())
        {
            foreach (var sym in st.Symbols.Where(s => ReferenceEquals(s.Section, section)))
                gone.Add(sym);
            st.Symbols.RemoveAll(gone.Contains);
        }
        foreach (var r in Sections.OfType<ElfRelocationSection>())
            r.Entries.RemoveAll(e => e.Symbol != null && gone.Contains(e.Symbol));
    }

    /// <summary>Builds the editable model of a file; throws <see cref="ElfFormatException"/> when malformed.</summary>
    public static ElfObject FromFile(ElfFile file) =>
        TryFromFile(file, out var obj, out var error) ? obj : throw new ElfFormatException(error);

    /// <summary>
    /// Builds the editable model of a file: every section with its contents, symbol tables, relocations and
    /// groups resolved into references. SHT_SYMTAB_SHNDX sections are dropped (the writer regenerates them
    /// when needed). Fails with the first format error met.
    /// </summary>
    public static bool TryFromFile(ElfFile file, [NotNullWhen(true)] out ElfObject? obj, [NotNullWhen(false)] out ElfError? error) =>
        ElfObjectReader.TryRead(file, out obj, out error);

    /// <summary>
    /// Lists what would make this object unwritable: dangling references, bad alignments, values that do not
    /// fit an ELF32 field, symbols used by a relocation but missing from its symbol table. Empty when writable.
    /// </summary>
    public IReadOnlyList<string> Validate() => ElfObjectWriter.Validate(this);

    /// <summary>The largest alignment the writer keeps for a section's file offset (a page).</summary>
    public const ulong MaxFileAlignment = 4096;

    /// <summary>
    /// Writes the object. Throws <see cref="InvalidOperationException"/> listing every problem when
    /// <see cref="Validate"/> finds any.
    /// </summary>
    public byte[] Write() => ElfObjectWriter.Write(this);
}
