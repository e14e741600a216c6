using System.Diagnostics.CodeAnalysis;
using System.Text;

namespace XenLivepatch.Elf;

/// <summary>
/// A read-only view of an ELF file (ELF32 or ELF64, either byte order, any e_type). Opening it checks the
/// identification, the versions and the bounds of the section and program header tables; everything else
/// (section contents, strings, symbols, relocations, notes) is checked when it is asked for, against the
/// file's size, and reported as an <see cref="ElfError"/>. No method throws for malformed input except the
/// convenience forms documented to throw <see cref="ElfFormatException"/>, and nothing is allocated in
/// proportion to a count that the file's size does not back.
/// </summary>
public sealed partial class ElfFile
{
    private readonly ElfSectionHeader[] _sections;
    private readonly ElfProgramHeader[] _segments;

    private ElfFile(ReadOnlyMemory<byte> data, ElfHeader header, ElfSectionHeader[] sections, ElfProgramHeader[] segments, int sectionNameTableIndex)
    {
        Data = data;
        Header = header;
        Layout = header.Layout;
        _sections = sections;
        _segments = segments;
        SectionNameTableIndex = sectionNameTableIndex;
    }

    /// <summary>The whole file.</summary>
    public ReadOnlyMemory<byte> Data { get; }

    /// <summary>The ELF header as stored.</summary>
    public ElfHeader Header { get; }

    /// <summary>Class and byte order.</summary>
    public ElfLayout Layout { get; }

    /// <summary>Number of section headers, index 0 included (extended numbering resolved).</summary>
    public int SectionCount => _sections.Length;

    /// <summary>The section headers, in file order; index 0 is the null section when there are any.</summary>
    public ReadOnlySpan<ElfSectionHeader> SectionHeaders => _sections;

    /// <summary>The program headers.</summary>
    public ReadOnlySpan<ElfProgramHeader> ProgramHeaders => _segments;

    /// <summary>Index of the section name string table (extended numbering resolved), 0 when there is none.</summary>
    public int SectionNameTableIndex { get; }

    /// <summary>Reads the file at <paramref name="path"/>; throws <see cref="ElfFormatException"/> when malformed.</summary>
    public static ElfFile Load(string path) => Read(File.ReadAllBytes(path));

    /// <summary>Opens <paramref name="data"/>; throws <see cref="ElfFormatException"/> when malformed.</summary>
    public static ElfFile Read(ReadOnlyMemory<byte> data) =>
        TryRead(data, out var file, out var error) ? file : throw new ElfFormatException(error);

