using System.Diagnostics.CodeAnalysis;
using System.Globalization;
using System.Text;
using XenLivepatch.Abi;
using XenLivepatch.Elf;

namespace XenLivepatch.Tooling;

/// <summary>A section of a payload file.</summary>
/// <param name="Index">Its index.</param>
/// <param name="Name">Its name.</param>
/// <param name="Type">Its type without the SHT_ prefix (PROGBITS, RELA, NOTE …).</param>
/// <param name="Flags">Its flags as readelf letters (W A X M S I L O G T C E).</param>
/// <param name="Size">sh_size.</param>
/// <param name="Alignment">sh_addralign.</param>
/// <param name="Relocations">How many relocations apply to it (0 for a relocation section itself).</param>
public sealed record SectionInfo(int Index, string Name, string Type, string Flags, ulong Size, ulong Alignment, int Relocations);

/// <summary>Where a pointer in the payload points before loading: a symbol (or section) and an addend.</summary>
public sealed record SymbolReference(string Symbol, long Addend)
{
    /// <inheritdoc/>
    public override string ToString() => Addend switch
    {
        0 => Symbol,
        > 0 => string.Create(CultureInfo.InvariantCulture, $"{Symbol}+0x{Addend:x}"),
        _ => string.Create(CultureInfo.InvariantCulture, $"{Symbol}-0x{-Addend:x}"),
    };
}

/// <summary>One entry of <c>.livepatch.funcs</c> as the file holds it.</summary>
/// <param name="Index">Its index.</param>
/// <param name="Name">The old function's name (read through the name pointer's relocation), or null.</param>
/// <param name="New">What new_addr is relocated to; null when new_addr is not relocated.</param>
/// <param name="Entry">The raw entry (pointers as stored: 0 where a relocation fills them).</param>
public sealed record FunctionInfo(int Index, string? Name, SymbolReference? New, LivepatchFunc Entry)
{
    /// <summary>True for a NOP patch (no replacement).</summary>
    public bool IsNop => New == null && Entry.NewAddr == 0;
}

/// <summary>One hook section and the functions its pointers are relocated to.</summary>
public sealed record HookInfo(string Section, IReadOnlyList<string> Functions)
{
    /// <summary>The hook's kind: the section name after <c>.livepatch.hooks.</c>.</summary>
    public string Kind => Section[(Section.LastIndexOf('.') + 1)..];
}

/// <summary>
/// What a payload file holds, read without loading it (so a payload any hypervisor would refuse can still be
/// described): sections, functions, dependencies and build-id, hooks, metadata, relocation counts. The
/// reading is our ELF reader's: any format error is reported, never thrown.
/// </summary>
public sealed class PayloadInfo
{
    /// <summary>The file name shown.</summary>
    public required string FileName { get; init; }
    /// <summary>The file's size.</summary>
    public required int Size { get; init; }
    /// <summary>The machine.</summary>
    public required ElfMachine Machine { get; init; }
    /// <summary>Every section but the null one.</summary>
    public required IReadOnlyList<SectionInfo> Sections { get; init; }
    /// <summary>The <c>livepatch_func</c> version of <c>.livepatch.funcs</c> (0 when there is none).</summary>
    public required byte FuncsVersion { get; init; }
    /// <summary>The function entries.</summary>
    public required IReadOnlyList<FunctionInfo> Functions { get; init; }
    /// <summary>The payload's own build-id (<c>.note.gnu.build-id</c>); empty when missing.</summary>
    public required ReadOnlyMemory<byte> BuildId { get; init; }
    /// <summary><c>.livepatch.depends</c>'s build-id; empty when missing.</summary>
    public required ReadOnlyMemory<byte> Depends { get; init; }
    /// <summary><c>.livepatch.xen_depends</c>'s build-id; empty when missing.</summary>
    public required ReadOnlyMemory<byte> XenDepends { get; init; }
    /// <summary>The hook sections.</summary>
    public required IReadOnlyList<HookInfo> Hooks { get; init; }
    /// <summary><c>.modinfo</c>'s strings.</summary>
    public required IReadOnlyList<string> Metadata { get; init; }
    /// <summary>Relocation counts by type name, in name order.</summary>
    public required IReadOnlyList<(string Type, int Count)> RelocationTypes { get; init; }
    /// <summary>What looked wrong while reading (the payload may still be described).</summary>
    public required IReadOnlyList<string> Problems { get; init; }

