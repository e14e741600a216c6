using XenLivepatch.TestKit;

namespace XenLivepatch.Elf.Tests;

/// <summary>
/// For every file of the corpus (gcc/ld/as output for x86-64, aarch64, i386, x32, big-endian aarch64 and
/// ILP32), what our reader finds equals what binutils' readelf prints: header, sections, symbols,
/// relocations and notes, field by field.
/// </summary>
public class ReadelfAgreementTests
{
    public static TheoryData<string> All => ElfCorpus.Names();

    [Theory, MemberData(nameof(All))]
    public void Header_matches_readelf(string name)
    {
        var entry = ElfCorpus.Get(name);
        var file = ElfFile.Read(entry.Bytes);
        var h = Readelf.Header(entry.Path);
        Assert.Equal(h["Class"], ReadelfNames.Class(file.Header.Class));
        Assert.Equal(h["Data"], ReadelfNames.Data(file.Header.Encoding));
        Assert.StartsWith(ReadelfNames.TypePrefix(file.Header.Type), h["Type"], StringComparison.Ordinal);
        Assert.Equal(h["Flags"].Split(',')[0], $"0x{file.Header.Flags:x}");
        string count = h["Number of section headers"];
        Assert.Equal(count.Contains('(', StringComparison.Ordinal) ? count.Split('(', ')')[1] : count, file.SectionCount.ToString(System.Globalization.CultureInfo.InvariantCulture));
        string shstrndx = h["Section header string table index"];
        Assert.Equal(shstrndx.Contains('(', StringComparison.Ordinal) ? shstrndx.Split('(', ')')[1] : shstrndx, file.SectionNameTableIndex.ToString(System.Globalization.CultureInfo.InvariantCulture));
        Assert.Equal(h["Number of program headers"], file.ProgramHeaders.Length.ToString(System.Globalization.CultureInfo.InvariantCulture));
    }

    [Theory, MemberData(nameof(All))]
    public void Sections_match_readelf(string name)
    {
        var entry = ElfCorpus.Get(name);
        var file = ElfFile.Read(entry.Bytes);
        var expected = Readelf.Sections(entry.Path);
        Assert.Equal(expected.Count, file.SectionCount);
        for (int i = 0; i < file.SectionCount; i++)
        {
            var s = file.SectionHeaders[i];
            var r = expected[i];
            var ours = new ReadelfSection(i, file.GetSectionName(i), ReadelfNames.SectionType(s.Type, file.Header.Machine),
                s.Address, s.Offset, s.Size, s.EntrySize, r.Flags, s.Link, s.Info, s.AddressAlign);
            Assert.Equal(r, ours);
            Assert.Equal(ReadelfNames.ParseFlags(r.Flags), s.Flags);
        }
    }

    [Theory, MemberData(nameof(All))]
    public void Symbols_match_readelf(string name)
    {
        var entry = ElfCorpus.Get(name);
        var file = ElfFile.Read(entry.Bytes);
        var expected = Readelf.Symbols(entry.Path);
        int tables = 0;
        for (int i = 1; i < file.SectionCount; i++)
        {
            if (file.SectionHeaders[i].Type is not (ElfSectionType.SymbolTable or ElfSectionType.DynamicSymbolTable))
                continue;
            tables++;
            var table = file.GetSymbolTable(i);
            var theirs = expected[file.GetSectionName(i)];
            Assert.Equal(theirs.Count, table.Count);
            for (int k = 0; k < table.Count; k++)
            {
                var sym = table[k];
                uint shndx = table.GetSectionIndex(k);
                string symName = table.GetName(sym);
                // readelf shows a section symbol by its section's name.
                if (symName.Length == 0 && sym.Type == ElfSymbolType.Section && !sym.HasReservedSectionIndex)
                    symName = file.GetSectionName((int)shndx);
                var ours = new ReadelfSymbol(k, sym.Value, sym.Size, ReadelfNames.SymbolType(sym.Type), ReadelfNames.Binding(sym.Binding),
                    ReadelfNames.Visibility(sym.Visibility), sym.HasReservedSectionIndex ? ReadelfNames.Ndx(shndx) : shndx.ToString(System.Globalization.CultureInfo.InvariantCulture), symName);
                Assert.Equal(theirs[k], ours);
            }
        }
        Assert.Equal(expected.Count, tables);
    }

