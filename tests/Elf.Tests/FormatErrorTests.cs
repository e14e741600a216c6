using System.Buffers.Binary;
using XenLivepatch.TestKit;

namespace XenLivepatch.Elf.Tests;

/// <summary>Each kind of malformation gets its own error code and a message with the numbers involved.</summary>
public class FormatErrorTests
{
    private static byte[] Object() => ElfCorpus.Get("x86_64-O2-pic-data").Bytes;

    private static void Put(byte[] b, int at, ulong value, int width)
    {
        if (width == 2) BinaryPrimitives.WriteUInt16LittleEndian(b.AsSpan(at), (ushort)value);
        else if (width == 4) BinaryPrimitives.WriteUInt32LittleEndian(b.AsSpan(at), (uint)value);
        else BinaryPrimitives.WriteUInt64LittleEndian(b.AsSpan(at), value);
    }

    private static int SectionField(byte[] b, int index, int field) =>
        (int)BinaryPrimitives.ReadUInt64LittleEndian(b.AsSpan(ElfHeader.Layout64.ShOff)) + index * 64 + field;

    private static ElfError OpenError(byte[] b)
    {
        Assert.False(ElfFile.TryRead(b, out _, out var error));
        return error;
    }

    [Fact]
    public void Header_problems_are_reported_when_the_file_is_opened()
    {
        Assert.Equal(ElfErrorCode.Truncated, OpenError(Object()[..10]).Code);
        Assert.Contains("10 bytes", OpenError(Object()[..10]).Message, StringComparison.Ordinal);
        Assert.Equal(ElfErrorCode.Truncated, OpenError(Object()[..40]).Code);

        var b = Object(); b[0] = 0x7e;
        Assert.Equal(ElfErrorCode.BadMagic, OpenError(b).Code);
        b = Object(); b[ElfIdent.ClassIndex] = 3;
        Assert.Contains("unknown class 3", OpenError(b).Message, StringComparison.Ordinal);
        b = Object(); b[ElfIdent.DataIndex] = 0;
        Assert.Equal(ElfErrorCode.BadEncoding, OpenError(b).Code);
        b = Object(); b[ElfIdent.VersionIndex] = 2;
        Assert.Equal(ElfErrorCode.BadVersion, OpenError(b).Code);
        b = Object(); Put(b, ElfHeader.Layout64.Version, 7, 4);
        Assert.Contains("e_version is 7", OpenError(b).Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Section_header_table_problems_are_reported_when_the_file_is_opened()
    {
        var b = Object(); Put(b, ElfHeader.Layout64.ShOff, 1UL << 63, 8);
        Assert.Equal(ElfErrorCode.SectionTableOutOfBounds, OpenError(b).Code);

        b = Object(); Put(b, ElfHeader.Layout64.ShNum, 0xfff0, 2);
        var e = OpenError(b);
        Assert.Equal(ElfErrorCode.SectionTableOutOfBounds, e.Code);
        Assert.Contains("65520 section headers", e.Message, StringComparison.Ordinal);

        b = Object(); Put(b, ElfHeader.Layout64.ShEntSize, 8, 2);
        Assert.Contains("e_shentsize is 8", OpenError(b).Message, StringComparison.Ordinal);

        b = Object();
        ushort count = BinaryPrimitives.ReadUInt16LittleEndian(b.AsSpan(ElfHeader.Layout64.ShNum));
        Put(b, ElfHeader.Layout64.ShStrNdx, count, 2);
        Assert.Contains($"e_shstrndx {count} is out of range", OpenError(b).Message, StringComparison.Ordinal);

        // Extended numbering with a count in section 0 that the file cannot hold.
        b = Object(); Put(b, ElfHeader.Layout64.ShNum, 0, 2); Put(b, SectionField(b, 0, 32), 1UL << 40, 8);
        Assert.Equal(ElfErrorCode.SectionTableOutOfBounds, OpenError(b).Code);

        b = Object(); Put(b, ElfHeader.Layout64.ShOff, 0, 8);
        Assert.Contains("e_shoff is 0", OpenError(b).Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Program_header_table_problems_are_reported_when_the_file_is_opened()
    {
        var b = ElfCorpus.Get("x86_64-exec").Bytes;
        Put(b, ElfHeader.Layout64.PhNum, 0xfffe, 2);
        Assert.Equal(ElfErrorCode.ProgramTableOutOfBounds, OpenError(b).Code);
        b = ElfCorpus.Get("x86_64-exec").Bytes;
        Put(b, ElfHeader.Layout64.PhEntSize, 16, 2);
        Assert.Contains("e_phentsize is 16", OpenError(b).Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Section_contents_are_checked_when_asked_for()
    {
        var b = Object();
        var f = ElfFile.Read(b);
        int symtab = f.FindSymbolTable();
        Put(b, SectionField(b, symtab, 32), 1UL << 62, 8);
        f = ElfFile.Read(b);
        Assert.False(f.TryGetSectionData(symtab, out _, out var e));
        Assert.Equal(ElfErrorCode.SectionOutOfBounds, e.Code);
        Assert.Equal(symtab, e.Section);
        Assert.False(f.TryGetSymbolTable(symtab, out _, out e));
        Assert.False(f.TryGetSectionData(9999, out _, out e));
        Assert.Equal(ElfErrorCode.BadSectionIndex, e.Code);
        Assert.Throws<ElfFormatException>(() => f.GetSectionData(symtab));
    }

    [Fact]
    public void Symbol_table_problems_are_reported_by_the_symbol_view()
    {
        var b = Object();
        int symtab = ElfFile.Read(b).FindSymbolTable();
        Put(b, SectionField(b, symtab, 56), 0, 8);
        Assert.False(ElfFile.Read(b).TryGetSymbolTable(symtab, out _, out var e));
        Assert.Equal(ElfErrorCode.BadEntrySize, e.Code);

        b = Object();
        Put(b, SectionField(b, symtab, 32), BinaryPrimitives.ReadUInt64LittleEndian(b.AsSpan(SectionField(b, symtab, 32))) + 1, 8);
        Assert.False(ElfFile.Read(b).TryGetSymbolTable(symtab, out _, out e));
        Assert.Contains("not a multiple of its entry size 24", e.Message, StringComparison.Ordinal);

        b = Object();
        Put(b, SectionField(b, symtab, 40), 999, 4);
        Assert.False(ElfFile.Read(b).TryGetSymbolTable(symtab, out _, out e));
        Assert.Equal(ElfErrorCode.BadLink, e.Code);

        b = Object();
        var f = ElfFile.Read(b);
        var table = f.GetSymbolTable(symtab);
        int symOffset = (int)f.SectionHeaders[symtab].Offset + 24; // symbol 1
        Put(b, symOffset, 0xffffffff, 4);
        table = ElfFile.Read(b).GetSymbolTable(symtab);
        Assert.False(table.TryGetName(table[1], out _, out e));
        Assert.Equal(ElfErrorCode.BadStringOffset, e.Code);
        Assert.Contains("4294967295", e.Message, StringComparison.Ordinal);
        Assert.False(table.TryGetSymbol(100000, out _, out e));
        Assert.Equal(ElfErrorCode.BadSymbolIndex, e.Code);
    }

    [Fact]
    public void An_unterminated_string_is_reported()
    {
        var b = Object();
        var f = ElfFile.Read(b);
        int strtab = (int)f.SectionHeaders[f.FindSymbolTable()].Link;
        var sh = f.SectionHeaders[strtab];
        Put(b, SectionField(b, strtab, 32), sh.Size - 1, 8); // cut the last NUL
        var strings = ElfFile.Read(b).GetSymbolTable(f.FindSymbolTable()).Strings;
        var data = strings.Data.Span;
        uint last = (uint)data[..^1].LastIndexOf((byte)0) + 1;
        Assert.False(strings.TryGetString(last, out _, out var e));
        Assert.Equal(ElfErrorCode.UnterminatedString, e.Code);
    }

    [Fact]
    public void Section_name_and_relocation_problems_are_reported()
    {
        var b = Object();
        Put(b, SectionField(b, 1, 0), 0x7fffffff, 4);
        var f = ElfFile.Read(b);
        Assert.False(f.TryGetSectionName(1, out _, out var e));
        Assert.Equal(ElfErrorCode.BadStringOffset, e.Code);
        Assert.Equal(1, e.Section);
        Assert.Equal(-1, f.FindSection(".text")); // the renamed section is skipped, not thrown on

        b = Object();
        f = ElfFile.Read(b);
        int rela = f.FindSection(ElfSectionType.Rela);
        Put(b, SectionField(b, rela, 56), 8, 8);
        Assert.False(ElfFile.Read(b).TryGetRelocationTable(rela, out _, out e));
        Assert.Contains("smaller than the 24-byte entry", e.Message, StringComparison.Ordinal);
        Assert.False(ElfFile.Read(b).TryGetRelocationTable(f.FindSymbolTable(), out _, out e));
        Assert.Equal(ElfErrorCode.BadSectionType, e.Code);
    }

    [Fact]
    public void Note_problems_are_reported()
    {
        var entry = ElfCorpus.Get("x86_64-ld-r-buildid");
        var b = entry.Bytes;
        var f = ElfFile.Read(b);
        int note = f.FindSection(".note.gnu.build-id");
        int at = (int)f.SectionHeaders[note].Offset;
        Put(b, at, 0xffffffff, 4); // namesz
        Assert.False(ElfFile.Read(b).TryGetNotes(note, out _, out var e));
        Assert.Equal(ElfErrorCode.BadNote, e.Code);
        Assert.Contains("name size 4294967295", e.Message, StringComparison.Ordinal);
        Assert.False(ElfFile.Read(b).TryGetGnuBuildId(out _, out e));
        Assert.NotNull(e);

        b = entry.Bytes;
        Put(b, at + 4, 1000, 4); // descsz
        Assert.False(ElfFile.Read(b).TryGetNotes(note, out _, out e));
        Assert.Contains("descriptor size 1000", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Errors_print_their_code_and_location()
    {
        var e = new ElfError(ElfErrorCode.BadNote, "broken") { Section = 3, Offset = 0x40 };
        Assert.Equal("ELF016: broken (section 3, offset 0x40)", e.ToString());
    }
}