    /// <summary>Every relocation.</summary>
    public int RelocationCount => RelocationTypes.Sum(t => t.Count);

    // DefinedIn: the section the symbol is defined in (-1 when undefined or absolute).
    private sealed record Reloc(ulong Offset, SymbolReference Target, int DefinedIn, ulong SymbolValue, bool IsSectionSymbol);

    /// <summary>Reads <paramref name="data"/>; fails only when it is not an ELF file this reader can read.</summary>
    public static bool TryRead(string fileName, ReadOnlyMemory<byte> data, [NotNullWhen(true)] out PayloadInfo? info, [NotNullWhen(false)] out string? error)
    {
        info = null;
        if (!ElfFile.TryRead(data, out var file, out var elfError))
        {
            error = $"not an ELF file this tool can read: {elfError}";
            return false;
        }
        var problems = new List<string>();
        int n = file.SectionCount;
        var names = new string[n];
        for (int i = 1; i < n; i++)
            names[i] = file.TryGetSectionName(i, out string? name, out _) ? name : $"[{i}]";

        // Symbols, by index: names for relocation targets (a section symbol goes by its section's name).
        int symtabIndex = file.FindSymbolTable();
        ElfSymbolTable? symtab = null;
        if (symtabIndex < 0)
            problems.Add("no symbol table (Xen refuses that: EINVAL)");
        else if (!file.TryGetSymbolTable(symtabIndex, out symtab, out var e))
            problems.Add($"the symbol table cannot be read: {e}");
        var functionsAt = new Dictionary<(int, ulong), string>();
        if (symtab != null)
        {
            for (int k = 1; k < symtab.Count; k++)
            {
                var s = symtab[k];
                if (s.Type is ElfSymbolType.Func or ElfSymbolType.Object && !s.HasReservedSectionIndex && symtab.TryGetName(s, out string? sn, out _))
                    functionsAt.TryAdd((s.SectionIndex, s.Value), sn);
            }
        }

        // Relocations, by the section they apply to.
        var relocs = new Dictionary<int, List<Reloc>>();
        var byType = new SortedDictionary<string, int>(StringComparer.Ordinal);
        for (int i = 1; i < n; i++)
        {
            var sh = file.SectionHeaders[i];
            if (sh.Type is not (ElfSectionType.Rela or ElfSectionType.Rel))
                continue;
            if (!file.TryGetRelocationTable(i, out var table, out var re))
            {
                problems.Add($"relocation section {names[i]} cannot be read: {re}");
                continue;
            }
            int target = (int)Math.Min(sh.Info, int.MaxValue);
            if (!relocs.TryGetValue(target, out var list))
                relocs[target] = list = [];
            for (int k = 0; k < table.Count; k++)
            {
                var r = table[k];
                string typeName = RelocationName(file.Header.Machine, r.Type);
                byType[typeName] = byType.GetValueOrDefault(typeName) + 1;
                var sym = default(ElfSymbol);
                string symName = r.SymbolIndex == 0 ? "0" : $"symbol {r.SymbolIndex}";
                if (symtab != null && r.SymbolIndex != 0 && symtab.TryGetSymbol(r.SymbolIndex, out sym, out _))
                {
                    symName = sym.Type == ElfSymbolType.Section && sym.SectionIndex < n ? names[sym.SectionIndex]
                        : symtab.TryGetName(sym, out string? sn, out _) ? sn : symName;
                }
                int definedIn = r.SymbolIndex != 0 && !sym.HasReservedSectionIndex && sym.SectionIndex != 0 ? sym.SectionIndex : -1;
                list.Add(new Reloc(r.Offset, new SymbolReference(symName, r.Addend), definedIn, sym.Value, sym.Type == ElfSymbolType.Section));
            }
        }

        var sections = new List<SectionInfo>();
        for (int i = 1; i < n; i++)
        {
            var sh = file.SectionHeaders[i];
            sections.Add(new SectionInfo(i, names[i], TypeName(sh.Type), FlagLetters(sh.Flags), sh.Size, sh.AddressAlign, relocs.TryGetValue(i, out var l) ? l.Count : 0));
        }

        ReadOnlyMemory<byte> Contents(string section)
        {
            int i = file.FindSection(section);
            return i > 0 && file.SectionHeaders[i].Type != ElfSectionType.NoBits && file.TryGetSectionData(i, out var d, out _) ? d : ReadOnlyMemory<byte>.Empty;
        }
        SymbolReference? RelocAt(int section, ulong offset) =>
            relocs.TryGetValue(section, out var list) ? list.Find(r => r.Offset == offset) is { } r ? Named(r) : null : null;
        // A section symbol plus an addend that lands on a function names that function.
        SymbolReference Named(Reloc r) =>
            r.IsSectionSymbol && functionsAt.TryGetValue((r.DefinedIn, (ulong)r.Target.Addend), out string? f) ? new SymbolReference(f, 0) : r.Target;
        string? StringAt(int section, ulong offset)
        {
            var r = relocs.TryGetValue(section, out var list) ? list.Find(x => x.Offset == offset) : null;
            if (r == null)
                return null;
            ulong at = r.SymbolValue + (ulong)r.Target.Addend;
            if (r.DefinedIn < 0 || !file.TryGetSectionData(r.DefinedIn, out var d, out _) || at >= (ulong)d.Length)
                return $"<{r.Target}>";
            var span = d.Span[(int)at..];
            int end = span.IndexOf((byte)0);
            return Encoding.Latin1.GetString(end < 0 ? span : span[..end]);
        }

        // .livepatch.funcs
        var functions = new List<FunctionInfo>();
        byte version = 0;
        int funcsIndex = file.FindSection(PayloadSections.Funcs);
        var funcs = Contents(PayloadSections.Funcs);
        if (funcsIndex > 0 && funcs.Length <= LivepatchFunc.FieldLocations.Version)
        {
            if (!funcs.IsEmpty)
                problems.Add($"{PayloadSections.Funcs}: {funcs.Length} bytes is shorter than one entry (its version byte is at offset {LivepatchFunc.FieldLocations.Version})");
        }
        else if (funcsIndex > 0)
        {
            version = funcs.Span[LivepatchFunc.FieldLocations.Version];
            int size = version == 1 ? LivepatchFunc.SizeOf(1) : LivepatchFunc.SizeOf(2);
            if (version is not (1 or 2))
                problems.Add($"{PayloadSections.Funcs}: the first entry's version is {version} (1 and 2 exist); read as version 2");
            if (funcs.Length % size != 0)
                problems.Add($"{PayloadSections.Funcs}: {funcs.Length} bytes is not a whole number of {size}-byte entries");
            for (int k = 0; (k + 1) * size <= funcs.Length; k++)
            {
                ulong at = (ulong)(k * size);
                var entry = LivepatchFunc.Read(funcs.Span[(int)at..], version == 1 ? (byte)1 : (byte)2);
                functions.Add(new FunctionInfo(k, StringAt(funcsIndex, at + LivepatchFunc.FieldLocations.Name), RelocAt(funcsIndex, at + LivepatchFunc.FieldLocations.NewAddr), entry));
            }
        }

        var hooks = new List<HookInfo>();
        for (int i = 1; i < n; i++)
        {
            if (!names[i].StartsWith(".livepatch.hooks.", StringComparison.Ordinal))
                continue;
            // As many pointers as the file holds, whatever sh_size claims (SHT_NOBITS holds none).
            var list = new List<string>();
            if (file.TryGetSectionData(i, out var hookData, out var he))
            {
                for (int at = 0; at + 8 <= hookData.Length; at += 8)
                    list.Add(RelocAt(i, (ulong)at)?.ToString() ?? "0");
            }
            else
            {
                problems.Add($"{names[i]} cannot be read: {he}");
            }
            hooks.Add(new HookInfo(names[i], list));
        }

        var metadata = Encoding.UTF8.GetString(Contents(PayloadSections.ModInfo).Span).Split('\0').Where(s => s.Length > 0).ToList();
        info = new PayloadInfo
        {
            FileName = fileName,
            Size = data.Length,
            Machine = file.Header.Machine,
            Sections = sections,
            FuncsVersion = version,
            Functions = functions,
            BuildId = NoteBuildId(file, PayloadSections.BuildId, problems),
            Depends = NoteBuildId(file, PayloadSections.Depends, problems),
            XenDepends = NoteBuildId(file, PayloadSections.XenDepends, problems),
            Hooks = hooks,
            Metadata = metadata,
            RelocationTypes = byType.Select(kv => (kv.Key, kv.Value)).ToList(),
            Problems = problems,
        };
        error = null;
        return true;
    }

