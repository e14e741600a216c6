namespace XenLivepatch.Elf;

/// <summary>A lazy view of a SHT_REL or SHT_RELA section.</summary>
public sealed class ElfRelocationTable
{
    private readonly ReadOnlyMemory<byte> _data;
    private readonly int _stride;

    internal ElfRelocationTable(ElfLayout layout, int sectionIndex, ElfSectionHeader header, ReadOnlyMemory<byte> data, int stride, int count)
    {
        Layout = layout;
        SectionIndex = sectionIndex;
        IsRela = header.Type == ElfSectionType.Rela;
        SymbolTableIndex = header.Link;
        TargetSectionIndex = header.Info;
        _data = data;
        _stride = stride;
        Count = count;
    }

    /// <summary>The file's layout.</summary>
    public ElfLayout Layout { get; }

    /// <summary>Index of the relocation section.</summary>
    public int SectionIndex { get; }

    /// <summary>True for SHT_RELA (explicit addends), false for SHT_REL.</summary>
    public bool IsRela { get; }

    /// <summary><c>sh_link</c>: the symbol table the entries refer to (not validated here).</summary>
    public uint SymbolTableIndex { get; }

    /// <summary><c>sh_info</c>: the section the entries relocate (not validated here).</summary>
    public uint TargetSectionIndex { get; }

    /// <summary>Number of entries.</summary>
    public int Count { get; }

    /// <summary>Reads entry <paramref name="index"/>.</summary>
    public ElfRelocation this[int index]
    {
        get
        {
            ArgumentOutOfRangeException.ThrowIfNegative(index);
            ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(index, Count);
            return ElfRelocation.Read(_data.Span.Slice(index * _stride, _stride), Layout, IsRela);
        }
    }
}
