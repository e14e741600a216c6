using System.Diagnostics.CodeAnalysis;

namespace XenLivepatch.Elf;

public sealed partial class ElfFile
{
    /// <summary>
    /// A view of symbol table section <paramref name="index"/> (SHT_SYMTAB or SHT_DYNSYM): its entry size must
    /// be at least the class's symbol size and divide its size, and <c>sh_link</c> must name a section whose
    /// contents lie in the file. An SHT_SYMTAB_SHNDX section linked to it supplies extended section indices.
    /// </summary>
    public bool TryGetSymbolTable(int index, [NotNullWhen(true)] out ElfSymbolTable? table, [NotNullWhen(false)] out ElfError? error)
    {
        table = null;
        if (!IsValidSectionIndex(index) && BadIndex(index, out error))
            return false;
        var s = _sections[index];
        if (s.Type is not (ElfSectionType.SymbolTable or ElfSectionType.DynamicSymbolTable))
            return Fail(out error, ElfError.Sec(ElfErrorCode.BadSectionType, index, $"section {index} has type {Describe(s.Type)}, not SHT_SYMTAB or SHT_DYNSYM"));
        int min = ElfSymbol.SizeOf(Layout.Class);
        if (!CheckEntries(index, s, min, "symbol", out int count, out error))
            return false;
        if (!TryGetSectionData(index, out var data, out error))
            return false;
        if (!IsValidSectionIndex(s.Link) || s.Link == 0)
            return Fail(out error, ElfError.Sec(ElfErrorCode.BadLink, index, $"symbol table sh_link {s.Link} does not name a string table section"));
        if (!TryGetStringTable((int)s.Link, out var strings, out error))
            return false;
        ReadOnlyMemory<byte> xindex = default;
        for (int i = 1; i < _sections.Length; i++)
        {
            if (_sections[i].Type == ElfSectionType.SymbolTableIndex && _sections[i].Link == (uint)index)
            {
                if (!TryGetSectionData(i, out xindex, out error))
                    return false;
                break;
            }
        }
        table = new ElfSymbolTable(Layout, index, data, (int)s.EntrySize, count, strings, s.Info, xindex);
        return true;
    }

    /// <summary>The symbol table of section <paramref name="index"/>; throws <see cref="ElfFormatException"/> when malformed.</summary>
    public ElfSymbolTable GetSymbolTable(int index) => TryGetSymbolTable(index, out var t, out var e) ? t : throw new ElfFormatException(e);

    /// <summary>
    /// A view of relocation section <paramref name="index"/> (SHT_REL or SHT_RELA), with the same entry size
    /// checks as symbol tables. <c>sh_link</c> and <c>sh_info</c> are reported, not validated.
    /// </summary>
    public bool TryGetRelocationTable(int index, [NotNullWhen(true)] out ElfRelocationTable? table, [NotNullWhen(false)] out ElfError? error)
    {
        table = null;
        if (!IsValidSectionIndex(index) && BadIndex(index, out error))
            return false;
        var s = _sections[index];
        if (s.Type is not (ElfSectionType.Rel or ElfSectionType.Rela))
            return Fail(out error, ElfError.Sec(ElfErrorCode.BadSectionType, index, $"section {index} has type {Describe(s.Type)}, not SHT_REL or SHT_RELA"));
        int min = ElfRelocation.SizeOf(Layout.Class, s.Type == ElfSectionType.Rela);
        if (!CheckEntries(index, s, min, "relocation", out int count, out error))
            return false;
        if (!TryGetSectionData(index, out var data, out error))
            return false;
        table = new ElfRelocationTable(Layout, index, s, data, (int)s.EntrySize, count);
        return true;
    }

    /// <summary>The relocations of section <paramref name="index"/>; throws <see cref="ElfFormatException"/> when malformed.</summary>
    public ElfRelocationTable GetRelocationTable(int index) => TryGetRelocationTable(index, out var t, out var e) ? t : throw new ElfFormatException(e);