    private static ReadOnlyMemory<byte> NoteBuildId(ElfFile file, string section, List<string> problems)
    {
        int i = file.FindSection(section);
        if (i <= 0)
            return ReadOnlyMemory<byte>.Empty;
        var sh = file.SectionHeaders[i];
        if (!file.TryGetSectionData(i, out var data, out var e) ||
            !ElfFile.TryParseNotes(data, file.Layout.Encoding, ElfNote.AlignmentFor(sh.AddressAlign), out var notes, out e))
        {
            problems.Add($"{section} cannot be read as a note: {e}");
            return ReadOnlyMemory<byte>.Empty;
        }
        var note = notes.FirstOrDefault(x => x.IsGnuBuildId);
        if (note == null)
            problems.Add($"{section} holds no GNU build-id note");
        return note?.Descriptor ?? ReadOnlyMemory<byte>.Empty;
    }

    /// <summary>A relocation type's name for a machine (R_X86_64_64), or its number.</summary>
    public static string RelocationName(ElfMachine machine, uint type) => machine switch
    {
        ElfMachine.X86_64 => ((X86_64RelocationType)type).GetSpecName(),
        ElfMachine.AArch64 => ((AArch64RelocationType)type).GetSpecName(),
        _ => null,
    } ?? $"type {type}";

    private static string TypeName(ElfSectionType type) =>
        type.GetSpecName() is { } s ? (s.StartsWith("SHT_", StringComparison.Ordinal) ? s[4..] : s) : $"0x{(uint)type:x}";

    // readelf -S's key to flags.
    private static readonly (ElfSectionFlags Flag, char Letter)[] s_letters =
    [
        (ElfSectionFlags.Write, 'W'), (ElfSectionFlags.Alloc, 'A'), (ElfSectionFlags.ExecInstr, 'X'), (ElfSectionFlags.Merge, 'M'),
        (ElfSectionFlags.Strings, 'S'), (ElfSectionFlags.InfoLink, 'I'), (ElfSectionFlags.LinkOrder, 'L'), (ElfSectionFlags.OsNonConforming, 'O'),
        (ElfSectionFlags.Group, 'G'), (ElfSectionFlags.Tls, 'T'), (ElfSectionFlags.Compressed, 'C'), (ElfSectionFlags.Exclude, 'E'),
    ];

    /// <summary>Section flags as readelf's letters.</summary>
    public static string FlagLetters(ElfSectionFlags flags) => new(s_letters.Where(l => (flags & l.Flag) != 0).Select(l => l.Letter).ToArray());
}
