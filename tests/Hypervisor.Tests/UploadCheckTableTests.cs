using XenLivepatch.Abi;
using XenLivepatch.Elf;
using XenLivepatch.TestKit;
using L64 = XenLivepatch.Elf.ElfSectionHeader.Layout64;

namespace XenLivepatch.Hypervisor.Tests;

/// <summary>
/// Every UPLOAD check of reference §2–§3, one case each, on payloads built with Xen's recipe and then
/// mutated (bytes, or through our ELF writer): the errno is Xen's, the message names the payload, and a
/// rejected upload leaves no payload, no memory and no version bump behind.
/// </summary>
public class UploadCheckTableTests
{
    private static readonly Lazy<byte[]> s_hello = new(() => File.ReadAllBytes(
        LivepatchFixtures.BuildPayload(LivepatchFixtures.Image(), "hello", ["hello_world.c"], "--modinfo", "LIVEPATCH_RULEZ")));
    private static readonly Lazy<byte[]> s_extern = new(() => File.ReadAllBytes(
        LivepatchFixtures.BuildPayload(LivepatchFixtures.Image(), "extern", ["extern_refs.c"])));
    private static readonly Lazy<byte[]> s_nop = new(() => File.ReadAllBytes(
        LivepatchFixtures.BuildPayload(LivepatchFixtures.Image(), "nop", ["nop.c"])));
    private static readonly Lazy<byte[]> s_hooks = new(() => File.ReadAllBytes(
        LivepatchFixtures.BuildPayload(LivepatchFixtures.Image(), "hooks", ["hooks_only.c"])));

    private sealed record Case(Func<byte[]> Payload, XenErrno? Errno, string? Message = null);

    private static byte[] Hello(Action<PayloadEditor> edit)
    {
        var e = new PayloadEditor((byte[])s_hello.Value.Clone());
        edit(e);
        return e.Bytes;
    }

    private static byte[] Bytes(Lazy<byte[]> b, Action<PayloadEditor> edit)
    {
        var e = new PayloadEditor((byte[])b.Value.Clone());
        edit(e);
        return e.Bytes;
    }

    private static byte[] Model(Lazy<byte[]> b, Action<ElfObject> edit) => PayloadModel.Edit(b.Value, edit);

    private const int Funcs = 0; // offsets inside a livepatch_func
    private static int FuncField(PayloadEditor e, int field) => e.Data(".livepatch.funcs") + Funcs + field;

