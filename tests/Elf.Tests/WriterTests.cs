using System.Buffers.Binary;
using XenLivepatch.TestKit;

namespace XenLivepatch.Elf.Tests;

/// <summary>Objects built from scratch with the writer are accepted by binutils, linked, and run.</summary>
public class WriterTests
{
    private static string WriteTo(ElfObject obj, string dir, string name)
    {
        string path = Path.Combine(dir, name);
        File.WriteAllBytes(path, obj.Write());
        return path;
    }

    [Fact]
    public void An_x86_64_object_built_from_scratch_links_and_runs()
    {
        string dir = Repo.TempDirectory("scratch-x86");
        var obj = new ElfObject(ElfClass.Elf64, ElfEncoding.LittleEndian, ElfMachine.X86_64);
        byte[] code =
        [
            0xE8, 0, 0, 0, 0,             // call compute           (R_X86_64_PLT32 compute - 4)
            0x03, 0x05, 0, 0, 0, 0,       // add eax, [rip + value] (R_X86_64_PC32 value - 4)
            0x89, 0xC7,                   // mov edi, eax
            0xB8, 0x3C, 0, 0, 0,          // mov eax, 60 (exit)
            0x0F, 0x05,                   // syscall
        ];
        var text = obj.AddSection(".text", ElfSectionType.ProgBits, ElfSectionFlags.Alloc | ElfSectionFlags.ExecInstr, code, 16);
        var data = obj.AddSection(".data", ElfSectionType.ProgBits, ElfSectionFlags.Alloc | ElfSectionFlags.Write, BitConverter.GetBytes(2), 4);
        obj.AddSection(".note.GNU-stack", ElfSectionType.ProgBits, ElfSectionFlags.None, []);
        var symtab = obj.GetOrAddSymbolTable();
        symtab.Add(new ElfObjectSymbol("_start") { Type = ElfSymbolType.Func, Binding = ElfSymbolBinding.Global, Section = text, Size = (ulong)code.Length });
        var compute = symtab.Add(new ElfObjectSymbol("compute") { Binding = ElfSymbolBinding.Global });
        var value = symtab.Add(new ElfObjectSymbol("value") { Type = ElfSymbolType.Object, Section = data, Size = 4 });
        var rela = obj.GetOrAddRelocations(text);
        rela.Entries.Add(new ElfObjectRelocation(1, (uint)X86_64RelocationType.R_X86_64_PLT32, compute, -4));
        rela.Entries.Add(new ElfObjectRelocation(7, (uint)X86_64RelocationType.R_X86_64_PC32, value, -4));
        string scratch = WriteTo(obj, dir, "scratch.o");
        Assert.Equal("", Readelf.Warnings(scratch));

        string other = Tool.CompileC("int compute(void) { return 40; }", dir, "compute", "gcc", "-O2");
        string prog = Path.Combine(dir, "prog");
        var link = Tool.Run("ld", "-o", prog, scratch, other).EnsureSuccess();
        Assert.Equal("", link.Stderr);
        Assert.Equal(42, Tool.Run(prog).ExitCode);
    }

