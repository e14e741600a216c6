using System.Buffers.Binary;
using XenLivepatch.Elf;
using A = XenLivepatch.Elf.AArch64RelocationType;

namespace XenLivepatch.Hypervisor.Tests;

/// <summary>
/// The arm64 differential corpus: <see cref="UploadCorpus"/>'s mutations of an arm64 hello-world payload, then
/// what only arm64 has (xen/arch/arm/arm64/livepatch.c, arch/arm/livepatch.c): every relocation type the loader
/// takes, within range and beyond it where it checks, those it refuses, misaligned targets, relocations at the
/// end of their section; the patch rules (old_size of at least one instruction, NOPs of whole instructions
/// within 31 bytes, the B's +-128 MiB from old_addr to new_addr, a replacement off an instruction boundary);
/// and the payload area (<c>LIVEPATCH_VMAP_SIZE</c> is 2 MiB, but 4.17.3's allocator reaches 128 MiB: filled
/// with 2 MiB payloads until Xen says -ENOMEM). Payloads whose patch cannot be encoded are applied and reverted
/// but never run.
/// </summary>
public static class Arm64UploadCorpus
{
    // Instructions the relocations patch (immediates zero): each type's own kind of instruction.
    private const uint Movz = 0xd2800000, Adr = 0x10000000, Adrp = 0x90000000, AddImm = 0x91000000,
        Ldrb = 0x39400000, Ldrh = 0x79400000, LdrW = 0xb9400000, LdrX = 0xf9400000, LdrQ = 0x3dc00000,
        Tbz = 0x36000000, BCond = 0x54000000, B = 0x14000000, Bl = 0x94000000;

