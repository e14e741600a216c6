using System.Buffers.Binary;
using System.Text;
using XenLivepatch.Elf;
using L64 = XenLivepatch.Elf.ElfSectionHeader.Layout64;

namespace XenLivepatch.Hypervisor.Tests;

/// <summary>One step of a differential run: what Xen's tool and our core are both asked to do.</summary>
public sealed record Step(string Op, string Name, string? File = null)
{
    public override string ToString() => File == null ? $"{Op} {Name}" : $"{Op} {Name} {File}";

    public static Step Parse(string line)
    {
        var p = line.Split(' ');
        return new Step(p[0], p[1], p.Length > 2 ? p[2] : null);
    }
}

/// <summary>
/// The differential corpus: payloads mutated from one hello-world payload built for a hypervisor, each
/// exercising one UPLOAD check (or an APPLY check), and the steps that run them. It leaves out the inputs
/// that crash Debian's Xen 4.17.7 (reference §7.5) and those whose outcome depends on how much memory the
/// hypervisor has. The mutations are the same for an x86-64 and an arm64 payload but for the few that name
/// a machine or a relocation type (the payload's machine picks them); <see cref="Arm64UploadCorpus"/> adds
/// arm64's own.
/// </summary>
public static class UploadCorpus
{
    public static (List<(string File, byte[] Data)> Files, List<Step> Steps) Generate(byte[] hello)
    {
        var files = new List<(string, byte[])>();
        var steps = new List<Step>();
        void Single(string name, byte[] data)
        {
            files.Add((name + ".livepatch", data));
            steps.Add(new Step("upload", name, name + ".livepatch"));
            steps.Add(new Step("unload", name));
        }
        byte[] Raw(Action<Editor> edit)
        {
            var e = new Editor((byte[])hello.Clone());
            edit(e);
            return e.Bytes;
        }
        byte[] Model(Action<ElfObject> edit)
        {
            var obj = ElfObject.FromFile(ElfFile.Read(hello));
            edit(obj);
            return obj.Write();
        }

        var h = new Editor(hello);
        string text = h.SectionNames().First(n => n.StartsWith(".text.", StringComparison.Ordinal));
        string replacement = text[".text.".Length..];
        bool arm64 = h.File.Header.Machine == ElfMachine.AArch64;

        Single("ok", hello);
        Single("osabi_freebsd", Raw(e => e.Bytes[ElfIdent.OsAbiIndex] = (byte)ElfOsAbi.FreeBsd));
        Single("e_version", Raw(e => e.U32(ElfHeader.Layout64.Version, 2)));
        Single("ei_version", Raw(e => e.Bytes[ElfIdent.VersionIndex] = 2));
        Single("abiversion", Raw(e => e.Bytes[ElfIdent.AbiVersionIndex] = 1));
        Single("osabi_gnu", Raw(e => e.Bytes[ElfIdent.OsAbiIndex] = (byte)ElfOsAbi.Gnu));
        Single("et_exec", Raw(e => e.U16(ElfHeader.Layout64.Type, (ushort)ElfType.Executable)));
        Single("phnum", Raw(e => e.U16(ElfHeader.Layout64.PhNum, 1)));
        Single("machine", Raw(e => e.U16(ElfHeader.Layout64.Machine, (ushort)(arm64 ? ElfMachine.X86_64 : ElfMachine.AArch64))));
        Single("class32", Raw(e => e.Bytes[ElfIdent.ClassIndex] = 1));
        Single("bigendian", Raw(e => e.Bytes[ElfIdent.DataIndex] = 2));
        Single("shstrndx0", Raw(e => e.U16(ElfHeader.Layout64.ShStrNdx, 0)));
        Single("shnum1024", Raw(e => e.U16(ElfHeader.Layout64.ShNum, 1024)));
        Single("shstrndx_past", Raw(e => e.U16(ElfHeader.Layout64.ShStrNdx, e.File.Header.SectionHeaderCount)));
        Single("shoff_past", Raw(e => e.U64(ElfHeader.Layout64.ShOff, (ulong)e.Bytes.Length)));
        Single("shentsize63", Raw(e => e.U16(ElfHeader.Layout64.ShEntSize, 63)));
        Single("shdr_past_end", Raw(e => e.U16(ElfHeader.Layout64.ShNum, (ushort)(e.File.Header.SectionHeaderCount + 1))));

        Single("sec_at_header", Raw(e => e.U64(e.Shdr(".livepatch.depends", L64.Offset), 8)));
        Single("nobits_at_header", Raw(e => e.U64(e.Shdr(".bss", L64.Offset), 0)));
        Single("sec_past_end", Raw(e => e.U64(e.Shdr(".livepatch.depends", L64.Size), 0x100000)));
        Single("align3", Raw(e => e.U64(e.Shdr(".modinfo", L64.AddrAlign), 3)));
        Single("addr_unaligned", Raw(e => { e.U64(e.Shdr(".modinfo", L64.AddrAlign), 4); e.U64(e.Shdr(".modinfo", L64.Addr), 2); }));
        Single("bss_3mib", Raw(e => e.U64(e.Shdr(".bss", L64.Size), 3 * 1024 * 1024)));
        Single("bss_1mib", Raw(e => e.U64(e.Shdr(".bss", L64.Size), 1024 * 1024)));
        Single("two_symtabs", Raw(e => e.U32(e.Shdr(".comment", L64.Type), (uint)ElfSectionType.SymbolTable)));
        Single("symtab_link_past", Raw(e => e.U32(e.Shdr(".symtab", L64.Link), 500)));
        Single("no_symtab", Raw(e => e.U32(e.Shdr(".symtab", L64.Type), (uint)ElfSectionType.ProgBits)));
        Single("symtab_entsize23", Raw(e => e.U64(e.Shdr(".symtab", L64.EntSize), 23)));
        Single("strtab_type", Raw(e => e.U32(e.Shdr(".strtab", L64.Type), (uint)ElfSectionType.ProgBits)));
        Single("strtab_last_byte", Raw(e => e.Bytes[e.Data(".strtab") + (int)e.Header(".strtab").Size - 1] = (byte)'x'));
        Single("shstrtab_first_byte", Raw(e => e.Bytes[e.Data(".shstrtab")] = (byte)'x'));
        Single("shname_past", Raw(e => e.U32(e.Shdr(".comment", L64.Name), 0x10000)));
        Single("stname_past", Raw(e => e.U32(e.Symbol(replacement), 0x10000)));

        Single("exec_write", Raw(e => e.U64(e.Shdr(text, L64.Flags), (ulong)(ElfSectionFlags.Alloc | ElfSectionFlags.ExecInstr | ElfSectionFlags.Write))));
        Single("common_symbol", Raw(e => e.U16(e.Symbol(replacement) + 6, (ushort)ElfSpecialSection.Common)));
        Single("reserved_shndx", Raw(e => e.U16(e.Symbol(replacement) + 6, 0xff10)));
        Single("shndx_past", Raw(e => e.U16(e.Symbol(replacement) + 6, 300)));
        Single("symbol_in_comment", Raw(e => e.U16(e.Symbol(replacement) + 6, (ushort)e.Index(".comment"))));
        Single("rela_link", Raw(e => e.U32(e.Shdr(".rela.livepatch.funcs", L64.Link), (uint)e.Index(".strtab"))));
        Single("rela_entsize23", Raw(e => e.U64(e.Shdr(".rela.livepatch.funcs", L64.EntSize), 23)));
        Single("rel_type", Raw(e => { e.U32(e.Shdr(".rela.livepatch.funcs", L64.Type), (uint)ElfSectionType.Rel); e.U64(e.Shdr(".rela.livepatch.funcs", L64.EntSize), 16); }));
        Single("rela_sym0", Raw(e => e.U32(e.Rela(".rela.livepatch.funcs", 0) + 12, 0)));
        Single("rela_sym_past", Raw(e => e.U32(e.Rela(".rela.livepatch.funcs", 0) + 12, 5000)));
        Single("rela_r32", Raw(e => e.U32(e.Rela(".rela.livepatch.funcs", 0) + 8, arm64 ? (uint)AArch64RelocationType.R_AARCH64_ABS32 : (uint)X86_64RelocationType.R_X86_64_32)));
        Single("rela_offset_past", Raw(e => e.U64(e.Rela(".rela.livepatch.funcs", 0), 100)));
        // The replacement's first relocation (x86: PC32 to its string; arm64: ADRP to its page) retargeted to an
        // absolute symbol out of its reach (2 GiB; 4 GiB from the arm64 payload area at 10 MiB).
        if (arm64)
            Single("adrp_overflow", Model(o => RetargetTextRelocation(o, "xen_extra_version_abs", 1UL << 40)));
        else
            Single("pc32_overflow", Model(o => RetargetTextRelocation(o, "xen_extra_version_abs", 0x1000)));
        Single("unknown_symbol", Model(o => AddExternalRelocation(o, "no_such_hypervisor_symbol")));
        Single("old_addr_by_relocation", Model(o => AddExternalRelocation(o, "xen_extra_version")));

        Single("no_xen_depends", Model(o => o.RemoveSection(o.FindSection(".livepatch.xen_depends")!)));
        Single("no_depends", Model(o => o.RemoveSection(o.FindSection(".livepatch.depends")!)));
        Single("depends_empty", Model(o => o.FindSection(".livepatch.depends")!.Data = Array.Empty<byte>()));
        Single("no_build_id", Model(o => o.RemoveSection(o.FindSection(".note.gnu.build-id")!)));
        Single("nothing_to_patch", Model(o => o.RemoveSection(o.FindSection(".livepatch.funcs")!)));
        Single("funcs_empty", Model(o => { o.RemoveSection(o.FindSection(".rela.livepatch.funcs")!); o.FindSection(".livepatch.funcs")!.Data = Array.Empty<byte>(); }));
        Single("hooks_load_empty", Model(o => o.AddSection(".livepatch.hooks.load", ElfSectionType.ProgBits, ElfSectionFlags.Alloc, [])));
        Single("funcs_size_105", Model(o => { o.RemoveSection(o.FindSection(".rela.livepatch.funcs")!); o.FindSection(".livepatch.funcs")!.Data = new byte[105]; }));
        Single("func_version1", Raw(e => e.Bytes[e.Data(".livepatch.funcs") + 32] = 1));
        Single("old_size0", Raw(e => e.U32(e.Data(".livepatch.funcs") + 28, 0)));
        Single("name_unresolvable", Raw(e => e.Bytes[e.Data(".rodata") + e.RodataString("xen_extra_version")] = (byte)'y'));
        Single("old_size4", Raw(e => e.U32(e.Data(".livepatch.funcs") + 28, 4)));
        Single("old_size3_unresolvable", Raw(e => { e.U32(e.Data(".livepatch.funcs") + 28, 3); e.Bytes[e.Data(".rodata") + e.RodataString("xen_extra_version")] = (byte)'y'; }));
        Single("version1_old_size0", Raw(e => { e.Bytes[e.Data(".livepatch.funcs") + 32] = 1; e.U32(e.Data(".livepatch.funcs") + 28, 0); }));
        Single("nop_32", Model(o => MakeNop(o, 32)));
        Single("nop_longer", Model(o => MakeNop(o, 13)));
        Single("nop_5", Model(o => MakeNop(o, 5)));
        Single("load_hooks_12", Model(o => o.AddSection(".livepatch.hooks.load", ElfSectionType.ProgBits, ElfSectionFlags.Alloc, new byte[12], 8)));
        Single("preapply_16", Model(o => o.AddSection(".livepatch.hooks.preapply", ElfSectionType.ProgBits, ElfSectionFlags.Alloc, new byte[16], 8)));
        Single("buildid_type4", Raw(e => e.U32(e.Data(".note.gnu.build-id") + 8, 4)));
        Single("buildid_12_bytes", Model(o => o.FindSection(".note.gnu.build-id")!.Data = new byte[12]));
        Single("depends_bad_owner", Raw(e => e.Bytes[e.Data(".livepatch.depends") + 12] = (byte)'X'));
        Single("bug_frames_12", Model(o => o.AddSection(".bug_frames.0", ElfSectionType.ProgBits, ElfSectionFlags.Alloc, new byte[12], 4)));
        Single("ex_table_12", Model(o => o.AddSection(".ex_table", ElfSectionType.ProgBits, ElfSectionFlags.Alloc, new byte[12], 4)));
        Single("altinstr_15", Model(o => o.AddSection(".altinstructions", ElfSectionType.ProgBits, ElfSectionFlags.Alloc, new byte[15])));
        Single("modinfo_no_nul", Raw(e => e.Bytes[e.Data(".modinfo") + (int)e.Header(".modinfo").Size - 1] = (byte)'!'));
        Single("dup_new_symbol", Model(o => AddDefinedSymbol(o, "xen_minor_version")));
        Single("xen_build_id_wrong", Raw(e => e.Bytes[e.Data(".livepatch.xen_depends") + 16] ^= 0xff));

        // APPLY: .livepatch.depends names another build-id (the hypervisor's is only in xen_depends).
        byte[] depends = Raw(e => e.Bytes[e.Data(".livepatch.depends") + 16] ^= 0xff);
        files.Add(("depends_other.livepatch", depends));
        steps.AddRange([new("upload", "depends_other", "depends_other.livepatch"), new("apply", "depends_other"), new("unload", "depends_other")]);

        // Names and build-ids already loaded; re-apply; unload while applied.
        steps.AddRange(
        [
            new("upload", "first", "ok.livepatch"),
            new("upload", "first", "ok.livepatch"),
            new("upload", "second", "ok.livepatch"),
            new("apply", "first"),
            new("unload", "first"),
            new("revert", "first"),
            new("apply", "first"),
            new("revert", "first"),
            new("unload", "first"),
        ]);
        // A payload with data cannot be applied again after a revert.
        byte[] withBss = Raw(e => e.U64(e.Shdr(".bss", L64.Size), 4));
        files.Add(("with_bss.livepatch", withBss));
        steps.AddRange([new("upload", "with_bss", "with_bss.livepatch"), new("apply", "with_bss"), new("revert", "with_bss"), new("apply", "with_bss"), new("unload", "with_bss")]);
        return (files, steps);
    }