    [Theory]
    [InlineData(ElfEncoding.LittleEndian)]
    [InlineData(ElfEncoding.BigEndian)]
    public void An_aarch64_object_built_from_scratch_is_relocated_by_ld_as_intended(ElfEncoding encoding)
    {
        string dir = Repo.TempDirectory("scratch-a64");
        var obj = new ElfObject(ElfClass.Elf64, encoding, ElfMachine.AArch64);
        uint[] words =
        [
            0x94000000, // bl compute                  (R_AARCH64_CALL26)
            0x90000001, // adrp x1, value              (R_AARCH64_ADR_PREL_PG_HI21)
            0x91000021, // add x1, x1, :lo12:value     (R_AARCH64_ADD_ABS_LO12_NC)
            0xb9400021, // ldr w1, [x1]
            0x0b010000, // add w0, w0, w1
            0xd65f03c0, // ret
        ];
        var code = new byte[words.Length * 4];
        for (int i = 0; i < words.Length; i++)
            BinaryPrimitives.WriteUInt32LittleEndian(code.AsSpan(i * 4), words[i]); // A64 instructions are little endian in both byte orders.
        var text = obj.AddSection(".text", ElfSectionType.ProgBits, ElfSectionFlags.Alloc | ElfSectionFlags.ExecInstr, code, 4);
        var data = obj.AddSection(".data", ElfSectionType.ProgBits, ElfSectionFlags.Alloc | ElfSectionFlags.Write, new byte[4096 + 8], 8);
        obj.AddSection(".note.GNU-stack", ElfSectionType.ProgBits, ElfSectionFlags.None, []);
        var symtab = obj.GetOrAddSymbolTable();
        symtab.Add(new ElfObjectSymbol("_start") { Type = ElfSymbolType.Func, Binding = ElfSymbolBinding.Global, Section = text, Size = (ulong)code.Length });
        var compute = symtab.Add(new ElfObjectSymbol("compute") { Binding = ElfSymbolBinding.Global });
        var value = symtab.Add(new ElfObjectSymbol("value") { Type = ElfSymbolType.Object, Section = data, Value = 4096 + 4, Size = 4 });
        var rela = obj.GetOrAddRelocations(text);
        rela.Entries.Add(new ElfObjectRelocation(0, (uint)AArch64RelocationType.R_AARCH64_CALL26, compute, 0));
        rela.Entries.Add(new ElfObjectRelocation(4, (uint)AArch64RelocationType.R_AARCH64_ADR_PREL_PG_HI21, value, 0));
        rela.Entries.Add(new ElfObjectRelocation(8, (uint)AArch64RelocationType.R_AARCH64_ADD_ABS_LO12_NC, value, 0));
        string scratch = WriteTo(obj, dir, "scratch.o");
        Assert.Equal("", Readelf.Warnings(scratch));

        string[] endian = encoding == ElfEncoding.BigEndian ? ["-mbig-endian"] : [];
        string other = Tool.CompileC("int compute(void) { return 40; }", dir, "compute", "aarch64-linux-gnu-gcc", ["-O2", .. endian]);
        string prog = Path.Combine(dir, "prog");
        var (ld, args) = Linker.For(ElfMachine.AArch64, obj.Layout);
        Tool.Run(ld, [.. args, "-e", "_start", "-Ttext=0x400000", "-o", prog, scratch, other]).EnsureSuccess();

        var exe = ElfFile.Load(prog);
        var symbols = exe.GetSymbolTable(exe.FindSymbolTable());
        ulong Address(string n) => Enumerable.Range(0, symbols.Count).Select(i => symbols[i]).First(s => symbols.GetName(s) == n).Value;
        ulong start = Address("_start");
        int textIndex = exe.FindSection(".text");
        var textHeader = exe.SectionHeaders[textIndex];
        var bytes = exe.GetSectionData(textIndex).Span[(int)(start - textHeader.Address)..];
        uint bl = BinaryPrimitives.ReadUInt32LittleEndian(bytes);
        uint adrp = BinaryPrimitives.ReadUInt32LittleEndian(bytes[4..]);
        uint add = BinaryPrimitives.ReadUInt32LittleEndian(bytes[8..]);
        long blOffset = ((long)(bl & 0x3ffffff) << 38) >> 36;
        Assert.Equal(Address("compute"), start + (ulong)blOffset);
        long pageDelta = (((long)((((adrp >> 5) & 0x7ffff) << 2) | ((adrp >> 29) & 3))) << 43) >> 31;
        ulong target = (ulong)((long)(start + 4 & ~0xfffUL) + pageDelta) + ((add >> 10) & 0xfff);
        Assert.Equal(Address("value"), target);
    }

    [Fact]
    public void An_i386_object_with_rel_relocations_links()
    {
        string dir = Repo.TempDirectory("scratch-i386");
        var obj = new ElfObject(ElfClass.Elf32, ElfEncoding.LittleEndian, ElfMachine.I386);
        byte[] code = [0xE8, 0xFC, 0xFF, 0xFF, 0xFF, 0xA1, 0, 0, 0, 0, 0xC3]; // call compute (addend -4 in place); mov eax, [value]; ret
        var text = obj.AddSection(".text", ElfSectionType.ProgBits, ElfSectionFlags.Alloc | ElfSectionFlags.ExecInstr, code, 16);
        var data = obj.AddSection(".data", ElfSectionType.ProgBits, ElfSectionFlags.Alloc | ElfSectionFlags.Write, BitConverter.GetBytes(7), 4);
        obj.AddSection(".note.GNU-stack", ElfSectionType.ProgBits, ElfSectionFlags.None, []);
        var symtab = obj.GetOrAddSymbolTable();
        symtab.Add(new ElfObjectSymbol("_start") { Type = ElfSymbolType.Func, Binding = ElfSymbolBinding.Global, Section = text, Size = (ulong)code.Length });
        var compute = symtab.Add(new ElfObjectSymbol("compute") { Binding = ElfSymbolBinding.Global });
        var value = symtab.Add(new ElfObjectSymbol("value") { Type = ElfSymbolType.Object, Section = data, Size = 4 });
        var rel = obj.GetOrAddRelocations(text);
        Assert.False(rel.IsRela);
        rel.Entries.Add(new ElfObjectRelocation(1, (uint)I386RelocationType.R_386_PC32, compute, 0));
        rel.Entries.Add(new ElfObjectRelocation(6, (uint)I386RelocationType.R_386_32, value, 0));
        string scratch = WriteTo(obj, dir, "scratch.o");
        Assert.Equal("", Readelf.Warnings(scratch));
        string other = Tool.CompileC("int compute(void) { return 40; }", dir, "compute", "gcc", "-m32", "-O2");
        string prog = Path.Combine(dir, "prog");
        Tool.Run("ld", "-m", "elf_i386", "-Ttext=0x8048000", "-o", prog, scratch, other).EnsureSuccess();

        var exe = ElfFile.Load(prog);
        var symbols = exe.GetSymbolTable(exe.FindSymbolTable());
        ulong Address(string n) => Enumerable.Range(0, symbols.Count).Select(i => symbols[i]).First(s => symbols.GetName(s) == n).Value;
        int t = exe.FindSection(".text");
        var bytes = exe.GetSectionData(t).Span[(int)(Address("_start") - exe.SectionHeaders[t].Address)..];
        Assert.Equal(Address("compute"), (ulong)((long)Address("_start") + 5 + BinaryPrimitives.ReadInt32LittleEndian(bytes[1..])));
        Assert.Equal(Address("value"), BinaryPrimitives.ReadUInt32LittleEndian(bytes[6..]));
    }

