using System.Security.Cryptography;
using System.Text;
using XenLivepatch.Abi;
using XenLivepatch.Elf;
using XenLivepatch.Hypervisor;

namespace XenLivepatch.Tooling;

/// <summary>
/// What <c>build</c> adds to the linked objects to make them a payload: <c>.livepatch.funcs</c> with its name
/// strings and relocations, the build-id notes, <c>.modinfo</c>, and the build-id itself.
/// </summary>
internal static class PayloadWriter
{
    private static ElfObjectSection GetOrAddSection(ElfObject obj, string name, ulong alignment)
    {
        var s = obj.FindSection(name);
        if (s != null)
        {
            s.Alignment = Math.Max(s.Alignment, alignment);
            return s;
        }
        s = new ElfObjectSection(name, ElfSectionType.ProgBits) { Flags = ElfSectionFlags.Alloc, Alignment = alignment, Data = Array.Empty<byte>() };
        // Before the symbol table, so that tables stay last.
        obj.Sections.Insert(obj.Sections.FindIndex(x => x is ElfSymbolTableSection), s);
        return s;
    }

    private static ElfObjectSymbol SectionSymbol(LinkedObject linked, ElfObjectSection section)
    {
        var existing = linked.Symbols.Symbols.Find(s => s.Type == ElfSymbolType.Section && ReferenceEquals(s.Section, section));
        return existing ?? linked.Symbols.Add(new ElfObjectSymbol("") { Type = ElfSymbolType.Section, Binding = ElfSymbolBinding.Local, Section = section });
    }

    public static void AddFuncs(PayloadBuildRequest request, LivepatchArch arch, LinkedObject linked, List<FunctionEntry> entries)
    {
        if (entries.Count == 0)
            return;
        var obj = linked.Object;
        int size = request.Profile.FuncSize;
        var strings = GetOrAddSection(obj, PayloadBuilder.StringsSection, 1);
        var names = new MemoryStream();
        names.Write(strings.Data.Span);
        var funcs = GetOrAddSection(obj, PayloadSections.Funcs, 8);
        // Read-only, as Xen's recipe makes it (objcopy --set-section-flags .livepatch.funcs=alloc,readonly).
        funcs.Flags = ElfSectionFlags.Alloc;
        int start = funcs.Data.Length;
        var table = new byte[start + entries.Count * size];
        funcs.Data.Span.CopyTo(table);
        var rela = obj.GetOrAddRelocations(funcs, rela: true);
        if (obj.Sections.IndexOf(rela) != obj.Sections.IndexOf(funcs) + 1)
        {
            obj.Sections.Remove(rela);
            obj.Sections.Insert(obj.Sections.IndexOf(funcs) + 1, rela);
        }
        uint absolute = arch.Machine == ElfMachine.AArch64 ? (uint)AArch64RelocationType.R_AARCH64_ABS64 : (uint)X86_64RelocationType.R_X86_64_64;
        var stringsSymbol = SectionSymbol(linked, strings);
        for (int k = 0; k < entries.Count; k++)
        {
            var e = entries[k];
            int at = start + k * size;
            long nameAt = names.Length;
            names.Write(Encoding.Latin1.GetBytes(e.OldName + "\0"));
            new LivepatchFunc
            {
                OldAddr = request.ResolveOldAddresses ? e.Old.Address : 0,
                NewSize = e.NewSize,
                OldSize = e.OldSize,
                Version = request.Profile.PayloadVersion,
                Expect = e.Expect,
            }.Write(table.AsSpan(at), request.Profile.PayloadVersion);
            rela.Entries.Add(new ElfObjectRelocation((ulong)(at + LivepatchFunc.FieldLocations.Name), absolute, stringsSymbol, nameAt));
            if (e.New != null)
                rela.Entries.Add(new ElfObjectRelocation((ulong)(at + LivepatchFunc.FieldLocations.NewAddr), absolute, e.New, 0));
        }
        funcs.Data = table;
        strings.Data = names.ToArray();
    }

    public static void AddNote(ElfObject obj, string name, ReadOnlySpan<byte> buildId)
    {
        var s = GetOrAddSection(obj, name, 4);
        s.Data = ElfNote.EncodeGnuBuildId(buildId, ElfEncoding.LittleEndian);
    }

    public static void AddMetadata(ElfObject obj, IReadOnlyList<string> metadata)
    {
        if (metadata.Count == 0)
            return;
        var s = GetOrAddSection(obj, PayloadSections.ModInfo, 1);
        var bytes = new MemoryStream();
        bytes.Write(s.Data.Span);
        foreach (string m in metadata)
            bytes.Write(Encoding.UTF8.GetBytes(m + "\0"));
        s.Data = bytes.ToArray();
    }

    /// <summary>
    /// Fills the build-id note's descriptor with the SHA-1 of the whole file taken while the descriptor is
    /// zero, as <c>ld --build-id=sha1</c> computes it over its output, and returns it.
    /// </summary>
    public static byte[] StampBuildId(byte[] data)
    {
        var file = ElfFile.Read(data);
        var sh = file.GetSectionHeader(file.FindSection(PayloadSections.BuildId));
        // { namesz, descsz, type } then "GNU\0": the descriptor starts 16 bytes in.
        int at = (int)sh.Offset + ElfNote.HeaderSize + 4;
        // Not for security: the build-id is an identity that must be what ld computes (--build-id=sha1).
#pragma warning disable CA5350
        byte[] id = SHA1.HashData(data);
#pragma warning restore CA5350
        id.CopyTo(data, at);
        return id;
    }
}
