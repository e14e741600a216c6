namespace XenLivepatch.Elf;

/// <summary>
/// A section of an <see cref="ElfObject"/>. Links to other sections are references, not numbers, so sections
/// can be added, removed or reordered and the writer renumbers everything. <c>sh_link</c>/<c>sh_info</c> values
/// that are not section references in this section's type are kept as raw numbers.
/// </summary>
public class ElfObjectSection
{
    /// <summary>Creates a section.</summary>
    public ElfObjectSection(string name, ElfSectionType type)
    {
        Name = name;
        Type = type;
    }

    /// <summary>The name (written to the section name string table).</summary>
    public string Name { get; set; }

    /// <summary><c>sh_type</c>.</summary>
    public ElfSectionType Type { get; set; }

    /// <summary><c>sh_flags</c>.</summary>
    public ElfSectionFlags Flags { get; set; }

    /// <summary><c>sh_addr</c>.</summary>
    public ulong Address { get; set; }

    /// <summary><c>sh_addralign</c> (0 or a power of two).</summary>
    public ulong Alignment { get; set; } = 1;

    /// <summary><c>sh_entsize</c>. The writer sets it for the tables it encodes.</summary>
    public ulong EntrySize { get; set; }

    /// <summary>
    /// The contents. Empty for SHT_NOBITS, whose size is <see cref="NoBitsSize"/>. Sections read from a file
    /// share that file's bytes (nothing is copied); assign a new array to change them.
    /// </summary>
    public ReadOnlyMemory<byte> Data { get; set; }

    /// <summary>Size of an SHT_NOBITS section.</summary>
    public ulong NoBitsSize { get; set; }

    /// <summary>The section <c>sh_link</c> refers to, if any.</summary>
    public ElfObjectSection? Link { get; set; }

    /// <summary><c>sh_link</c> when <see cref="Link"/> is null.</summary>
    public uint RawLink { get; set; }

    /// <summary>The section <c>sh_info</c> refers to (SHF_INFO_LINK), if any.</summary>
    public ElfObjectSection? InfoSection { get; set; }

    /// <summary><c>sh_info</c> when <see cref="InfoSection"/> is null and the type does not define it.</summary>
    public uint RawInfo { get; set; }

    /// <summary>
    /// <c>sh_size</c> of the contents held here. Tables that the writer encodes (symbol, relocation and
    /// generated string tables) hold no contents: their size is known once written.
    /// </summary>
    public virtual ulong Size => Type == ElfSectionType.NoBits ? NoBitsSize : (ulong)Data.Length;

    /// <summary>True when the section occupies file bytes.</summary>
    public bool HasFileData => Type is not (ElfSectionType.NoBits or ElfSectionType.Null);

    /// <inheritdoc/>
    public override string ToString() => $"{Name} ({Type.GetSpecName() ?? ((uint)Type).ToString("x", null)})";
}

/// <summary>
/// An SHT_STRTAB section. When <see cref="Generated"/> is true the writer builds its contents from the names
/// that use it (section names, symbol names); otherwise <see cref="ElfObjectSection.Data"/> is written as is.
/// </summary>
public sealed class ElfStringTableSection : ElfObjectSection
{
    /// <summary>Creates a string table whose contents the writer generates.</summary>
    public ElfStringTableSection(string name) : base(name, ElfSectionType.StringTable) => Generated = true;

    /// <summary>True when the writer builds the contents.</summary>
    public bool Generated { get; set; }
}

/// <summary>An SHT_SYMTAB (or SHT_DYNSYM) section. Index 0, the null symbol, is implicit.</summary>
public sealed class ElfSymbolTableSection : ElfObjectSection
{
    /// <summary>Creates a symbol table whose names go to <paramref name="strings"/>.</summary>
    public ElfSymbolTableSection(string name, ElfStringTableSection strings) : base(name, ElfSectionType.SymbolTable)
    {
        Strings = strings;
        Link = strings;
    }

    /// <summary>The string table of the names (also <see cref="ElfObjectSection.Link"/>).</summary>
    public ElfStringTableSection Strings
    {
        get => (ElfStringTableSection)Link!;
        set => Link = value;
    }

    /// <summary>The symbols, without the null symbol. The writer puts local symbols first, keeping order.</summary>
    public List<ElfObjectSymbol> Symbols { get; } = [];

    /// <summary>Adds a symbol and returns it.</summary>
    public ElfObjectSymbol Add(ElfObjectSymbol symbol)
    {
        Symbols.Add(symbol);
        return symbol;
    }