    // new_addr 0 (no relocation), new_size n, old_size stays.
    internal static void MakeNop(ElfObject o, uint newSize)
    {
        ((ElfRelocationSection)o.FindSection(".rela.livepatch.funcs")!).Entries.RemoveAll(r => r.Offset == 8);
        var funcs = o.FindSection(".livepatch.funcs")!;
        var data = funcs.Data.ToArray();
        BinaryPrimitives.WriteUInt64LittleEndian(data.AsSpan(8), 0);
        BinaryPrimitives.WriteUInt32LittleEndian(data.AsSpan(24), newSize);
        funcs.Data = data;
    }

    // A 64-bit absolute relocation (R_X86_64_64, R_AARCH64_ABS64) writing old_addr from an undefined (hypervisor) symbol.
    private static void AddExternalRelocation(ElfObject o, string symbol)
    {
        var symtab = o.SymbolTable!;
        var s = symtab.Add(new ElfObjectSymbol(symbol) { Binding = ElfSymbolBinding.Global });
        uint abs64 = o.Machine == ElfMachine.AArch64 ? (uint)AArch64RelocationType.R_AARCH64_ABS64 : (uint)X86_64RelocationType.R_X86_64_64;
        ((ElfRelocationSection)o.FindSection(".rela.livepatch.funcs")!).Entries.Add(new ElfObjectRelocation(16, abs64, s, 0));
    }