    [Theory, MemberData(nameof(All))]
    public void Relocations_match_readelf(string name)
    {
        var entry = ElfCorpus.Get(name);
        var file = ElfFile.Read(entry.Bytes);
        var expected = Readelf.Relocations(entry.Path);
        var ours = new List<ReadelfRelocationSection>();
        for (int i = 1; i < file.SectionCount; i++)
        {
            var sh = file.SectionHeaders[i];
            if (sh.Type is not (ElfSectionType.Rel or ElfSectionType.Rela))
                continue;
            var table = file.GetRelocationTable(i);
            ElfSymbolTable? symbols = sh.Link != 0 ? file.GetSymbolTable((int)sh.Link) : null;
            var entries = new List<ReadelfRelocation>();
            for (int k = 0; k < table.Count; k++)
            {
                var r = table[k];
                ulong? value = null;
                string? symName = null;
                if (r.SymbolIndex != 0)
                {
                    var sym = symbols![(int)r.SymbolIndex];
                    value = sym.Value;
                    symName = symbols.GetName(sym);
                    if (symName.Length == 0 && sym.Type == ElfSymbolType.Section)
                        symName = file.GetSectionName((int)symbols.GetSectionIndex((int)r.SymbolIndex));
                }
                long? addend = table.IsRela ? r.Addend : null;
                string type = ReadelfNames.RelocationType(file.Header.Machine, r.Type) ?? "?";
                entries.Add(new ReadelfRelocation(r.Offset, r.Info, type, value, symName, addend));
            }
            ours.Add(new ReadelfRelocationSection(file.GetSectionName(i), sh.Offset, entries));
        }
        Assert.Equal(expected.Count, ours.Count);
        for (int i = 0; i < ours.Count; i++)
        {
            Assert.Equal(expected[i].Name, ours[i].Name);
            Assert.Equal(expected[i].FileOffset, ours[i].FileOffset);
            Assert.Equal(expected[i].Entries.Count, ours[i].Entries.Count);
            for (int k = 0; k < ours[i].Entries.Count; k++)
            {
                var theirs = expected[i].Entries[k];
                var mine = ours[i].Entries[k];
                // readelf knows relocation names for every machine; our tables cover x86-64, aarch64 (LP64) and i386.
                if (mine.Type == "?")
                    mine = mine with { Type = theirs.Type };
                // readelf prints no addend for REL entries against symbol 0 and a bare one for RELA entries.
                if (mine.SymbolName == null && mine.Addend == 0 && theirs.Addend == null)
                    mine = mine with { Addend = null };
                Assert.Equal(theirs, mine);
            }
        }
    }

    [Theory, MemberData(nameof(All))]
    public void Notes_match_readelf(string name)
    {
        var entry = ElfCorpus.Get(name);
        var file = ElfFile.Read(entry.Bytes);
        var expected = Readelf.Notes(entry.Path);
        var ours = new List<(string Section, ElfNote Note)>();
        for (int i = 1; i < file.SectionCount; i++)
        {
            if (file.SectionHeaders[i].Type == ElfSectionType.Note)
                ours.AddRange(file.GetNotes(i).Select(n => (file.GetSectionName(i), n)));
        }
        Assert.Equal(expected.Count, ours.Count);
        for (int i = 0; i < ours.Count; i++)
        {
            var (section, note) = ours[i];
            Assert.Equal(expected[i].Section, section);
            Assert.Equal(expected[i].Owner, note.Name);
            Assert.Equal(expected[i].DataSize, (uint)note.Descriptor.Length);
            if (note.Name == ElfNote.GnuOwner && ((ElfGnuNoteType)note.Type).GetSpecName() is { } spec)
                Assert.StartsWith(spec, expected[i].Description, StringComparison.Ordinal);
            if (note.IsGnuBuildId)
                Assert.Equal(expected[i].BuildId, Convert.ToHexStringLower(note.Descriptor.Span));
        }
        bool hasId = file.TryGetGnuBuildId(out var id, out var error);
        Assert.Null(error);
        Assert.Equal(expected.FirstOrDefault(n => n.BuildId != null)?.BuildId, hasId ? Convert.ToHexStringLower(id.Span) : null);
    }

    [Fact]
    public void Corpus_covers_every_class_and_byte_order()
    {
        var layouts = ElfCorpus.Entries.Select(e => ElfFile.Read(e.Bytes).Layout).Distinct().ToList();
        Assert.Contains(new ElfLayout(ElfClass.Elf64, ElfEncoding.LittleEndian), layouts);
        Assert.Contains(new ElfLayout(ElfClass.Elf32, ElfEncoding.LittleEndian), layouts);
        Assert.Contains(new ElfLayout(ElfClass.Elf64, ElfEncoding.BigEndian), layouts);
        Assert.Contains(new ElfLayout(ElfClass.Elf32, ElfEncoding.BigEndian), layouts);
        var types = ElfCorpus.Entries.Select(e => ElfFile.Read(e.Bytes).Header.Type).Distinct().ToList();
        Assert.Equal([ElfType.Relocatable, ElfType.Executable, ElfType.Shared], types.Order());
    }
}