    /// <summary>
    /// The corpus from <paramref name="hello"/>, an arm64 hello-world payload replacing <c>xen_extra_version</c>,
    /// which is at <paramref name="oldAddress"/> in the hypervisor.
    /// </summary>
    public static (List<(string File, byte[] Data)> Files, List<Step> Steps) Generate(byte[] hello, ulong oldAddress)
    {
        var (files, steps) = UploadCorpus.Generate(hello, LivepatchProfile.Xen417);
        void Add(string name, byte[] data, params string[] ops)
        {
            files.Add((name + ".livepatch", data));
            steps.Add(new Step("upload", name, name + ".livepatch"));
            foreach (string op in ops)
                steps.Add(new Step(op, name));
            steps.Add(new Step("unload", name));
        }
        byte[] Model(Action<ElfObject> edit)
        {
            var obj = ElfObject.FromFile(ElfFile.Read(hello));
            edit(obj);
            return obj.Write();
        }
        byte[] Funcs(int field, uint value)
        {
            var copy = (byte[])hello.Clone();
            var f = ElfFile.Read(copy);
            int at = (int)f.SectionHeaders[f.FindSection(".livepatch.funcs")].Offset + field;
            BinaryPrimitives.WriteUInt32LittleEndian(copy.AsSpan(at), value);
            return copy;
        }

        // Relocations: (name, type, instruction, target, addend) with the target in the payload (Local: that many
        // bytes after the place) or absolute (Abs: that value).
        const ulong Far = 1UL << 40;
        var cases = new List<(string Name, A Type, uint Insn, Target To)>
        {
            ("abs64", A.R_AARCH64_ABS64, 0, Abs(Far)),
            ("abs32", A.R_AARCH64_ABS32, 0, Abs(0xffffffff)),
            ("abs32_over", A.R_AARCH64_ABS32, 0, Abs(0x100000000)),
            ("abs32_negative", A.R_AARCH64_ABS32, 0, Abs(unchecked((ulong)int.MinValue))),
            ("abs16", A.R_AARCH64_ABS16, 0, Abs(0xffff)),
            ("abs16_over", A.R_AARCH64_ABS16, 0, Abs(0x10000)),
            ("abs16_negative", A.R_AARCH64_ABS16, 0, Abs(unchecked((ulong)-0x8000L))),
            ("abs16_negative_over", A.R_AARCH64_ABS16, 0, Abs(unchecked((ulong)-0x8001L))),
            ("prel64", A.R_AARCH64_PREL64, 0, Abs(Far)),
            ("prel32", A.R_AARCH64_PREL32, 0, Local(16)),
            ("prel32_over", A.R_AARCH64_PREL32, 0, Abs(Far)),
            ("prel16", A.R_AARCH64_PREL16, 0, Local(16)),
            ("prel16_over", A.R_AARCH64_PREL16, 0, Abs(Far)),
            ("movw_uabs_g0", A.R_AARCH64_MOVW_UABS_G0, Movz, Abs(0xffff)),
            ("movw_uabs_g0_over", A.R_AARCH64_MOVW_UABS_G0, Movz, Abs(0x10000)),
            ("movw_uabs_g0_nc", A.R_AARCH64_MOVW_UABS_G0_NC, Movz, Abs(0x12345)),
            ("movw_uabs_g1", A.R_AARCH64_MOVW_UABS_G1, Movz, Abs(0xffffffff)),
            ("movw_uabs_g1_over", A.R_AARCH64_MOVW_UABS_G1, Movz, Abs(0x100000000)),
            ("movw_uabs_g1_nc", A.R_AARCH64_MOVW_UABS_G1_NC, Movz, Abs(Far)),
            ("movw_uabs_g2", A.R_AARCH64_MOVW_UABS_G2, Movz, Abs(0xffffffffffff)),
            ("movw_uabs_g2_over", A.R_AARCH64_MOVW_UABS_G2, Movz, Abs(1UL << 48)),
            ("movw_uabs_g2_nc", A.R_AARCH64_MOVW_UABS_G2_NC, Movz, Abs(1UL << 60)),
            ("movw_uabs_g3", A.R_AARCH64_MOVW_UABS_G3, Movz, Abs(ulong.MaxValue)),
            ("movw_sabs_g0_negative", A.R_AARCH64_MOVW_SABS_G0, Movz, Abs(unchecked((ulong)-0x10000L))),
            ("movw_sabs_g0_negative_over", A.R_AARCH64_MOVW_SABS_G0, Movz, Abs(unchecked((ulong)-0x10001L))),
            ("movw_sabs_g0_over", A.R_AARCH64_MOVW_SABS_G0, Movz, Abs(0x10000)),
            ("movw_sabs_g1", A.R_AARCH64_MOVW_SABS_G1, Movz, Abs(unchecked((ulong)-(1L << 32)))),
            ("movw_sabs_g1_over", A.R_AARCH64_MOVW_SABS_G1, Movz, Abs(1UL << 32)),
            ("movw_sabs_g2", A.R_AARCH64_MOVW_SABS_G2, Movz, Abs(0xffffffffffff)),
            ("movw_sabs_g2_over", A.R_AARCH64_MOVW_SABS_G2, Movz, Abs(unchecked((ulong)-(1L << 48) - 1))),
            ("movw_prel_g0", A.R_AARCH64_MOVW_PREL_G0, Movz, Local(16)),
            ("movw_prel_g0_over", A.R_AARCH64_MOVW_PREL_G0, Movz, Abs(Far)),
            ("movw_prel_g0_nc", A.R_AARCH64_MOVW_PREL_G0_NC, Movz, Abs(Far)),
            ("movw_prel_g1", A.R_AARCH64_MOVW_PREL_G1, Movz, Local(16)),
            ("movw_prel_g1_over", A.R_AARCH64_MOVW_PREL_G1, Movz, Abs(Far << 8)),
            ("movw_prel_g1_nc", A.R_AARCH64_MOVW_PREL_G1_NC, Movz, Abs(Far << 8)),
            ("movw_prel_g2", A.R_AARCH64_MOVW_PREL_G2, Movz, Abs(Far)),
            ("movw_prel_g2_over", A.R_AARCH64_MOVW_PREL_G2, Movz, Abs(1UL << 62)),
            ("movw_prel_g2_nc", A.R_AARCH64_MOVW_PREL_G2_NC, Movz, Abs(1UL << 62)),
            ("movw_prel_g3", A.R_AARCH64_MOVW_PREL_G3, Movz, Abs(1UL << 62)),
            ("adr_prel_lo21", A.R_AARCH64_ADR_PREL_LO21, Adr, Local(16)),
            ("adr_prel_lo21_over", A.R_AARCH64_ADR_PREL_LO21, Adr, Abs(Far)),
            ("adrp", A.R_AARCH64_ADR_PREL_PG_HI21, Adrp, Abs(0x1000)),
            ("adrp_over", A.R_AARCH64_ADR_PREL_PG_HI21, Adrp, Abs(Far)),
            ("adrp_nc", A.R_AARCH64_ADR_PREL_PG_HI21_NC, Adrp, Abs(Far)),
            ("add_abs_lo12_nc", A.R_AARCH64_ADD_ABS_LO12_NC, AddImm, Abs(Far + 0x123)),
            ("ldst8_abs_lo12_nc", A.R_AARCH64_LDST8_ABS_LO12_NC, Ldrb, Abs(Far + 0x123)),
            // Misaligned for the access: the loader drops the low bits and says nothing.
            ("ldst16_abs_lo12_nc_misaligned", A.R_AARCH64_LDST16_ABS_LO12_NC, Ldrh, Abs(0x1001)),
            ("ldst32_abs_lo12_nc_misaligned", A.R_AARCH64_LDST32_ABS_LO12_NC, LdrW, Abs(0x1003)),
            ("ldst64_abs_lo12_nc_misaligned", A.R_AARCH64_LDST64_ABS_LO12_NC, LdrX, Abs(0x1004)),
            ("ldst128_abs_lo12_nc_misaligned", A.R_AARCH64_LDST128_ABS_LO12_NC, LdrQ, Abs(0x1008)),
            ("tstbr14", A.R_AARCH64_TSTBR14, Tbz, Local(16)),
            // 40 KiB: past TBZ's 14-bit reach (+-32 KiB), within the 19 bits Xen checks it against.
            ("tstbr14_beyond_14_bits", A.R_AARCH64_TSTBR14, Tbz, Local(40 * 1024)),
            ("tstbr14_over", A.R_AARCH64_TSTBR14, Tbz, Abs(Far)),
            ("condbr19", A.R_AARCH64_CONDBR19, BCond, Local(16)),
            ("condbr19_over", A.R_AARCH64_CONDBR19, BCond, Abs(Far)),
            ("jump26", A.R_AARCH64_JUMP26, B, Local(16)),
            ("jump26_over", A.R_AARCH64_JUMP26, B, Abs(Far)),
            ("call26", A.R_AARCH64_CALL26, Bl, Local(16)),
            ("call26_over", A.R_AARCH64_CALL26, Bl, Abs(Far)),
            ("call26_misaligned_target", A.R_AARCH64_CALL26, Bl, Local(18)),
            ("jump26_misaligned_target", A.R_AARCH64_JUMP26, B, Local(3)),
            // The +-128 MiB reach from the first payload page, where the case's section is placed (first in the text
            // of the only payload loaded): off by a page if the payload were elsewhere.
            ("call26_reach_forward", A.R_AARCH64_CALL26, Bl, Abs(Arm64Arch.PayloadAreaFirst + (128 << 20) - 4)),
            ("call26_beyond_forward", A.R_AARCH64_CALL26, Bl, Abs(Arm64Arch.PayloadAreaFirst + (128 << 20))),
            ("call26_reach_backward", A.R_AARCH64_CALL26, Bl, Abs(unchecked(Arm64Arch.PayloadAreaFirst - (128 << 20)))),
            ("call26_beyond_backward", A.R_AARCH64_CALL26, Bl, Abs(unchecked(Arm64Arch.PayloadAreaFirst - (128 << 20) - 4))),
            // Types the loader does not take.
            ("none", A.R_AARCH64_NONE, 0, Abs(0)),
            ("ld_prel_lo19", A.R_AARCH64_LD_PREL_LO19, 0x58000000, Local(16)),
            ("movw_gotoff_g0", A.R_AARCH64_MOVW_GOTOFF_G0, Movz, Local(16)),
            ("adr_got_page", (A)311, Adrp, Local(16)),
            ("ld64_got_lo12_nc", (A)312, LdrX, Local(16)),
            ("tlsle_add_tprel_hi12", (A)549, AddImm, Local(16)),
            ("copy", (A)1024, 0, Local(16)),
            ("relative", (A)1027, 0, Local(16)),
            ("x86_64_type", (A)(uint)X86_64RelocationType.R_X86_64_PC32, 0, Local(16)),
        };
        foreach (var (name, type, insn, to) in cases)
            Add("rel_" + name, Model(o => AddRelocation(o, type, insn, to, 0, to.Local >= 40 * 1024 ? 48 * 1024 : 64)));

        // Where a relocation may sit: every arm64 relocation needs 4 bytes at its place, ABS64 and PREL64 need 8.
        Add("rel_call26_last_word", Model(o => AddRelocation(o, A.R_AARCH64_CALL26, Bl, Local(0), 60, 64)));
        Add("rel_abs16_last_halfword", Model(o => AddRelocation(o, A.R_AARCH64_ABS16, 0, Abs(1), 62, 64)));
        Add("rel_abs64_last_word", Model(o => AddRelocation(o, A.R_AARCH64_ABS64, 0, Abs(1), 60, 64)));
        Add("rel_prel64_last_word", Model(o => AddRelocation(o, A.R_AARCH64_PREL64, 0, Local(0), 60, 64)));
        Add("rel_abs64_last_doubleword", Model(o => AddRelocation(o, A.R_AARCH64_ABS64, 0, Abs(1), 56, 64)));
        Add("rel_past_end", Model(o => AddRelocation(o, A.R_AARCH64_ABS32, 0, Abs(1), 64, 64)));
        // Places off their natural alignment: the loader writes there all the same (and Xen takes no fault).
        Add("rel_abs32_misaligned_place", Model(o => AddRelocation(o, A.R_AARCH64_ABS32, 0, Abs(0x12345678), 2, 64)));
        Add("rel_abs64_misaligned_place", Model(o => AddRelocation(o, A.R_AARCH64_ABS64, 0, Abs(Far), 4, 64)));
        Add("rel_prel16_misaligned_place", Model(o => AddRelocation(o, A.R_AARCH64_PREL16, 0, Local(8), 7, 64)));
        Add("rel_call26_misaligned_place", Model(o => AddRelocation(o, A.R_AARCH64_CALL26, Bl, Local(7), 1, 64)));

        // The patch: old_size of at least one instruction; NOPs of whole instructions within 31 bytes.
        foreach (uint size in new uint[] { 1, 2, 3 })
            Add($"old_size{size}", Funcs(28, size));
        Add("nop_0", Model(o => UploadCorpus.MakeNop(o, 0)), "apply", "revert");
        Add("nop_4", Model(o => UploadCorpus.MakeNop(o, 4)), "apply", "revert");
        Add("nop_8", Model(o => UploadCorpus.MakeNop(o, 8)), "apply", "revert");
        Add("nop_28", Model(o => UploadCorpus.MakeNop(o, 28)));
        Add("nop_30", Model(o => UploadCorpus.MakeNop(o, 30)));
        Add("nop_2", Model(o => UploadCorpus.MakeNop(o, 2)));

        // The B from old_addr to new_addr reaches [-128 MiB, +128 MiB). Xen checks old - new against that range
        // (so +128 MiB passes, -128 MiB does not) and then cannot encode +128 MiB; new_addr off a 4-byte boundary
        // passes every check and cannot be encoded either. Those apply (their functions are never called).
        Add("new_addr_forward_reach", Model(o => NewAddress(o, oldAddress + (128 << 20) - 4)), "apply", "revert");
        Add("new_addr_forward_limit", Model(o => NewAddress(o, oldAddress + (128 << 20))), "apply", "revert");
        Add("new_addr_forward_beyond", Model(o => NewAddress(o, oldAddress + (128 << 20) + 4)));
        Add("new_addr_backward_reach", Model(o => NewAddress(o, oldAddress - (128 << 20) + 4)), "apply", "revert");
        Add("new_addr_backward_limit", Model(o => NewAddress(o, oldAddress - (128 << 20))));
        Add("new_addr_misaligned", Model(o => NewAddressAddend(o, 2)), "apply", "revert");

        // The payload area: payloads of 2 MiB (the most .bss one may have) and 2 pages more, with their own
        // build-ids and symbol names, until the area is full (-ENOMEM); one unloaded in the middle leaves a hole
        // the next one fills; then all are unloaded.
        Add("bss_2mib", Model(o => o.FindSection(".bss")!.NoBitsSize = 2 << 20));
        const int AreaPayloads = 66;
        for (int i = 0; i < AreaPayloads; i++)
        {
            int n = i;
            // NOPs: no branch whose reach would end the filling before the area does.
            files.Add(($"area_{n}.livepatch", Model(o => Distinct(o, n, 2 << 20))));
            steps.Add(new("upload", $"area_{n}", $"area_{n}.livepatch"));
        }
        steps.AddRange([new("unload", "area_30"), new("upload", "area_64", "area_64.livepatch"), new("upload", "area_65", "area_65.livepatch")]);
        for (int i = 0; i < AreaPayloads; i++)
            steps.Add(new("unload", $"area_{i}"));
        return (files, steps);
    }