    private static readonly Dictionary<string, Case> s_cases = new()
    {
        // The accepted baselines.
        ["valid hello_world"] = new(() => s_hello.Value, null),
        ["valid with external references"] = new(() => s_extern.Value, null),
        ["valid NOP patch"] = new(() => s_nop.Value, null),
        ["valid hooks-only payload"] = new(() => s_hooks.Value, null),
        ["valid with EI_OSABI FreeBSD"] = new(() => Hello(e => e.U8(ElfIdent.OsAbiIndex, (byte)ElfOsAbi.FreeBsd)), null),

        // §1.4 verify_payload
        ["empty payload"] = new(() => [], XenErrno.EINVAL, "empty"),
        ["payload over 2 MiB"] = new(() => new byte[2 * 1024 * 1024 + 1], XenErrno.EINVAL, "larger than"),

        // §2.1 livepatch_header_check
        ["shorter than an ELF header"] = new(() => s_hello.Value[..63], XenErrno.EINVAL, "smaller than an ELF header"),
        ["bad magic"] = new(() => Hello(e => e.U8(1, (byte)'X')), XenErrno.EINVAL, "not an ELF payload"),
        ["e_version 2"] = new(() => Hello(e => e.U32(ElfHeader.Layout64.Version, 2)), XenErrno.EOPNOTSUPP),
        ["EI_VERSION 2"] = new(() => Hello(e => e.U8(ElfIdent.VersionIndex, 2)), XenErrno.EOPNOTSUPP),
        ["EI_ABIVERSION 1"] = new(() => Hello(e => e.U8(ElfIdent.AbiVersionIndex, 1)), XenErrno.EOPNOTSUPP),
        ["EI_OSABI GNU"] = new(() => Hello(e => e.U8(ElfIdent.OsAbiIndex, (byte)ElfOsAbi.Gnu)), XenErrno.EOPNOTSUPP),
        ["ET_EXEC"] = new(() => Hello(e => e.U16(ElfHeader.Layout64.Type, (ushort)ElfType.Executable)), XenErrno.EOPNOTSUPP),
        ["a program header"] = new(() => Hello(e => e.U16(ElfHeader.Layout64.PhNum, 1)), XenErrno.EOPNOTSUPP),
        ["EM_AARCH64 on x86"] = new(() => Hello(e => e.U16(ElfHeader.Layout64.Machine, (ushort)ElfMachine.AArch64)), XenErrno.EOPNOTSUPP),
        ["ELFCLASS32"] = new(() => Hello(e => e.U8(ElfIdent.ClassIndex, 1)), XenErrno.EOPNOTSUPP),
        ["big endian"] = new(() => Hello(e => e.U8(ElfIdent.DataIndex, 2)), XenErrno.EOPNOTSUPP),
        ["e_shstrndx SHN_UNDEF"] = new(() => Hello(e => e.U16(ElfHeader.Layout64.ShStrNdx, 0)), XenErrno.EINVAL, "undefined"),
        ["1024 sections"] = new(() => Hello(e => e.U16(ElfHeader.Layout64.ShNum, 1024)), XenErrno.EOPNOTSUPP, "too many (1024) sections"),
        ["e_shstrndx past the sections"] = new(() => Hello(e => e.U16(ElfHeader.Layout64.ShStrNdx, e.File.Header.SectionHeaderCount)), XenErrno.EINVAL),
        ["e_shoff past the end"] = new(() => Hello(e => e.U64(ElfHeader.Layout64.ShOff, (ulong)e.Bytes.Length)), XenErrno.EINVAL, "bogus e_shoff"),
        ["e_shentsize 63"] = new(() => Hello(e => e.U16(ElfHeader.Layout64.ShEntSize, 63)), XenErrno.EINVAL),
        ["section headers past the end"] = new(() => Hello(e => e.U16(ElfHeader.Layout64.ShNum, (ushort)(e.File.Header.SectionHeaderCount + 1))), XenErrno.EINVAL, "do not fit"),

        // §2.2 elf_resolve_sections
        ["section data at the ELF header"] = new(() => Hello(e => e.U64(e.Shdr(".livepatch.depends", L64.Offset), 8)), XenErrno.EINVAL, "at the ELF header"),
        ["SHT_NOBITS at the ELF header"] = new(() => Hello(e => e.U64(e.Shdr(".bss", L64.Offset), 0)), XenErrno.EINVAL, "at the ELF header"),
        ["section data past the end"] = new(() => Hello(e => e.U64(e.Shdr(".livepatch.depends", L64.Size), 0x100000)), XenErrno.EINVAL, "past the end"),
        ["section size that wraps"] = new(() => Hello(e => e.U64(e.Shdr(".livepatch.depends", L64.Size), ulong.MaxValue - 0x40)), XenErrno.EINVAL, "past the end"),
        ["alignment not a power of two"] = new(() => Hello(e => e.U64(e.Shdr(".rodata", L64.AddrAlign), 3)), XenErrno.EOPNOTSUPP, "not a power of two"),
        ["address not aligned"] = new(() => Hello(e => e.U64(e.Shdr(".rodata", L64.Addr), 4)), XenErrno.EINVAL, "not aligned"),
        ["writable SHT_NOBITS over 2 MiB"] = new(() => Hello(e => e.U64(e.Shdr(".bss", L64.Size), 3 * 1024 * 1024)), XenErrno.EINVAL, "SHT_NOBITS"),
        ["two symbol tables"] = new(() => Hello(e => e.U32(e.Shdr(".comment", L64.Type), (uint)ElfSectionType.SymbolTable)), XenErrno.EOPNOTSUPP, "multiple symbol tables"),
        ["symbol table link past the sections"] = new(() => Hello(e => e.U32(e.Shdr(".symtab", L64.Link), 500)), XenErrno.EINVAL),
        ["no symbol table"] = new(() => Hello(e => e.U32(e.Shdr(".symtab", L64.Type), (uint)ElfSectionType.ProgBits)), XenErrno.EINVAL, "no symbol table"),
        ["symbol table entry size 23"] = new(() => Hello(e => e.U64(e.Shdr(".symtab", L64.EntSize), 23)), XenErrno.EINVAL, "symbol table header"),
        ["symbol table size not a multiple"] = new(() => Hello(e => e.U64(e.Shdr(".symtab", L64.Size), e.File.SectionHeaders[e.SectionIndex(".symtab")].Size - 1)), XenErrno.EINVAL),
        ["symbol string table not SHT_STRTAB"] = new(() => Hello(e => e.U32(e.Shdr(".strtab", L64.Type), (uint)ElfSectionType.ProgBits)), XenErrno.EINVAL, "string table"),
        ["symbol string table not NUL-terminated"] = new(() => Hello(e => e.U8(e.Data(".strtab") + (int)e.File.SectionHeaders[e.SectionIndex(".strtab")].Size - 1, (byte)'x')), XenErrno.EINVAL),
        ["section name table corrupted"] = new(() => Hello(e => e.U8(e.Data(".shstrtab"), (byte)'x')), XenErrno.EINVAL, "section name string table"),
        ["section name past the name table"] = new(() => Hello(e => e.U32(e.Shdr(".comment", L64.Name), 0x10000)), XenErrno.EINVAL, "name is not within"),
        ["symbol name past the string table"] = new(() => Hello(e => e.U32(e.Symbol("xen_extra_version"), 0x10000)), XenErrno.EINVAL, "name is not within"),

        // §2.4 move_payload, symbols, relocations
        ["executable and writable section"] = new(() => Hello(e => e.U64(e.Shdr(".text.xen_extra_version", L64.Flags), (ulong)(ElfSectionFlags.Alloc | ElfSectionFlags.ExecInstr | ElfSectionFlags.Write))), XenErrno.EOPNOTSUPP, "both executable and writable"),
        ["unknown symbol"] = new(() => Bytes(s_extern, e => e.U8(e.Data(".strtab") + StrtabOffset(e, "hv_counter") + 3, (byte)'O')), XenErrno.ENOENT, "unknown symbol: hv_Oounter"),
        ["common symbol"] = new(() => Bytes(s_extern, e => e.U16(e.Symbol("hv_counter") + 6, (ushort)ElfSpecialSection.Common)), XenErrno.EINVAL, "common symbol"),
        ["symbol in a reserved section"] = new(() => Hello(e => e.U16(e.Symbol("xen_extra_version") + 6, 0xff10)), XenErrno.EOPNOTSUPP),
        ["symbol past the sections"] = new(() => Hello(e => e.U16(e.Symbol("xen_extra_version") + 6, 300)), XenErrno.EINVAL),
        ["relocations linked to another table"] = new(() => Hello(e => e.U32(e.Shdr(".rela.livepatch.funcs", L64.Link), (uint)e.SectionIndex(".strtab"))), XenErrno.EINVAL, "not to the symbol table"),
        ["relocation entry size 23"] = new(() => Hello(e => e.U64(e.Shdr(".rela.livepatch.funcs", L64.EntSize), 23)), XenErrno.EINVAL),
        ["SHT_REL relocations"] = new(() => Hello(e => { e.U32(e.Shdr(".rela.livepatch.funcs", L64.Type), (uint)ElfSectionType.Rel); e.U64(e.Shdr(".rela.livepatch.funcs", L64.EntSize), 16); }), XenErrno.EOPNOTSUPP, "SHT_REL"),
        ["relocation against the null symbol"] = new(() => Hello(e => e.U32(e.Rela(".rela.livepatch.funcs", 0) + 12, 0)), XenErrno.EOPNOTSUPP, "null symbol"),
        ["relocation symbol past the table"] = new(() => Hello(e => e.U32(e.Rela(".rela.livepatch.funcs", 0) + 12, 5000)), XenErrno.EINVAL),
        ["relocation against an unloaded section"] = new(() => Hello(e => e.U16(e.Symbol("xen_extra_version") + 6, (ushort)e.SectionIndex(".comment"))), XenErrno.EINVAL, "not loaded"),
        ["unsupported relocation type"] = new(() => Hello(e => e.U32(e.Rela(".rela.livepatch.funcs", 0) + 8, (uint)X86_64RelocationType.R_X86_64_32)), XenErrno.EOPNOTSUPP, "R_X86_64_32"),
        ["relocation past the end of its section"] = new(() => Hello(e => e.U64(e.Rela(".rela.livepatch.funcs", 0), 100)), XenErrno.EINVAL, "past the end"),
        ["PC32 relocation that overflows"] = new(() => Bytes(s_extern, e => e.U16(e.Symbol("hv_counter") + 6, (ushort)ElfSpecialSection.Abs)), XenErrno.EOVERFLOW, "overflow"),
        ["relocation section for section 0"] = new(() => Hello(e => e.U32(e.Shdr(".rela.livepatch.funcs", L64.Info), 0)), XenErrno.EINVAL, "section 0"),

        // §2.4 check_special_sections, check_patching_sections
        [".livepatch.xen_depends missing"] = new(() => Model(s_hello, o => o.RemoveSection(o.Section(".livepatch.xen_depends"))), XenErrno.EINVAL, ".livepatch.xen_depends is missing"),
        [".livepatch.depends missing"] = new(() => Model(s_hello, o => o.RemoveSection(o.Section(".livepatch.depends"))), XenErrno.EINVAL, ".livepatch.depends is missing"),
        [".livepatch.depends empty"] = new(() => Model(s_hello, o => o.Section(".livepatch.depends").Data = Array.Empty<byte>()), XenErrno.EINVAL, ".livepatch.depends is empty"),
        [".note.gnu.build-id missing"] = new(() => Model(s_hello, o => o.RemoveSection(o.Section(".note.gnu.build-id"))), XenErrno.EINVAL, ".note.gnu.build-id is missing"),
        ["nothing to patch"] = new(() => Model(s_hello, o => o.RemoveSection(o.Section(".livepatch.funcs"))), XenErrno.EINVAL, "nothing to patch"),
        [".livepatch.funcs empty"] = new(() => Model(s_hello, o => { o.RemoveSection(o.Section(".rela.livepatch.funcs")); o.Section(".livepatch.funcs").Data = Array.Empty<byte>(); }), XenErrno.EINVAL, ".livepatch.funcs is empty"),
        [".livepatch.hooks.load empty"] = new(() => Model(s_hello, o => o.AddSection(".livepatch.hooks.load", ElfSectionType.ProgBits, ElfSectionFlags.Alloc, [])), XenErrno.EINVAL, ".livepatch.hooks.load is empty"),

        // §2.4 prepare_payload: functions
        [".livepatch.funcs size not a multiple of 104"] = new(() => Model(s_hello, o => o.Section(".livepatch.funcs").Data = new byte[105]), XenErrno.EINVAL, "multiple of 104"),
        ["function version 1"] = new(() => Hello(e => e.U8(FuncField(e, 32), 1)), XenErrno.EOPNOTSUPP, "wrong version (1)"),
        ["old_size 0"] = new(() => Hello(e => e.U32(FuncField(e, 28), 0)), XenErrno.EINVAL, "zero"),
        ["name that resolves to nothing"] = new(() => Hello(e => e.U8(e.Data(".rodata"), (byte)'y')), XenErrno.ENOENT, "could not resolve old address of yen_extra_version"),
        ["jump into a 4-byte function"] = new(() => Hello(e => e.U32(FuncField(e, 28), 4)), XenErrno.EINVAL, "a jump needs 5"),
        ["NOP over 31 bytes"] = new(() => Bytes(s_nop, e => e.U32(FuncField(e, 24), 32)), XenErrno.EOPNOTSUPP),
        ["NOP longer than the function"] = new(() => Bytes(s_nop, e => { e.U32(FuncField(e, 24), 7); }), XenErrno.EINVAL, "larger than the 6-byte function"),
        ["old_addr below the image"] = new(() => Bytes(s_nop, e => { e.U64(FuncField(e, 16), 0xffff82d040200000 - (3UL << 30)); }), XenErrno.EINVAL, "not mapped"),
        ["old_addr not mapped"] = new(() => Bytes(s_nop, e => e.U64(FuncField(e, 16), 0x1000)), XenErrno.EINVAL, "not mapped"),
        ["old_addr not canonical"] = new(() => Bytes(s_nop, e => e.U64(FuncField(e, 16), 0x8000000000000000)), XenErrno.EINVAL, "not mapped"),
        ["no name and no old_addr"] = new(() => Model(s_hello, o => ((ElfRelocationSection)o.Section(".rela.livepatch.funcs")).Entries.RemoveAll(r => r.Offset == 0)), XenErrno.EINVAL, "neither an old_addr nor a name"),
        ["relocation that corrupts the name pointer"] = new(() => Hello(e => e.U64(e.Rela(".rela.livepatch.funcs", 0), 4)), XenErrno.EINVAL, "readable string"),
        [".livepatch.funcs without SHF_ALLOC"] = new(() => Hello(e => e.U64(e.Shdr(".livepatch.funcs", L64.Flags), 0)), XenErrno.EINVAL, "lacks SHF_ALLOC"),

        // §2.4 prepare_payload: hooks, notes, tables, metadata
        ["load hooks not a multiple of 8"] = new(() => Model(s_hooks, o => o.Section(".livepatch.hooks.load").Data = new byte[12]), XenErrno.EINVAL, "multiple of 8"),
        ["pre-apply hook of 16 bytes"] = new(() => Model(s_hello, o => o.AddSection(".livepatch.hooks.preapply", ElfSectionType.ProgBits, ElfSectionFlags.Alloc, new byte[16], 8)), XenErrno.EINVAL, "exactly one"),
        ["build-id note of the wrong type"] = new(() => Hello(e => e.U32(e.Data(".note.gnu.build-id") + 8, 4)), XenErrno.EINVAL, "NT_GNU_BUILD_ID"),
        ["build-id note no larger than its header"] = new(() => Model(s_hello, o => o.Section(".note.gnu.build-id").Data = new byte[12]), XenErrno.EINVAL),
        ["depends note with a bad owner"] = new(() => Hello(e => e.U8(e.Data(".livepatch.depends") + 12, (byte)'X')), XenErrno.EINVAL, "not \"GNU\""),
        [".livepatch.depends without SHF_ALLOC"] = new(() => Hello(e => e.U64(e.Shdr(".livepatch.depends", L64.Flags), 0)), XenErrno.EINVAL, "lacks SHF_ALLOC"),
        [".bug_frames.0 not a multiple of 8"] = new(() => Model(s_hello, o => o.AddSection(".bug_frames.0", ElfSectionType.ProgBits, ElfSectionFlags.Alloc, new byte[12], 4)), XenErrno.EINVAL, ".bug_frames.0"),
        [".ex_table not a multiple of 8"] = new(() => Model(s_hello, o => o.AddSection(".ex_table", ElfSectionType.ProgBits, ElfSectionFlags.Alloc, new byte[12], 4)), XenErrno.EINVAL, ".ex_table"),
        [".altinstructions not a multiple of 14"] = new(() => Model(s_hello, o => o.AddSection(".altinstructions", ElfSectionType.ProgBits, ElfSectionFlags.Alloc, new byte[15])), XenErrno.EINVAL, ".altinstructions"),
        [".altinstructions patching outside the text"] = new(() => Model(s_hello, o => { o.AddSection(".altinstructions", ElfSectionType.ProgBits, ElfSectionFlags.Alloc, new byte[14]); o.AddSection(".altinstr_replacement", ElfSectionType.ProgBits, ElfSectionFlags.Alloc | ElfSectionFlags.ExecInstr, new byte[4]); }), XenErrno.EINVAL, "outside the payload's text"),
        [".modinfo without a final NUL"] = new(() => Hello(e => e.U8(e.Data(".modinfo") + 15, (byte)'!')), XenErrno.EINVAL, "metadata"),
        [".modinfo of size 0"] = new(() => Model(s_hello, o => o.Section(".modinfo").Data = Array.Empty<byte>()), XenErrno.EINVAL, ".modinfo is empty"),

        // §3.4 build_symbol_table
        ["new symbol that the hypervisor has"] = new(() => Hello(e => e.U8(e.Data(".strtab") + StrtabOffset(e, "hello_world_patch_this_fnc"), 0)), null),
        ["duplicate new symbol"] = new(() => Bytes(s_extern, e => WriteString(e, "extern_refs_patch_this_fnc", "hv_function")), XenErrno.EEXIST, "duplicate new symbol: hv_function"),
    };

