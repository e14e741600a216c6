using System.Diagnostics.CodeAnalysis;

namespace XenLivepatch.Elf;

/// <summary>
/// A lazy view of a symbol table section: entries are decoded when read, so a hostile entry count costs
/// nothing until it is walked. Extended section indices (SHT_SYMTAB_SHNDX) are resolved by
/// <see cref="GetSectionIndex"/>.
/// </summary>
public sealed class ElfSymbolTable
{
    private readonly ReadOnlyMemory<byte> _data;
    private readonly ReadOnlyMemory<byte> _extendedIndices;
    private readonly int _stride;

    internal ElfSymbolTable(ElfLayout layout, int sectionIndex, ReadOnlyMemory<byte> data, int stride, int count,
        ElfStringTable strings, uint firstNonLocal, ReadOnlyMemory<byte> extendedIndices)
    {
        Layout = layout;
        SectionIndex = sectionIndex;
        _data = data;
        _stride = stride;
        Count = count;
        Strings = strings;
        FirstNonLocal = firstNonLocal;
        _extendedIndices = extendedIndices;
    }

    /// <summary>The file's layout.</summary>
    public ElfLayout Layout { get; }

    /// <summary>Index of the symbol table section.</summary>
    public int SectionIndex { get; }

    /// <summary>Number of entries, the null symbol at index 0 included.</summary>
    public int Count { get; }

    /// <summary>The linked string table (<c>sh_link</c>).</summary>
    public ElfStringTable Strings { get; }

    /// <summary><c>sh_info</c>: by the ABI, one more than the index of the last local symbol.</summary>
    public uint FirstNonLocal { get; }

    /// <summary>Reads entry <paramref name="index"/> (0 ≤ index &lt; <see cref="Count"/>).</summary>
    public ElfSymbol this[int index]
    {
        get
        {
            ArgumentOutOfRangeException.ThrowIfNegative(index);
            ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(index, Count);
            return ElfSymbol.Read(_data.Span.Slice(index * _stride, _stride), Layout);
        }
    }

    /// <summary>Reads entry <paramref name="index"/>, reporting a bad index as a format error (for indices taken from the file).</summary>
    public bool TryGetSymbol(uint index, out ElfSymbol symbol, [NotNullWhen(false)] out ElfError? error)
    {
        if (index >= (uint)Count)
        {
            symbol = default;
            error = ElfError.Sec(ElfErrorCode.BadSymbolIndex, SectionIndex, $"symbol index {index} is out of range (the table has {Count})");
            return false;
        }
        symbol = this[(int)index];
        error = null;
        return true;
    }

    /// <summary>The name of a symbol.</summary>
    public bool TryGetName(in ElfSymbol symbol, [NotNullWhen(true)] out string? name, [NotNullWhen(false)] out ElfError? error) =>
        Strings.TryGetString(symbol.NameOffset, out name, out error);

    /// <summary>The name of a symbol; throws <see cref="ElfFormatException"/> when malformed.</summary>
    public string GetName(in ElfSymbol symbol) => Strings.GetString(symbol.NameOffset);

    /// <summary>
    /// The symbol's section index: <c>st_shndx</c>, or the entry of the SHT_SYMTAB_SHNDX table when
    /// <c>st_shndx</c> is SHN_XINDEX. Reserved values (SHN_ABS, SHN_COMMON, SHN_UNDEF) are returned as they are.
    /// </summary>
    public bool TryGetSectionIndex(int index, out uint sectionIndex, [NotNullWhen(false)] out ElfError? error)
    {
        var sym = this[index];
        if (sym.SectionIndex != (ushort)ElfSpecialSection.XIndex)
        {
            sectionIndex = sym.SectionIndex;
            error = null;
            return true;
        }
        if ((long)(index + 1) * 4 > _extendedIndices.Length)
        {
            sectionIndex = 0;
            error = ElfError.Sec(ElfErrorCode.BadSymbolIndex, SectionIndex, $"symbol {index} has st_shndx SHN_XINDEX but no SHT_SYMTAB_SHNDX entry");
            return false;
        }
        sectionIndex = Layout.U32(_extendedIndices.Span, index * 4);
        error = null;
        return true;
    }

    /// <summary>The resolved section index; throws <see cref="ElfFormatException"/> when malformed.</summary>
    public uint GetSectionIndex(int index) => TryGetSectionIndex(index, out uint s, out var e) ? s : throw new ElfFormatException(e);
}