    [Fact]
    public void More_than_65280_sections_use_extended_numbering()
    {
        string dir = Repo.TempDirectory("scratch-many");
        var obj = new ElfObject(ElfClass.Elf64, ElfEncoding.LittleEndian, ElfMachine.X86_64);
        var symtab = obj.GetOrAddSymbolTable();
        const int n = 70000;
        for (int i = 0; i < n; i++)
        {
            var s = obj.AddSection($".text.f{i}", ElfSectionType.ProgBits, ElfSectionFlags.Alloc | ElfSectionFlags.ExecInstr, [0xC3]);
            symtab.Add(new ElfObjectSymbol($"f{i}") { Type = ElfSymbolType.Func, Binding = ElfSymbolBinding.Global, Section = s, Size = 1 });
        }
        string path = WriteTo(obj, dir, "many.o");
        Assert.Equal("", Readelf.Warnings(path));
        var file = ElfFile.Load(path);
        Assert.Equal(0, file.Header.SectionHeaderCount);
        Assert.Equal((ushort)ElfSpecialSection.XIndex, file.Header.SectionNameTableIndex);
        var table = file.GetSymbolTable(file.FindSymbolTable());
        for (int k = 1; k < table.Count; k++)
        {
            var sym = table[k];
            Assert.Equal("f" + (k - 1), table.GetName(sym));
            Assert.Equal(".text.f" + (k - 1), file.GetSectionName((int)table.GetSectionIndex(k)));
        }
        var syms = Readelf.Symbols(path)[".symtab"];
        Assert.Equal("70002", syms[^1].Ndx); // .symtab and .strtab come first
        Linker.Relocatable(ElfMachine.X86_64, obj.Layout, Path.Combine(dir, "linked.o"), path).EnsureSuccess();
    }

    [Fact]
    public void Invalid_models_are_refused_with_every_problem_named()
    {
        var obj = new ElfObject(ElfClass.Elf32, ElfEncoding.BigEndian, ElfMachine.PowerPC);
        var text = obj.AddSection(".text", ElfSectionType.ProgBits, ElfSectionFlags.Alloc, [1, 2, 3], alignment: 3);
        var orphan = new ElfObjectSection(".orphan", ElfSectionType.ProgBits);
        var symtab = obj.GetOrAddSymbolTable();
        symtab.Add(new ElfObjectSymbol("lost") { Section = orphan });
        var stranger = new ElfObjectSymbol("stranger");
        obj.GetOrAddRelocations(text).Entries.Add(new ElfObjectRelocation(0, 300, stranger, 0));
        var e = Assert.Throws<InvalidOperationException>(() => obj.Write());
        Assert.Contains("section '.text': alignment 3 is not a power of two", e.Message, StringComparison.Ordinal);
        Assert.Contains("symbol 'lost' is defined in section '.orphan', which is not in the object", e.Message, StringComparison.Ordinal);
        Assert.Contains("refers to symbol 'stranger', which is not in '.symtab'", e.Message, StringComparison.Ordinal);
        Assert.Contains("does not fit in ELF32 (8-bit type", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Build_id_notes_are_encoded_as_ld_writes_them()
    {
        var entry = ElfCorpus.Get("x86_64-ld-r-buildid");
        var file = ElfFile.Read(entry.Bytes);
        int index = file.FindSection(".note.gnu.build-id");
        Assert.True(file.TryGetGnuBuildId(out var id, out _));
        byte[] ours = ElfNote.EncodeGnuBuildId(id.Span, ElfEncoding.LittleEndian);
        Assert.Equal(file.GetSectionData(index).ToArray(), ours);
    }
}
