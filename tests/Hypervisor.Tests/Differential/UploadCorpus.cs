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
/// that crash Debian's Xen 4.17.7 (reference §7.5; Xen 4.22 answers them, and its corpus has them) and those
/// whose outcome depends on how much memory the hypervisor has. The mutations are the same for an x86-64 and an arm64 payload but for the few that name
/// a machine or a relocation type (the payload's machine picks them); <see cref="Arm64UploadCorpus"/> adds
/// arm64's own.
/// </summary>
public static class UploadCorpus
{
    /// <summary>The corpus for <paramref name="profile"/>'s hypervisor (xen-4.17 leaves out what crashes it).</summary>
    public static (List<(string File, byte[] Data)> Files, List<Step> Steps) Generate(byte[] hello, LivepatchProfile profile)
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

        // Where Xen 4.17 and 4.22 differ (x86: the arm64 corpus is recorded from arm64 Xen 4.17 alone). Xen 4.20
        // checks .livepatch.xen_depends first, on the uploaded bytes.
        if (!arm64)
        {
            Single("order_xen_depends_then_symbol", Model(o => { FlipXenDepends(o); AddExternalRelocation(o, "no_such_hypervisor_symbol"); }));
            Single("order_no_xen_depends_exec_write", Model(o =>
            {
                o.RemoveSection(o.FindSection(".livepatch.xen_depends")!);
                o.Sections.First(x => x.Name == text).Flags |= ElfSectionFlags.Write;
            }));
            Single("xen_depends_type4", Raw(e => e.U32(e.Data(".livepatch.xen_depends") + 8, 4)));
            Single("xen_depends_12_bytes", Model(o => o.FindSection(".livepatch.xen_depends")!.Data = new byte[12]));
            // Xen 4.21+ (x86) checks .alt_call_sites and rewrites its calls; 4.17 ignores the section.
            Single("alt_call_sites_5", Model(o => o.AddSection(".alt_call_sites", ElfSectionType.ProgBits, ElfSectionFlags.Alloc, new byte[5], 4)));
            Single("alt_call_site_outside", Model(o => o.AddSection(".alt_call_sites", ElfSectionType.ProgBits, ElfSectionFlags.Alloc, new byte[4], 4)));
            Single("alt_call_not_call", Model(o => AddAltCall(o, text, callSite: false)));
            Single("alt_call_ok", Model(o => AddAltCall(o, text, callSite: true)));
            Single("altinstr_ok", Model(o => AddAlternative(o, text, feature: 0, origLen: 1, replLen: 1, padLen: 0)));
            // A symbol in an empty allocated section that a relocation uses: placed or not (livepatch_elf_ignore_section).
            Single("empty_section_relocated", Model(AddEmptySectionReference));
            if (profile.Name != LivepatchProfile.Xen417.Name)
            {
                // Each of these crashes Xen 4.17.7: it reads a section it never loaded, or BUG()s in apply_alternatives.
                Single("xen_depends_not_alloc", Raw(e => e.U64(e.Shdr(".livepatch.xen_depends", L64.Flags), 0)));
                Single("altinstr_repl_longer", Model(o => AddAlternative(o, text, feature: 0, origLen: 1, replLen: 2, padLen: 0)));
                Single("altinstr_256", Model(o => AddAlternative(o, text, feature: 0, origLen: 1, replLen: 1, padLen: 255)));
                int features = profile.X86FeatureWords!.Value * 32;
                Single("altinstr_feature_last", Model(o => AddAlternative(o, text, feature: features - 1, origLen: 1, replLen: 1, padLen: 0)));
                Single("altinstr_feature_past", Model(o => AddAlternative(o, text, feature: features, origLen: 1, replLen: 1, padLen: 0)));
                Single("altinstr_feature_past_not", Model(o => AddAlternative(o, text, feature: 0x8000 | features, origLen: 1, replLen: 1, padLen: 0)));
            }
        }

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

    private static void FlipXenDepends(ElfObject o)
    {
        var s = o.FindSection(".livepatch.xen_depends")!;
        byte[] data = s.Data.ToArray();
        data[16] ^= 0xff;
        s.Data = data;
    }

