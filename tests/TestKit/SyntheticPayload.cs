using System.Buffers.Binary;
using System.Globalization;
using System.Text;
using XenLivepatch.Abi;
using XenLivepatch.Elf;

namespace XenLivepatch.TestKit;

/// <summary>
/// Synthetic x86-64 hypervisors and payloads of any size, written with our ELF writer: a hypervisor as a
/// <c>/proc/xen/xensyms</c> listing of <c>fN</c> functions plus a build-id, and a payload replacing the first
/// N of them, each replacement calling the hypervisor (PLT32) and reading its own rodata (PC32), with
/// <c>.livepatch.funcs</c> entries relocated by R_X86_64_64, padded with rodata to a target size.
/// </summary>
public static class SyntheticPayload
{
    /// <summary>The hypervisor's text start.</summary>
    public const ulong TextBase = 0xffff82d040200000;

    /// <summary>A listing of <paramref name="functions"/> 32-byte functions f0, f1, ... and a helper.</summary>
    public static string XenSyms(int functions)
    {
        var sb = new StringBuilder();
        for (int i = 0; i < functions; i++)
            sb.Append(CultureInfo.InvariantCulture, $"{TextBase + (ulong)i * 32:x} T f{i}\n");
        sb.Append(CultureInfo.InvariantCulture, $"{TextBase + (ulong)functions * 32:x} T hv_helper\n");
        return sb.ToString();
    }

    /// <summary>A build-id for the synthetic hypervisor.</summary>
    public static byte[] BuildId { get; } = Enumerable.Range(1, 20).Select(i => (byte)(i * 7)).ToArray();

    /// <summary>A payload replacing f0..f(n-1), padded with rodata to at least <paramref name="minimumSize"/> bytes.</summary>
    public static byte[] Build(int functions, int minimumSize = 0, int seed = 1)
    {
        var obj = new ElfObject(ElfClass.Elf64, ElfEncoding.LittleEndian, ElfMachine.X86_64);
        var symtab = obj.GetOrAddSymbolTable();
        var helper = symtab.Add(new ElfObjectSymbol("hv_helper") { Binding = ElfSymbolBinding.Global });
        var names = new StringBuilder();
        var nameOffsets = new List<int>();
        for (int i = 0; i < functions; i++)
        {
            nameOffsets.Add(Encoding.ASCII.GetByteCount(names.ToString()));
            names.Append(CultureInfo.InvariantCulture, $"f{i}\0");
        }
        var rodata = obj.AddSection(".rodata", ElfSectionType.ProgBits, ElfSectionFlags.Alloc, Encoding.ASCII.GetBytes(names.ToString()), 8);
        var rodataSym = obj.GetOrAddSectionSymbol(rodata);
        byte[] funcs = new byte[functions * 104];
        var funcsSection = obj.AddSection(".livepatch.funcs", ElfSectionType.ProgBits, ElfSectionFlags.Alloc, [], 8);
        var funcRelocs = new List<ElfObjectRelocation>();
        // All replacements in one .text (a payload has fewer than 1024 sections), 16 bytes apart:
        // call hv_helper; lea rax, [rip + name]; ret
        byte[] one = [0xE8, 0, 0, 0, 0, 0x48, 0x8D, 0x05, 0, 0, 0, 0, 0xC3];
        byte[] code = new byte[functions * 16];
        for (int i = 0; i < functions; i++)
            one.CopyTo(code, i * 16);
        var text = obj.AddSection(".text", ElfSectionType.ProgBits, ElfSectionFlags.Alloc | ElfSectionFlags.ExecInstr, code, 16);
        var rela = obj.GetOrAddRelocations(text);
        for (int i = 0; i < functions; i++)
        {
            ulong at = (ulong)i * 16;
            var fn = symtab.Add(new ElfObjectSymbol($"f{i}") { Type = ElfSymbolType.Func, Binding = ElfSymbolBinding.Global, Section = text, Value = at, Size = (ulong)one.Length });
            rela.Entries.Add(new ElfObjectRelocation(at + 1, (uint)X86_64RelocationType.R_X86_64_PLT32, helper, -4));
            rela.Entries.Add(new ElfObjectRelocation(at + 8, (uint)X86_64RelocationType.R_X86_64_PC32, rodataSym, nameOffsets[i] - 4));
            var entry = funcs.AsSpan(i * 104);
            BinaryPrimitives.WriteUInt32LittleEndian(entry[24..], (uint)one.Length);
            BinaryPrimitives.WriteUInt32LittleEndian(entry[28..], 32);
            entry[32] = 2;
            funcRelocs.Add(new ElfObjectRelocation((ulong)(i * 104), (uint)X86_64RelocationType.R_X86_64_64, rodataSym, nameOffsets[i]));
            funcRelocs.Add(new ElfObjectRelocation((ulong)(i * 104 + 8), (uint)X86_64RelocationType.R_X86_64_64, fn, 0));
        }
        funcsSection.Data = funcs;
        obj.GetOrAddRelocations(funcsSection).Entries.AddRange(funcRelocs);
        obj.AddSection(PayloadSections.Depends, ElfSectionType.ProgBits, ElfSectionFlags.Alloc, ElfNote.EncodeGnuBuildId(BuildId, ElfEncoding.LittleEndian), 4);
        obj.AddSection(PayloadSections.XenDepends, ElfSectionType.ProgBits, ElfSectionFlags.Alloc, ElfNote.EncodeGnuBuildId(BuildId, ElfEncoding.LittleEndian), 4);
        byte[] id = new byte[20];
        new Random(seed).NextBytes(id);
        obj.AddSection(PayloadSections.BuildId, ElfSectionType.Note, ElfSectionFlags.Alloc, ElfNote.EncodeGnuBuildId(id, ElfEncoding.LittleEndian), 4);
        byte[] bytes = obj.Write();
        if (bytes.Length < minimumSize)
        {
            var pad = new byte[minimumSize - bytes.Length];
            new Random(seed).NextBytes(pad);
            obj.AddSection(".rodata.padding", ElfSectionType.ProgBits, ElfSectionFlags.Alloc, pad, 1);
            bytes = obj.Write();
        }
        return bytes;
    }
}
