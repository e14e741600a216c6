using CsCheck;

namespace XenLivepatch.Elf.Tests;

/// <summary>
/// Random objects in every class and byte order: what the writer writes, the reader reads back as the same
/// model, and writing that model again gives the same bytes.
/// </summary>
public class WriterPropertyTests
{
    private static readonly (ElfClass Class, ElfEncoding Encoding, ElfMachine Machine)[] s_layouts =
    [
        (ElfClass.Elf64, ElfEncoding.LittleEndian, ElfMachine.X86_64),
        (ElfClass.Elf32, ElfEncoding.LittleEndian, ElfMachine.I386),
        (ElfClass.Elf64, ElfEncoding.BigEndian, ElfMachine.AArch64),
        (ElfClass.Elf32, ElfEncoding.BigEndian, ElfMachine.PowerPC),
    ];

    private static ElfObject RandomObject(Random rnd)
    {
        var (cls, enc, machine) = s_layouts[rnd.Next(s_layouts.Length)];
        bool is64 = cls == ElfClass.Elf64;
        ulong Word() => is64 ? (ulong)rnd.NextInt64() : (ulong)(uint)rnd.Next();
        var obj = new ElfObject(cls, enc, machine) { Flags = (uint)rnd.Next(), OsAbi = rnd.Next(2) == 0 ? ElfOsAbi.SystemV : ElfOsAbi.FreeBsd };
        string[] names = [".text", ".data", ".bss", ".rodata", ".note.x", ".livepatch.funcs", ".text.a", ""];
        for (int i = rnd.Next(1, 8); i > 0; i--)
        {
            var type = rnd.Next(4) switch { 0 => ElfSectionType.NoBits, 1 => ElfSectionType.Note, _ => ElfSectionType.ProgBits };
            var flags = (ElfSectionFlags)(rnd.Next(8) & 7);
            byte[] data = new byte[rnd.Next(0, 80)];
            rnd.NextBytes(data);
            var s = obj.AddSection(names[rnd.Next(names.Length)], type, flags, data, 1UL << rnd.Next(0, 7));
            s.Address = Word() & ~(s.Alignment - 1);
        }
        var sections = obj.Sections.ToList();
        var symtab = obj.GetOrAddSymbolTable();
        for (int i = rnd.Next(0, 12); i > 0; i--)
        {
            var sym = symtab.Add(new ElfObjectSymbol(rnd.Next(3) == 0 ? "" : "sym" + rnd.Next(6))
            {
                Value = Word(),
                Size = Word() & 0xffff,
                Type = (ElfSymbolType)rnd.Next(0, 7),
                Binding = (ElfSymbolBinding)rnd.Next(0, 3),
                Visibility = (ElfSymbolVisibility)rnd.Next(0, 4),
            });
            if (rnd.Next(4) == 0)
                sym.SpecialSection = rnd.Next(2) == 0 ? ElfSpecialSection.Abs : ElfSpecialSection.Common;
            else if (rnd.Next(3) != 0)
                sym.Section = sections[rnd.Next(sections.Count)];
        }
        foreach (var target in sections.Where(_ => rnd.Next(2) == 0))
        {
            var rel = obj.GetOrAddRelocations(target, rela: rnd.Next(3) != 0);
            for (int k = rnd.Next(0, 6); k > 0; k--)
            {
                var sym = symtab.Symbols.Count > 0 && rnd.Next(4) != 0 ? symtab.Symbols[rnd.Next(symtab.Symbols.Count)] : null;
                long addend = rel.IsRela ? (is64 ? rnd.NextInt64(long.MinValue, long.MaxValue) : rnd.Next(int.MinValue, int.MaxValue)) : 0;
                rel.Entries.Add(new ElfObjectRelocation(Word(), (uint)rnd.Next(0, is64 ? 1100 : 256), sym, addend));
            }
        }
        if (rnd.Next(3) == 0)
        {
            var member = sections[rnd.Next(sections.Count)];
            member.Flags |= ElfSectionFlags.Group;
            var signature = symtab.Add(new ElfObjectSymbol("group.sig") { Binding = ElfSymbolBinding.Global, Section = member });
            var group = new ElfGroupSection(".group", symtab) { GroupFlags = 1, Signature = signature };
            group.Members.Add(member);
            obj.Sections.Insert(0, group);
        }
        if (rnd.Next(2) == 0)
        {
            obj.SectionNames = new ElfStringTableSection(".shstrtab");
            obj.Sections.Insert(rnd.Next(obj.Sections.Count + 1), obj.SectionNames);
        }
        return obj;
    }

    private static string Describe(ElfObject o)
    {
        var sb = new System.Text.StringBuilder();
        sb.Append($"{o.Layout} {o.Machine} {o.Flags:x} {o.OsAbi}\n");
        // The section name table is the writer's (appended when the model has none).
        foreach (var s in o.Sections.Where(s => !ReferenceEquals(s, o.SectionNames)))
        {
            bool encoded = s is ElfSymbolTableSection or ElfRelocationSection or ElfStringTableSection or ElfGroupSection;
            sb.Append($"[{s.Name}] {s.Type} {s.Flags} a={s.Address:x} al={s.Alignment} size={(encoded ? "-" : s.Size)} link={s.Link?.Name} info={s.InfoSection?.Name}");
            if (s.HasFileData && !encoded)
                sb.Append(' ').Append(Convert.ToHexString(s.Data.Span));
            sb.Append('\n');
            if (s is ElfSymbolTableSection st)
            {
                foreach (var y in st.Symbols.Where(y => y.IsLocal).Concat(st.Symbols.Where(y => !y.IsLocal)))
                    sb.Append($"  sym {y.Name} {y.Value:x} {y.Size} {y.Type} {y.Binding} {y.Other} {y.Section?.Name ?? y.SpecialSection.ToString()}\n");
            }
            if (s is ElfRelocationSection r)
            {
                foreach (var e in r.Entries)
                    sb.Append($"  rel {e.Offset:x} {e.Type} {e.Symbol?.Name ?? "-"} {e.Addend}\n");
            }
            if (s is ElfGroupSection g)
                sb.Append($"  group {g.GroupFlags} {g.Signature?.Name} {string.Join(",", g.Members.Select(m => m.Name))}\n");
        }
        return sb.ToString();
    }

    [Fact]
    public void Written_objects_read_back_as_the_same_model_and_the_same_bytes()
    {
        Gen.Int[0, int.MaxValue].Sample(seed =>
        {
            var model = RandomObject(new Random(seed));
            byte[] bytes = model.Write();
            var file = ElfFile.Read(bytes);
            var back = ElfObject.FromFile(file);
            Assert.Equal(Describe(model), Describe(back));
            Assert.Equal(bytes, back.Write());
        }, iter: 3000, threads: 1);
    }
}