    /// <summary>The first symbol with this name, or null.</summary>
    public ElfObjectSymbol? Find(string name) => Symbols.Find(s => s.Name == name);
}

/// <summary>An SHT_REL or SHT_RELA section: relocations of <see cref="Target"/> against <see cref="SymbolTable"/>.</summary>
public sealed class ElfRelocationSection : ElfObjectSection
{
    /// <summary>Creates a relocation section.</summary>
    public ElfRelocationSection(string name, bool rela, ElfObjectSection? target, ElfSymbolTableSection? symbolTable)
        : base(name, rela ? ElfSectionType.Rela : ElfSectionType.Rel)
    {
        Target = target;
        Link = symbolTable;
        Flags = ElfSectionFlags.InfoLink;
    }

    /// <summary>True for SHT_RELA.</summary>
    public bool IsRela => Type == ElfSectionType.Rela;

    /// <summary>The relocated section (<c>sh_info</c>); when null, <see cref="ElfObjectSection.RawInfo"/> is written.</summary>
    public ElfObjectSection? Target
    {
        get => InfoSection;
        set => InfoSection = value;
    }

    /// <summary>The symbol table (<c>sh_link</c>).</summary>
    public ElfSymbolTableSection? SymbolTable
    {
        get => Link as ElfSymbolTableSection;
        set => Link = value;
    }

    /// <summary>The entries.</summary>
    public List<ElfObjectRelocation> Entries { get; } = [];
}

/// <summary>An SHT_GROUP section (COMDAT and other section groups).</summary>
public sealed class ElfGroupSection : ElfObjectSection
{
    /// <summary>Creates a group.</summary>
    public ElfGroupSection(string name, ElfSymbolTableSection symbolTable) : base(name, ElfSectionType.Group)
    {
        Link = symbolTable;
        Alignment = 4;
    }

    /// <summary>The flag word (GRP_COMDAT = 1).</summary>
    public uint GroupFlags { get; set; }

    /// <summary>The member sections.</summary>
    public List<ElfObjectSection> Members { get; } = [];

    /// <summary>The symbol table of the signature (<c>sh_link</c>).</summary>
    public ElfSymbolTableSection SymbolTable
    {
        get => (ElfSymbolTableSection)Link!;
        set => Link = value;
    }

    /// <summary>The signature symbol (<c>sh_info</c>).</summary>
    public ElfObjectSymbol? Signature { get; set; }

    /// <inheritdoc/>
    public override ulong Size => 4 + 4 * (ulong)Members.Count;
}

/// <summary>A symbol of an <see cref="ElfSymbolTableSection"/>.</summary>
public sealed class ElfObjectSymbol
{
    /// <summary>Creates a symbol.</summary>
    public ElfObjectSymbol(string name) => Name = name;

    /// <summary>The name.</summary>
    public string Name { get; set; }

    /// <summary><c>st_value</c>.</summary>
    public ulong Value { get; set; }

    /// <summary><c>st_size</c>.</summary>
    public ulong Size { get; set; }

    /// <summary>The type.</summary>
    public ElfSymbolType Type { get; set; }

    /// <summary>The binding.</summary>
    public ElfSymbolBinding Binding { get; set; }

    /// <summary><c>st_other</c> (visibility in its low two bits, processor bits above).</summary>
    public byte Other { get; set; }

    /// <summary>The visibility (low two bits of <see cref="Other"/>).</summary>
    public ElfSymbolVisibility Visibility
    {
        get => (ElfSymbolVisibility)(Other & 3);
        set => Other = (byte)((Other & ~3) | ((byte)value & 3));
    }

    /// <summary>The section the symbol is defined in; null for the reserved indices in <see cref="SpecialSection"/>.</summary>
    public ElfObjectSection? Section { get; set; }

    /// <summary>Used when <see cref="Section"/> is null: SHN_UNDEF (undefined), SHN_ABS or SHN_COMMON.</summary>
    public ElfSpecialSection SpecialSection { get; set; }

    /// <summary>True for local symbols (which the writer places first).</summary>
    public bool IsLocal => Binding == ElfSymbolBinding.Local;

    /// <inheritdoc/>
    public override string ToString() => Name;
}

/// <summary>A relocation entry of an <see cref="ElfRelocationSection"/>; a null symbol is index 0.</summary>
public readonly record struct ElfObjectRelocation(ulong Offset, uint Type, ElfObjectSymbol? Symbol, long Addend);