    private static int StrtabOffset(PayloadEditor e, string name)
    {
        var f = e.File;
        var table = f.GetSymbolTable(f.FindSymbolTable());
        for (int i = 1; i < table.Count; i++)
        {
            if (table.GetName(table[i]) == name)
                return (int)table[i].NameOffset;
        }
        throw new KeyNotFoundException(name);
    }

    // Renames a symbol in place (the new name must not be longer).
    private static void WriteString(PayloadEditor e, string symbol, string newName)
    {
        int at = e.Data(".strtab") + StrtabOffset(e, symbol);
        var bytes = System.Text.Encoding.ASCII.GetBytes(newName + "\0");
        bytes.CopyTo(e.Bytes, at);
    }

    public static TheoryData<string> Cases => [.. s_cases.Keys];

    [Theory, MemberData(nameof(Cases))]
    public void Upload_check(string name)
    {
        var c = s_cases[name];
        var (core, target) = Targets.Core();
        var before = Targets.Snapshot(core, target);
        var error = core.Upload("payload", c.Payload());
        Assert.Equal(c.Errno, error?.Errno);
        if (c.Errno == null)
        {
            Assert.Equal(LivepatchState.Checked, Assert.Single(core.Payloads).State);
            return;
        }
        Assert.StartsWith("payload: ", error!.Message, StringComparison.Ordinal);
        if (c.Message != null)
            Assert.Contains(c.Message, error.Message, StringComparison.OrdinalIgnoreCase);
        Assert.Equal(before, Targets.Snapshot(core, target));
    }

