using System.Globalization;
using XenLivepatch.TestKit;

namespace XenLivepatch.Elf.Tests;

/// <summary>
/// Every relocatable object of the corpus, read into the editable model and written again, is the same
/// object to binutils: readelf sees the same sections, symbols, relocations and notes (offsets aside),
/// reports no warnings, and <c>ld -r</c> links the rewritten object into exactly what it makes of the original.
/// </summary>
public class WriterRoundTripTests
{
    public static TheoryData<string> Objects => ElfCorpus.Names(e => e.IsObject);

    private static string Rewrite(CorpusEntry entry, out ElfFile original, out ElfFile rewritten)
    {
        original = ElfFile.Read(entry.Bytes);
        byte[] bytes = ElfObject.FromFile(original).Write();
        rewritten = ElfFile.Read(bytes);
        string path = Path.Combine(Repo.TempDirectory("rewrite"), entry.Name + ".o");
        File.WriteAllBytes(path, bytes);
        return path;
    }

    // Section numbers move when an SHT_SYMTAB_SHNDX section is regenerated at the end; compare by name.
    private static string SectionRef(List<ReadelfSection> sections, uint index) =>
        index == 0 ? "-" : index < (uint)sections.Count ? sections[(int)index].Name : "#" + index.ToString(CultureInfo.InvariantCulture);

    [Theory, MemberData(nameof(Objects))]
    public void Readelf_sees_the_same_object(string name)
    {
        var entry = ElfCorpus.Get(name);
        string path = Rewrite(entry, out _, out _);
        Assert.Equal("", Readelf.Warnings(path));

        var before = Readelf.Sections(entry.Path).Where(s => s.Type != "SYMTAB SECTION INDICES").ToList();
        var after = Readelf.Sections(path).Where(s => s.Type != "SYMTAB SECTION INDICES").ToList();
        var allBefore = Readelf.Sections(entry.Path);
        var allAfter = Readelf.Sections(path);
        Assert.Equal(before.Count, after.Count);
        for (int i = 0; i < before.Count; i++)
        {
            var b = before[i];
            var a = after[i];
            // Offsets are the writer's; string tables may be laid out differently (gas merges name suffixes).
            bool strtab = b.Type == "STRTAB";
            Assert.Equal(
                (b.Name, b.Type, b.Address, strtab ? 0 : b.Size, b.EntrySize, b.Flags, SectionRef(allBefore, b.Link), b.Align),
                (a.Name, a.Type, a.Address, strtab ? 0 : a.Size, a.EntrySize, a.Flags, SectionRef(allAfter, a.Link), a.Align));
            bool infoIsSection = b.Flags.Contains('I', StringComparison.Ordinal);
            Assert.Equal(infoIsSection ? SectionRef(allBefore, b.Info) : b.Info.ToString(CultureInfo.InvariantCulture),
                         infoIsSection ? SectionRef(allAfter, a.Info) : a.Info.ToString(CultureInfo.InvariantCulture));
        }

        static IEnumerable<ReadelfSymbol> Named(IEnumerable<ReadelfSymbol> symbols, List<ReadelfSection> sections) =>
            symbols.Select(s => s with { Ndx = uint.TryParse(s.Ndx, out uint n) ? SectionRef(sections, n) : s.Ndx });
        var symBefore = Readelf.Symbols(entry.Path);
        var symAfter = Readelf.Symbols(path);
        Assert.Equal(symBefore.Keys.Order(), symAfter.Keys.Order());
        foreach (string table in symBefore.Keys)
            Assert.Equal(Named(symBefore[table], allBefore), Named(symAfter[table], allAfter));

        var relBefore = Readelf.Relocations(entry.Path);
        var relAfter = Readelf.Relocations(path);
        Assert.Equal(relBefore.Select(r => (r.Name, r.Entries.Count)), relAfter.Select(r => (r.Name, r.Entries.Count)));
        for (int i = 0; i < relBefore.Count; i++)
            Assert.Equal(relBefore[i].Entries, relAfter[i].Entries);

        Assert.Equal(Readelf.Notes(entry.Path), Readelf.Notes(path));
    }

    [Theory, MemberData(nameof(Objects))]
    public void Section_contents_survive_the_round_trip(string name)
    {
        var entry = ElfCorpus.Get(name);
        Rewrite(entry, out var original, out var rewritten);
        var before = Enumerable.Range(1, original.SectionCount - 1).Where(i => original.SectionHeaders[i].Type != ElfSectionType.SymbolTableIndex).ToList();
        var after = Enumerable.Range(1, rewritten.SectionCount - 1).Where(i => rewritten.SectionHeaders[i].Type != ElfSectionType.SymbolTableIndex).ToList();
        Assert.Equal(before.Count, after.Count);
        for (int k = 0; k < before.Count; k++)
        {
            var type = original.SectionHeaders[before[k]].Type;
            // Tables are re-encoded (and compared through readelf); everything else must be byte-identical.
            if (type is ElfSectionType.StringTable or ElfSectionType.SymbolTable or ElfSectionType.Rel or ElfSectionType.Rela or ElfSectionType.Group)
                continue;
            Assert.True(original.GetSectionData(before[k]).Span.SequenceEqual(rewritten.GetSectionData(after[k]).Span),
                $"contents of section {original.GetSectionName(before[k])} differ");
        }
    }

    [Theory, MemberData(nameof(Objects))]
    public void Ld_links_the_rewritten_object_into_the_same_output(string name)
    {
        var entry = ElfCorpus.Get(name);
        string path = Rewrite(entry, out var original, out _);
        string dir = Path.GetDirectoryName(path)!;
        string fromOriginal = Path.Combine(dir, "from-original.o");
        string fromRewritten = Path.Combine(dir, "from-rewritten.o");
        Linker.Relocatable(original.Header.Machine, original.Layout, fromOriginal, entry.Path).EnsureSuccess();
        var r = Linker.Relocatable(original.Header.Machine, original.Layout, fromRewritten, path).EnsureSuccess();
        Assert.Equal("", r.Stderr);
        Assert.Equal(File.ReadAllBytes(fromOriginal), File.ReadAllBytes(fromRewritten));
    }

    [Theory, MemberData(nameof(Objects))]
    public void Writing_what_was_written_gives_the_same_bytes(string name)
    {
        var entry = ElfCorpus.Get(name);
        Rewrite(entry, out _, out var rewritten);
        byte[] once = rewritten.Data.ToArray();
        byte[] twice = ElfObject.FromFile(rewritten).Write();
        Assert.Equal(once, twice);
    }
}