    /// <summary>Opens <paramref name="data"/>, checking the header and the header tables against its size.</summary>
    public static bool TryRead(ReadOnlyMemory<byte> data, [NotNullWhen(true)] out ElfFile? file, [NotNullWhen(false)] out ElfError? error)
    {
        file = null;
        var span = data.Span;
        if (!ElfHeader.TryRead(span, out var h, out error))
            return false;
        if (h.IdentVersion != ElfIdent.CurrentVersion)
            return Fail(out error, new ElfError(ElfErrorCode.BadVersion, $"EI_VERSION is {h.IdentVersion}, expected {ElfIdent.CurrentVersion}") { Offset = ElfIdent.VersionIndex });
        if (h.Version != ElfIdent.CurrentVersion)
            return Fail(out error, new ElfError(ElfErrorCode.BadVersion, $"e_version is {h.Version}, expected {ElfIdent.CurrentVersion}") { Offset = ElfHeader.Layout64.Version });

        var l = h.Layout;
        ulong length = (ulong)span.Length;
        var sections = Array.Empty<ElfSectionHeader>();
        ElfSectionHeader first = default;
        if (h.SectionHeaderOffset == 0)
        {
            if (h.SectionHeaderCount != 0)
                return Fail(out error, new ElfError(ElfErrorCode.BadHeader, $"e_shnum is {h.SectionHeaderCount} but e_shoff is 0"));
        }
        else
        {
            int min = ElfSectionHeader.SizeOf(h.Class);
            if (h.SectionHeaderEntrySize < min)
                return Fail(out error, new ElfError(ElfErrorCode.BadHeader, $"e_shentsize is {h.SectionHeaderEntrySize}, smaller than the {min}-byte section header"));
            ulong entSize = h.SectionHeaderEntrySize;
            // Both operands are bounded by the file length, so the subtraction cannot wrap.
            if (h.SectionHeaderOffset > length || length - h.SectionHeaderOffset < entSize)
                return Fail(out error, new ElfError(ElfErrorCode.SectionTableOutOfBounds, $"section header table at 0x{h.SectionHeaderOffset:x} is past the end of the {length}-byte file") { Offset = (long)Math.Min(h.SectionHeaderOffset, long.MaxValue) });
            first = ElfSectionHeader.Read(span[(int)h.SectionHeaderOffset..], l);
            // Extended numbering: e_shnum == 0 means the count is in section 0's sh_size.
            ulong count = h.SectionHeaderCount != 0 ? h.SectionHeaderCount : first.Size;
            ulong fits = (length - h.SectionHeaderOffset) / entSize;
            if (count > fits)
                return Fail(out error, new ElfError(ElfErrorCode.SectionTableOutOfBounds, $"{count} section headers of {entSize} bytes at 0x{h.SectionHeaderOffset:x} do not fit in the {length}-byte file (room for {fits})") { Offset = (long)h.SectionHeaderOffset });
            sections = new ElfSectionHeader[(int)count];
            for (int i = 0; i < sections.Length; i++)
                sections[i] = ElfSectionHeader.Read(span[(int)(h.SectionHeaderOffset + (ulong)i * entSize)..], l);
        }

        int shstrndx = h.SectionNameTableIndex;
        if (h.SectionNameTableIndex == (ushort)ElfSpecialSection.XIndex)
        {
            if (sections.Length == 0)
                return Fail(out error, new ElfError(ElfErrorCode.BadHeader, "e_shstrndx is SHN_XINDEX but there is no section 0"));
            shstrndx = first.Link > int.MaxValue ? int.MaxValue : (int)first.Link;
        }
        if (shstrndx != 0 && shstrndx >= sections.Length)
            return Fail(out error, new ElfError(ElfErrorCode.BadHeader, $"e_shstrndx {shstrndx} is out of range (the file has {sections.Length} sections)"));

        var segments = Array.Empty<ElfProgramHeader>();
        ulong phnum = h.ProgramHeaderCount;
        if (phnum == 0xffff && sections.Length > 0)
            phnum = first.Info; // PN_XNUM: the count is in section 0's sh_info.
        if (phnum != 0)
        {
            int min = ElfProgramHeader.SizeOf(h.Class);
            if (h.ProgramHeaderEntrySize < min)
                return Fail(out error, new ElfError(ElfErrorCode.BadHeader, $"e_phentsize is {h.ProgramHeaderEntrySize}, smaller than the {min}-byte program header"));
            ulong entSize = h.ProgramHeaderEntrySize;
            if (h.ProgramHeaderOffset > length || (length - h.ProgramHeaderOffset) / entSize < phnum)
                return Fail(out error, new ElfError(ElfErrorCode.ProgramTableOutOfBounds, $"{phnum} program headers of {entSize} bytes at 0x{h.ProgramHeaderOffset:x} do not fit in the {length}-byte file"));
            segments = new ElfProgramHeader[(int)phnum];
            for (int i = 0; i < segments.Length; i++)
                segments[i] = ElfProgramHeader.Read(span[(int)(h.ProgramHeaderOffset + (ulong)i * entSize)..], l);
        }

        file = new ElfFile(data, h, sections, segments, shstrndx);
        error = null;
        return true;
    }

    // False with the error: the shape of every Try* reader here.
    internal static bool Fail(out ElfError error, ElfError e)
    {
        error = e;
        return false;
    }

    private bool BadIndex(int index, out ElfError error)
    {
        error = new ElfError(ElfErrorCode.BadSectionIndex, $"section index {index} is out of range (the file has {_sections.Length} sections)");
        return true;
    }