    [Fact]
    public void A_replacement_out_of_branch_range_gets_EOVERFLOW()
    {
        var image = LivepatchFixtures.Image();
        // Payload memory 3 GiB above the hypervisor's text: a rel32 jump cannot reach it.
        Assert.True(OfflineHypervisor.TryFromImage(image.File, out var target, out string? why, windowStart: image.Address("xen_extra_version") + (3UL << 30)), why);
        var core = new LivepatchCore(LivepatchProfile.Xen417, X86_64Arch.Instance, target, target);
        var error = core.Upload("far", s_hello.Value);
        Assert.Equal(XenErrno.EOVERFLOW, error?.Errno);
        Assert.Contains("out of branch range", error!.Message, StringComparison.Ordinal);
        Assert.Empty(target.Allocations);
    }

    [Fact]
    public void A_new_symbol_of_another_payload_is_a_duplicate()
    {
        var (core, target) = Targets.Core();
        Assert.Null(core.Upload("first", s_extern.Value));
        var before = Targets.Snapshot(core, target);
        // The same static string name, under a new build-id: a new symbol that the first payload already exports.
        byte[] second = Bytes(s_extern, e => e.U8(e.Data(".note.gnu.build-id") + 16, (byte)(e.Bytes[e.Data(".note.gnu.build-id") + 16] ^ 1)));
        var error = core.Upload("second", second);
        Assert.Equal(XenErrno.EEXIST, error?.Errno);
        Assert.Contains("duplicate new symbol: extern_refs_patch_this_fnc", error!.Message, StringComparison.Ordinal);
        Assert.Equal(before, Targets.Snapshot(core, target));
    }
}