    /// <summary>A relocation's target: <see cref="Local"/> bytes after the place in the same section, or the absolute <see cref="Value"/>.</summary>
    public readonly record struct Target(long Local, ulong? Value);

    private static Target Local(long after) => new(after, null);

    private static Target Abs(ulong value) => new(0, value);

    // Payload n of the area's filling: a NOP patch whose .bss is bss bytes, its build-id and the names it defines its own.
    private static void Distinct(ElfObject o, int n, ulong bss)
    {
        UploadCorpus.MakeNop(o, 4);
        o.FindSection(".bss")!.NoBitsSize = bss;
        var note = o.FindSection(".note.gnu.build-id")!;
        var id = note.Data.ToArray();
        BinaryPrimitives.WriteInt32LittleEndian(id.AsSpan(id.Length - 4), n + 1);
        note.Data = id;
        foreach (var s in o.SymbolTable!.Symbols.Where(s => s.Section != null && s.Type is ElfSymbolType.Func or ElfSymbolType.Object))
            s.Name += $"_area{n}";
    }

    // A new text section of size bytes holding insn in every word, with one relocation of type at offset; it is
    // the payload's first section, so it is placed first in the payload's text.
    private static void AddRelocation(ElfObject o, A type, uint insn, Target to, ulong offset, int size)
    {
        var data = new byte[size];
        for (int i = 0; i + 4 <= size; i += 4)
            BinaryPrimitives.WriteUInt32LittleEndian(data.AsSpan(i), insn);
        var text = o.AddSection(".text.reloc_case", ElfSectionType.ProgBits, ElfSectionFlags.Alloc | ElfSectionFlags.ExecInstr, data, 4);
        o.Sections.Remove(text);
        o.Sections.Insert(0, text);
        var symtab = o.GetOrAddSymbolTable();
        var target = to.Value is { } value
            ? symtab.Add(new ElfObjectSymbol("reloc_case_target") { Binding = ElfSymbolBinding.Local, SpecialSection = ElfSpecialSection.Abs, Value = value })
            : symtab.Add(new ElfObjectSymbol("reloc_case_target") { Binding = ElfSymbolBinding.Local, Section = text, Value = offset + (ulong)to.Local });
        o.GetOrAddRelocations(text, rela: true).Entries.Add(new ElfObjectRelocation(offset, (uint)type, target, 0));
    }

    // new_addr: the .livepatch.funcs relocation at offset 8 now names an absolute symbol at address.
    private static void NewAddress(ElfObject o, ulong address)
    {
        var s = o.SymbolTable!.Add(new ElfObjectSymbol("new_addr_target") { Binding = ElfSymbolBinding.Local, SpecialSection = ElfSpecialSection.Abs, Value = address });
        var rela = (ElfRelocationSection)o.FindSection(".rela.livepatch.funcs")!;
        int i = rela.Entries.FindIndex(r => r.Offset == 8);
        rela.Entries[i] = rela.Entries[i] with { Symbol = s, Addend = 0 };
    }

    // new_addr: the replacement plus addend bytes.
    private static void NewAddressAddend(ElfObject o, long addend)
    {
        var rela = (ElfRelocationSection)o.FindSection(".rela.livepatch.funcs")!;
        int i = rela.Entries.FindIndex(r => r.Offset == 8);
        rela.Entries[i] = rela.Entries[i] with { Addend = rela.Entries[i].Addend + addend };
    }
}