    /// <summary>The header of section <paramref name="index"/>.</summary>
    public ElfSectionHeader GetSectionHeader(int index)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(index);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(index, _sections.Length);
        return _sections[index];
    }

    /// <summary>True when <paramref name="index"/> names a section of this file.</summary>
    public bool IsValidSectionIndex(long index) => index >= 0 && index < _sections.Length;

    /// <summary>
    /// The bytes of section <paramref name="index"/>: empty for SHT_NOBITS and SHT_NULL, otherwise
    /// <c>sh_size</c> bytes at <c>sh_offset</c>, which must lie inside the file.
    /// </summary>
    public bool TryGetSectionData(int index, out ReadOnlyMemory<byte> data, [NotNullWhen(false)] out ElfError? error)
    {
        data = default;
        if (!IsValidSectionIndex(index) && BadIndex(index, out error))
            return false;
        var s = _sections[index];
        if (!s.HasFileData)
        {
            error = null;
            return true;
        }
        ulong length = (ulong)Data.Length;
        if (s.Offset > length || s.Size > length - s.Offset)
        {
            error = new ElfError(ElfErrorCode.SectionOutOfBounds, $"section data at 0x{s.Offset:x} of size 0x{s.Size:x} is past the end of the {length}-byte file") { Section = index };
            return false;
        }
        data = Data.Slice((int)s.Offset, (int)s.Size);
        error = null;
        return true;
    }

    /// <summary>The bytes of section <paramref name="index"/>; throws <see cref="ElfFormatException"/> when malformed.</summary>
    public ReadOnlyMemory<byte> GetSectionData(int index) => TryGetSectionData(index, out var d, out var e) ? d : throw new ElfFormatException(e);

    /// <summary>A view of section <paramref name="index"/> as a string table (any section type is accepted).</summary>
    public bool TryGetStringTable(int index, [NotNullWhen(true)] out ElfStringTable? table, [NotNullWhen(false)] out ElfError? error)
    {
        table = null;
        if (!TryGetSectionData(index, out var data, out error))
            return false;
        table = new ElfStringTable(data, index);
        return true;
    }

    /// <summary>The section name string table.</summary>
    public bool TryGetSectionNameTable([NotNullWhen(true)] out ElfStringTable? table, [NotNullWhen(false)] out ElfError? error)
    {
        if (SectionNameTableIndex == 0)
        {
            table = null;
            error = new ElfError(ElfErrorCode.NoSectionNameTable, "the file has no section name string table (e_shstrndx is SHN_UNDEF)");
            return false;
        }
        return TryGetStringTable(SectionNameTableIndex, out table, out error);
    }

    /// <summary>The name of section <paramref name="index"/>.</summary>
    public bool TryGetSectionName(int index, [NotNullWhen(true)] out string? name, [NotNullWhen(false)] out ElfError? error)
    {
        name = null;
        if (!IsValidSectionIndex(index) && BadIndex(index, out error))
            return false;
        if (!TryGetSectionNameTable(out var names, out error))
            return false;
        if (names.TryGetString(_sections[index].NameOffset, out name, out error))
            return true;
        error = error with { Section = index, Message = $"name of section {index}: {error.Message}" };
        return false;
    }

    /// <summary>The name of section <paramref name="index"/>; throws <see cref="ElfFormatException"/> when malformed.</summary>
    public string GetSectionName(int index) => TryGetSectionName(index, out string? n, out var e) ? n : throw new ElfFormatException(e);

    /// <summary>
    /// The index of the first section named <paramref name="name"/>, or -1. Sections whose names cannot be
    /// read are skipped. The first match wins, as in the livepatch loader.
    /// </summary>
    public int FindSection(string name)
    {
        if (!TryGetSectionNameTable(out var names, out _))
            return -1;
        byte[] wanted = Encoding.Latin1.GetBytes(name);
        for (int i = 1; i < _sections.Length; i++)
        {
            if (names.StringEquals(_sections[i].NameOffset, wanted))
                return i;
        }
        return -1;
    }

    /// <summary>The index of the first section of type <paramref name="type"/>, or -1.</summary>
    public int FindSection(ElfSectionType type)
    {
        for (int i = 1; i < _sections.Length; i++)
        {
            if (_sections[i].Type == type)
                return i;
        }
        return -1;
    }
}