    /// <summary>The notes of SHT_NOTE section <paramref name="index"/>.</summary>
    public bool TryGetNotes(int index, [NotNullWhen(true)] out IReadOnlyList<ElfNote>? notes, [NotNullWhen(false)] out ElfError? error)
    {
        notes = null;
        if (!IsValidSectionIndex(index) && BadIndex(index, out error))
            return false;
        var s = _sections[index];
        if (s.Type != ElfSectionType.Note)
            return Fail(out error, ElfError.Sec(ElfErrorCode.BadSectionType, index, $"section {index} has type {Describe(s.Type)}, not SHT_NOTE"));
        if (!TryGetSectionData(index, out var data, out error))
            return false;
        if (TryParseNotes(data, Layout.Encoding, ElfNote.AlignmentFor(s.AddressAlign), out notes, out error))
            return true;
        error = error with { Section = index };
        return false;
    }

    /// <summary>The notes of section <paramref name="index"/>; throws <see cref="ElfFormatException"/> when malformed.</summary>
    public IReadOnlyList<ElfNote> GetNotes(int index) => TryGetNotes(index, out var n, out var e) ? n : throw new ElfFormatException(e);

    /// <summary>
    /// Parses a sequence of notes (the contents of an SHT_NOTE section or a PT_NOTE segment). Every header,
    /// name and descriptor must lie inside <paramref name="data"/>; the padding after the last descriptor may
    /// be missing.
    /// </summary>
    public static bool TryParseNotes(ReadOnlyMemory<byte> data, ElfEncoding encoding, int alignment,
        [NotNullWhen(true)] out IReadOnlyList<ElfNote>? notes, [NotNullWhen(false)] out ElfError? error) =>
        ElfNotes.TryParse(data, encoding, alignment, out notes, out error);

    /// <summary>
    /// Finds the GNU build-id: the descriptor of the first NT_GNU_BUILD_ID note owned by "GNU" in an SHT_NOTE
    /// section (or, in a file without sections, in a PT_NOTE segment). Returns false with a null error when
    /// the file has none, and false with an error when a note section is malformed.
    /// </summary>
    public bool TryGetGnuBuildId(out ReadOnlyMemory<byte> buildId, out ElfError? error)
    {
        buildId = default;
        error = null;
        for (int i = 1; i < _sections.Length; i++)
        {
            if (_sections[i].Type != ElfSectionType.Note)
                continue;
            if (!TryGetNotes(i, out var notes, out error))
                return false;
            if (ElfNotes.GnuBuildId(notes) is { } found)
            {
                buildId = found;
                return true;
            }
        }
        if (_sections.Length > 0)
            return false;
        ulong length = (ulong)Data.Length;
        foreach (var p in _segments)
        {
            if (p.Type != ElfSegmentType.Note)
                continue;
            if (p.Offset > length || p.FileSize > length - p.Offset)
            {
                error = new ElfError(ElfErrorCode.BadNote, $"PT_NOTE segment at 0x{p.Offset:x} of size 0x{p.FileSize:x} is past the end of the file");
                return false;
            }
            if (!TryParseNotes(Data.Slice((int)p.Offset, (int)p.FileSize), Layout.Encoding, ElfNote.AlignmentFor(p.Align), out var notes, out error))
                return false;
            if (ElfNotes.GnuBuildId(notes) is { } found)
            {
                buildId = found;
                return true;
            }
        }
        return false;
    }

    /// <summary>The index of the first SHT_SYMTAB section, or -1.</summary>
    public int FindSymbolTable() => FindSection(ElfSectionType.SymbolTable);

    private static bool CheckEntries(int index, in ElfSectionHeader s, int min, string what, out int count, [NotNullWhen(false)] out ElfError? error)
    {
        count = 0;
        if (s.EntrySize < (ulong)min)
            return Fail(out error, ElfError.Sec(ElfErrorCode.BadEntrySize, index, $"{what} table entry size {s.EntrySize} is smaller than the {min}-byte entry"));
        if (s.Size % s.EntrySize != 0)
            return Fail(out error, ElfError.Sec(ElfErrorCode.BadEntrySize, index, $"{what} table size {s.Size} is not a multiple of its entry size {s.EntrySize}"));
        if (s.EntrySize > int.MaxValue || s.Size / s.EntrySize > int.MaxValue)
            return Fail(out error, ElfError.Sec(ElfErrorCode.SectionOutOfBounds, index, $"{what} table of {s.Size} bytes is larger than any file this reader accepts"));
        count = (int)(s.Size / s.EntrySize);
        error = null;
        return true;
    }

    private static string Describe(ElfSectionType type) => type.GetSpecName() ?? $"0x{(uint)type:x}";
}