    // An .alt_call_sites entry for a site in the replacement's text: a "call *ptr(%rip)" appended to it, through a
    // pointer (in .rodata.altcall) to the replacement itself; or, with callSite false, the function's first bytes.
    private static void AddAltCall(ElfObject o, string textName, bool callSite)
    {
        var text = o.FindSection(textName)!;
        var textSymbol = o.GetOrAddSectionSymbol(text);
        ulong site = 0;
        if (callSite)
        {
            var pointer = o.AddSection(".rodata.altcall", ElfSectionType.ProgBits, ElfSectionFlags.Alloc, new byte[8], 8);
            var replacement = o.SymbolTable!.Symbols.First(x => x.Section == text && x.Type == ElfSymbolType.Func);
            o.GetOrAddRelocations(pointer, rela: true).Entries.Add(new ElfObjectRelocation(0, (uint)X86_64RelocationType.R_X86_64_64, replacement, 0));
            site = ((ulong)text.Data.Length + 15) & ~15ul;
            byte[] code = new byte[site + 6];
            text.Data.Span.CopyTo(code);
            code[site] = 0xff;
            code[site + 1] = 0x15;
            text.Data = code;
            o.GetOrAddRelocations(text, rela: true).Entries.Add(
                new ElfObjectRelocation(site + 2, (uint)X86_64RelocationType.R_X86_64_PC32, o.GetOrAddSectionSymbol(pointer), -4));
        }
        var sites = o.AddSection(".alt_call_sites", ElfSectionType.ProgBits, ElfSectionFlags.Alloc, new byte[4], 4);
        o.GetOrAddRelocations(sites, rela: true).Entries.Add(new ElfObjectRelocation(0, (uint)X86_64RelocationType.R_X86_64_PC32, textSymbol, (long)site));
    }

    // One alt_instr (x86: orig and repl as rel32 from their fields, cpuid u16, orig_len, repl_len, pad_len, priv) for
    // the replacement's first origLen bytes, with a replacement of replLen NOPs in .altinstr_replacement.
    private static void AddAlternative(ElfObject o, string textName, int feature, int origLen, int replLen, int padLen)
    {
        var text = o.FindSection(textName)!;
        var repl = o.AddSection(".altinstr_replacement", ElfSectionType.ProgBits, ElfSectionFlags.Alloc | ElfSectionFlags.ExecInstr,
            Enumerable.Repeat((byte)0x90, replLen).ToArray());
        byte[] entry = new byte[14];
        BinaryPrimitives.WriteUInt16LittleEndian(entry.AsSpan(8), (ushort)feature);
        (entry[10], entry[11], entry[12]) = ((byte)origLen, (byte)replLen, (byte)padLen);
        var alt = o.AddSection(".altinstructions", ElfSectionType.ProgBits, ElfSectionFlags.Alloc, entry);
        var rela = o.GetOrAddRelocations(alt, rela: true);
        rela.Entries.Add(new ElfObjectRelocation(0, (uint)X86_64RelocationType.R_X86_64_PC32, o.GetOrAddSectionSymbol(text), 0));
        rela.Entries.Add(new ElfObjectRelocation(4, (uint)X86_64RelocationType.R_X86_64_PC32, o.GetOrAddSectionSymbol(repl), 0));
    }

    // An empty .bss.empty with a symbol, which an 8-byte pointer in .rodata.ref points at.
    private static void AddEmptySectionReference(ElfObject o)
    {
        var empty = o.AddSection(".bss.empty", ElfSectionType.NoBits, ElfSectionFlags.Alloc | ElfSectionFlags.Write, [], 8);
        var mark = o.SymbolTable!.Add(new ElfObjectSymbol("empty_mark") { Binding = ElfSymbolBinding.Local, Type = ElfSymbolType.Object, Section = empty });
        var reference = o.AddSection(".rodata.ref", ElfSectionType.ProgBits, ElfSectionFlags.Alloc, new byte[8], 8);
        o.GetOrAddRelocations(reference, rela: true).Entries.Add(new ElfObjectRelocation(0, (uint)X86_64RelocationType.R_X86_64_64, mark, 0));
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