    // The replacement's first relocation now targets an absolute symbol at value.
    private static void RetargetTextRelocation(ElfObject o, string name, ulong value)
    {
        var symtab = o.SymbolTable!;
        var s = symtab.Add(new ElfObjectSymbol(name) { Binding = ElfSymbolBinding.Local, SpecialSection = ElfSpecialSection.Abs, Value = value });
        var rela = o.Sections.OfType<ElfRelocationSection>().First(r => r.Target!.Name.StartsWith(".text.", StringComparison.Ordinal));
        var e = rela.Entries[0];
        rela.Entries[0] = e with { Symbol = s };
    }

    // A global symbol defined in the payload's text that is not its replacement: a new symbol.
    private static void AddDefinedSymbol(ElfObject o, string name)
    {
        var text = o.Sections.First(s => s.Name.StartsWith(".text.", StringComparison.Ordinal));
        o.SymbolTable!.Add(new ElfObjectSymbol(name) { Binding = ElfSymbolBinding.Global, Type = ElfSymbolType.Func, Section = text, Value = 1, Size = 1 });
    }

    /// <summary>Byte edits of an ELF64 payload.</summary>
    internal sealed class Editor(byte[] bytes)
    {
        public byte[] Bytes { get; } = bytes;
        public ElfFile File => ElfFile.Read(Bytes);
        public void U16(int at, ushort v) => BinaryPrimitives.WriteUInt16LittleEndian(Bytes.AsSpan(at), v);
        public void U32(int at, uint v) => BinaryPrimitives.WriteUInt32LittleEndian(Bytes.AsSpan(at), v);
        public void U64(int at, ulong v) => BinaryPrimitives.WriteUInt64LittleEndian(Bytes.AsSpan(at), v);
        public IEnumerable<string> SectionNames() { var f = File; return Enumerable.Range(1, f.SectionCount - 1).Select(f.GetSectionName); }
        public int Index(string name) { int i = File.FindSection(name); return i > 0 ? i : throw new KeyNotFoundException(name); }
        public ElfSectionHeader Header(string name) => File.SectionHeaders[Index(name)];
        public int Shdr(string name, int field) => (int)File.Header.SectionHeaderOffset + Index(name) * 64 + field;
        public int Data(string name) => (int)Header(name).Offset;
        public int Rela(string section, int entry) => Data(section) + entry * 24;
        public int Symbol(string name)
        {
            var f = File;
            int s = f.FindSymbolTable();
            var t = f.GetSymbolTable(s);
            for (int i = 1; i < t.Count; i++)
            {
                if (t.GetName(t[i]) == name)
                    return (int)f.SectionHeaders[s].Offset + i * 24;
            }
            throw new KeyNotFoundException(name);
        }
        public int RodataString(string s)
        {
            var data = File.GetSectionData(Index(".rodata")).Span;
            int at = data.IndexOf(Encoding.ASCII.GetBytes(s + "\0"));
            return at >= 0 ? at : throw new KeyNotFoundException(s);
        }
    }
}
