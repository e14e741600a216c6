using System.Diagnostics.CodeAnalysis;
using XenLivepatch.Elf;

namespace XenLivepatch.Tooling;

/// <summary>One relocatable object to link: a name for messages (its file name) and its contents.</summary>
public sealed record LinkInput(string Name, ElfFile File);

/// <summary>The result of <see cref="ObjectLinker"/>: one relocatable object, editable, plus where its symbols came from.</summary>
public sealed class LinkedObject
{
    internal LinkedObject(ElfObject obj, ElfSymbolTableSection symbols, Dictionary<ElfObjectSymbol, string> origin, List<string> notes)
    {
        Object = obj;
        Symbols = symbols;
        _origin = origin;
        Notes = notes;
    }

    private readonly Dictionary<ElfObjectSymbol, string> _origin;

    /// <summary>The linked object (ELF64, little-endian, the inputs' machine).</summary>
    public ElfObject Object { get; }

    /// <summary>Its symbol table.</summary>
    public ElfSymbolTableSection Symbols { get; }

    /// <summary>Remarks on what the link did that a user may want to know.</summary>
    public IReadOnlyList<string> Notes { get; }

    /// <summary>The object a symbol came from: its definer, or the first object that used it when undefined.</summary>
    public string OriginOf(ElfObjectSymbol symbol) => _origin.TryGetValue(symbol, out string? o) ? o : "the payload";
}

/// <summary>
/// Links relocatable objects into one, as <c>ld -r</c> does: sections of the same name are concatenated (each
/// piece at its alignment) into one output section, in the order the inputs first name them; section groups
/// stay separate and a COMDAT group seen twice is kept once; local symbols are kept per object; a global
/// symbol defined in one object and used in another becomes one defined symbol (a strong definition wins
/// over a weak one; two strong ones are an error); relocations move with their sections, and those against
/// section symbols have their addends shifted by the piece's offset. Inputs are ELF64 little-endian RELA
/// objects of one machine, which is what livepatch payloads are on x86-64 and arm64.
/// </summary>
public static class ObjectLinker
{
    private sealed class OutputSection(ElfObjectSection section)
    {
        public ElfObjectSection Section { get; } = section;
        public List<(ReadOnlyMemory<byte> Data, ulong Offset, ulong Size)> Pieces { get; } = [];
        public ulong Size { get; set; }
        public bool Conflict { get; set; }
    }

    // The GNU property note is merged by ld (feature bits ANDed); identical notes are kept once here, and
    // differing ones dropped: a payload's loader never reads them.
    private const string GnuPropertyNote = ".note.gnu.property";

    // The largest section alignment the ELF writer keeps (2^30): far more than a payload region's pages.
    private const ulong MaxAlignment = 1UL << 30;

    /// <summary>Links <paramref name="inputs"/> (in command-line order) for <paramref name="machine"/>.</summary>
    public static bool TryLink(IReadOnlyList<LinkInput> inputs, ElfMachine machine, [NotNullWhen(true)] out LinkedObject? linked, [NotNullWhen(false)] out ToolingProblem? problem)
    {
        ArgumentNullException.ThrowIfNull(inputs);
        linked = null;
        var output = new ElfObject(ElfClass.Elf64, ElfEncoding.LittleEndian, machine);
        var notes = new List<string>();
        var models = new List<(LinkInput Input, ElfObject Model)>();
        foreach (var input in inputs)
        {
            if (!TryModel(input, machine, out var model, out problem))
                return false;
            models.Add((input, model));
        }

        // Pass 1: sections.
        var order = new List<object>();   // OutputSection or ElfGroupSection (input groups, kept), in first-seen order
        var byName = new Dictionary<string, OutputSection>(StringComparer.Ordinal);
        var placed = new Dictionary<ElfObjectSection, (OutputSection Out, ulong Offset)>(ReferenceEqualityComparer.Instance);
        var keptGroups = new List<(LinkInput Input, ElfGroupSection Group)>();
        var comdats = new HashSet<string>(StringComparer.Ordinal);
        foreach (var (input, model) in models)
        {
            var discarded = new HashSet<ElfObjectSection>(ReferenceEqualityComparer.Instance);
            var grouped = new HashSet<ElfObjectSection>(ReferenceEqualityComparer.Instance);
            foreach (var g in model.Sections.OfType<ElfGroupSection>())
            {
                // GRP_COMDAT: one copy of the group is kept, the first.
                if ((g.GroupFlags & 1) != 0 && !comdats.Add(g.Signature?.Name ?? ""))
                {
                    discarded.UnionWith(g.Members);
                    continue;
                }
                grouped.UnionWith(g.Members);
                keptGroups.Add((input, g));
                order.Add(g);
            }
            foreach (var s in model.Sections)
            {
                if (s is ElfSymbolTableSection or ElfRelocationSection or ElfGroupSection or ElfStringTableSection { Generated: true } || discarded.Contains(s))
                    continue;
                // The payload gets its own build-id; one an object brings would be a second, stale one.
                if (s.Name == ".note.gnu.build-id")
                {
                    notes.Add($"{input.Name}: its .note.gnu.build-id is dropped (the payload gets its own)");
                    continue;
                }
                OutputSection? o;
                if (grouped.Contains(s) || !byName.TryGetValue(s.Name, out o))
                {
                    o = new OutputSection(new ElfObjectSection(s.Name, s.Type) { Flags = s.Flags, Alignment = s.Alignment, EntrySize = s.EntrySize });
                    if (!grouped.Contains(s))
                        byName[s.Name] = o;
                    order.Add(o);
                }
                else if (s.Name == GnuPropertyNote)
                {
                    if (!o.Pieces[0].Data.Span.SequenceEqual(s.Data.Span))
                        o.Conflict = true;
                    placed[s] = (o, 0);
                    continue;
                }
                else
                {
                    Merge(o.Section, s);
                }
                ulong align = Math.Max(1, s.Alignment);
                ulong offset = (o.Size + align - 1) & ~(align - 1);
                // o.Size is at most the limit and align at most MaxAlignment (TryModel): the sums cannot wrap.
                if (s.Size > Abi.Livepatch.MaxPayloadSize || offset > Abi.Livepatch.MaxPayloadSize - s.Size)
                {
                    problem = new ToolingProblem($"{input.Name}: section {s.Name} ({s.Size} bytes) makes the payload's {s.Name} larger than {Abi.Livepatch.MaxPayloadSize} bytes, the most Xen takes",
                        "split the change into smaller payloads, or check that the object is the one gcc -c made");
                    return false;
                }
                o.Pieces.Add((s.Type == ElfSectionType.NoBits ? ReadOnlyMemory<byte>.Empty : s.Data, offset, s.Size));
                o.Size = offset + s.Size;
                placed[s] = (o, offset);
            }
        }
        // Links between sections (SHF_LINK_ORDER and the like) follow the sections.
        foreach (var (s, (o, _)) in placed)
        {
            if (s.Link != null && placed.TryGetValue(s.Link, out var l))
                o.Section.Link = l.Out.Section;
            if (s.InfoSection != null && placed.TryGetValue(s.InfoSection, out var i))
                o.Section.InfoSection = i.Out.Section;
        }

        // Pass 2: symbols. Section symbols first, one per output section, as ld writes them.
        var symtab = output.GetOrAddSymbolTable();
        var sectionSymbols = new Dictionary<ElfObjectSection, ElfObjectSymbol>(ReferenceEqualityComparer.Instance);
        foreach (var o in order.OfType<OutputSection>())
            sectionSymbols[o.Section] = symtab.Add(new ElfObjectSymbol("") { Type = ElfSymbolType.Section, Binding = ElfSymbolBinding.Local, Section = o.Section });
        var origin = new Dictionary<ElfObjectSymbol, string>(ReferenceEqualityComparer.Instance);
        var globals = new Dictionary<string, ElfObjectSymbol>(StringComparer.Ordinal);
        var maps = new List<Dictionary<ElfObjectSymbol, (ElfObjectSymbol Symbol, long Delta)>>();
        foreach (var (input, model) in models)
        {
            var map = new Dictionary<ElfObjectSymbol, (ElfObjectSymbol, long)>(ReferenceEqualityComparer.Instance);
            maps.Add(map);
            foreach (var sym in model.SymbolTable?.Symbols ?? [])
            {
                (OutputSection Out, ulong Offset) at = default;
                bool inPlacedSection = sym.Section != null && placed.TryGetValue(sym.Section, out at);
                if (sym.Type == ElfSymbolType.Section)
                {
                    if (inPlacedSection)
                        map[sym] = (sectionSymbols[at.Out!.Section], (long)at.Offset);
                    continue;
                }
                if (sym.IsLocal)
                {
                    if (sym.Section != null && !inPlacedSection)
                        continue;
                    var copy = Copy(sym, inPlacedSection ? at : null);
                    symtab.Add(copy);
                    origin[copy] = input.Name;
                    map[sym] = (copy, 0);
                    continue;
                }
                if (sym.Section == null && sym.SpecialSection == ElfSpecialSection.Common)
                {
                    problem = new ToolingProblem($"{input.Name}: {sym.Name} is a common symbol",
                        "compile with -fno-common: Xen refuses SHN_COMMON symbols (EINVAL)");
                    return false;
                }
                // A definition in a discarded COMDAT copy defers to the kept copy.
                bool defines = inPlacedSection || (sym.Section == null && sym.SpecialSection == ElfSpecialSection.Abs);
                if (!globals.TryGetValue(sym.Name, out var g))
                {
                    g = new ElfObjectSymbol(sym.Name) { Binding = sym.Binding, Type = sym.Type, Other = sym.Other };
                    if (defines)
                        Define(g, sym, inPlacedSection ? at : null);
                    symtab.Add(g);
                    globals[sym.Name] = g;
                    origin[g] = input.Name;
                }
                else if (defines)
                {
                    bool defined = g.Section != null || g.SpecialSection == ElfSpecialSection.Abs;
                    if (defined && g.Binding != ElfSymbolBinding.Weak && sym.Binding != ElfSymbolBinding.Weak)
                    {
                        problem = new ToolingProblem($"multiple definition of {sym.Name}: in {origin[g]} and in {input.Name}",
                            "keep one definition and make the others static, or leave one object out");
                        return false;
                    }
                    if (!defined || (g.Binding == ElfSymbolBinding.Weak && sym.Binding != ElfSymbolBinding.Weak))
                    {
                        var visibility = Stricter(g.Visibility, sym.Visibility);
                        Define(g, sym, inPlacedSection ? at : null);
                        g.Visibility = visibility;
                        origin[g] = input.Name;
                    }
                    else
                    {
                        g.Visibility = Stricter(g.Visibility, sym.Visibility);
                    }
                }
                else
                {
                    g.Visibility = Stricter(g.Visibility, sym.Visibility);
                    if (g.Section == null && g.SpecialSection == ElfSpecialSection.Undefined && sym.Binding != ElfSymbolBinding.Weak)
                        g.Binding = ElfSymbolBinding.Global;
                }
                map[sym] = (g, 0);
            }
        }

        // Pass 3: relocations, then the groups kept.
        var relocations = new Dictionary<ElfObjectSection, ElfRelocationSection>(ReferenceEqualityComparer.Instance);
        for (int k = 0; k < models.Count; k++)
        {
            var (input, model) = models[k];
            foreach (var rel in model.Sections.OfType<ElfRelocationSection>())
            {
                if (rel.Target == null)
                {
                    problem = new ToolingProblem($"{input.Name}: relocation section {rel.Name} names no section to relocate (sh_info 0)",
                        "rebuild the object with gcc or as; Xen faults on such a section");
                    return false;
                }
                if (!placed.TryGetValue(rel.Target, out var at))
                    continue;
                if (!rel.IsRela)
                {
                    problem = new ToolingProblem($"{input.Name}: {rel.Name} holds SHT_REL relocations",
                        "Xen's x86-64 and arm64 loaders take SHT_RELA only: build the object for x86-64 or arm64 with gcc");
                    return false;
                }
                if (!relocations.TryGetValue(at.Out.Section, out var outRel))
                {
                    outRel = new ElfRelocationSection(".rela" + at.Out.Section.Name, rela: true, at.Out.Section, symtab) { Alignment = 8 };
                    relocations[at.Out.Section] = outRel;
                }
                foreach (var e in rel.Entries)
                {
                    ElfObjectSymbol? target = null;
                    long delta = 0;
                    if (e.Symbol != null && !maps[k].TryGetValue(e.Symbol, out (ElfObjectSymbol, long) m))
                    {
                        problem = new ToolingProblem($"{input.Name}: a relocation of {rel.Target.Name} at 0x{e.Offset:x} refers to {Describe(e.Symbol)}, which is in a discarded section",
                            "make the object refer to the kept copy of that group, or link it without the duplicate");
                        return false;
                    }
                    if (e.Symbol != null)
                        (target, delta) = maps[k][e.Symbol];
                    outRel.Entries.Add(new ElfObjectRelocation(e.Offset + at.Offset, e.Type, target, e.Addend + delta));
                }
            }
        }
        var groups = new Dictionary<ElfGroupSection, ElfGroupSection>(ReferenceEqualityComparer.Instance);
        foreach (var (input, g) in keptGroups)
        {
            int k = models.FindIndex(m => ReferenceEquals(m.Input, input));
            var og = new ElfGroupSection(g.Name, symtab) { GroupFlags = g.GroupFlags };
            if (g.Signature != null && maps[k].TryGetValue(g.Signature, out var sig))
                og.Signature = sig.Symbol;
            og.Members.AddRange(g.Members.Where(placed.ContainsKey).Select(m => placed[m].Out.Section));
            groups[g] = og;
        }

        // Contents, and the section order: groups and sections as first named, each followed by its relocations.
        output.Sections.Clear();
        foreach (object item in order)
        {
            if (item is ElfGroupSection g)
            {
                if (groups[g].Signature != null)
                    output.Sections.Add(groups[g]);
                continue;
            }
            var o = (OutputSection)item;
            if (o.Conflict)
            {
                notes.Add($"the objects' {o.Section.Name} notes differ; the payload has none (Xen does not read it)");
                symtab.Symbols.RemoveAll(s => ReferenceEquals(s.Section, o.Section));
                continue;
            }
            Fill(o);
            output.Sections.Add(o.Section);
            if (relocations.TryGetValue(o.Section, out var r))
                output.Sections.Add(r);
        }
        output.Sections.Add(symtab);
        output.Sections.Add(symtab.Strings);
        linked = new LinkedObject(output, symtab, origin, notes);
        problem = null;
        return true;
    }

    private static bool TryModel(LinkInput input, ElfMachine machine, [NotNullWhen(true)] out ElfObject? model, [NotNullWhen(false)] out ToolingProblem? problem)
    {
        model = null;
        var h = input.File.Header;
        if (h.Type != ElfType.Relocatable)
        {
            problem = new ToolingProblem($"{input.Name}: not a relocatable object (e_type {h.Type.GetSpecName() ?? h.Type.ToString()})",
                "give the .o files that gcc -c made, not a linked program or library");
            return false;
        }
        if (h.Class != ElfClass.Elf64 || h.Encoding != ElfEncoding.LittleEndian || h.Machine != machine)
        {
            problem = new ToolingProblem($"{input.Name}: built for {Describe(h.Machine, h.Class, h.Encoding)}, but the hypervisor is {Describe(machine, ElfClass.Elf64, ElfEncoding.LittleEndian)}",
                machine == ElfMachine.AArch64 ? "compile it with aarch64-linux-gnu-gcc" : "compile it with gcc for x86-64");
            return false;
        }
        if (!ElfObject.TryFromFile(input.File, out model, out var error))
        {
            problem = new ToolingProblem($"{input.Name}: malformed object: {error}", "rebuild it with gcc -c");
            return false;
        }
        foreach (var s in model.Sections)
        {
            // Xen refuses such a section (EOPNOTSUPP), and no placement can honour it.
            if (s.Alignment != 0 && (s.Alignment & (s.Alignment - 1)) != 0)
            {
                problem = new ToolingProblem($"{input.Name}: section {s.Name}: alignment {s.Alignment} is not a power of two", "rebuild it with gcc -c");
                return false;
            }
            if (s.Alignment > MaxAlignment)
            {
                problem = new ToolingProblem($"{input.Name}: section {s.Name}: alignment {s.Alignment} is larger than a payload can have ({MaxAlignment})", "rebuild it with gcc -c");
                return false;
            }
        }
        problem = null;
        return true;
    }

    private static string Describe(ElfMachine machine, ElfClass elfClass, ElfEncoding encoding) =>
        $"{(machine == ElfMachine.X86_64 ? "x86-64" : machine == ElfMachine.AArch64 ? "arm64" : machine.GetSpecName() ?? $"machine {(ushort)machine}")} " +
        $"(ELF{(elfClass == ElfClass.Elf64 ? "64" : "32")}, {(encoding == ElfEncoding.LittleEndian ? "little" : "big")}-endian)";

    private static string Describe(ElfObjectSymbol s) => s.Type == ElfSymbolType.Section ? $"section {s.Section?.Name}" : $"symbol {s.Name}";

    // Two pieces of one output section: the flags that both allow, the larger alignment.
    private static void Merge(ElfObjectSection into, ElfObjectSection piece)
    {
        const ElfSectionFlags mergeable = ElfSectionFlags.Merge | ElfSectionFlags.Strings;
        var keep = into.Flags & piece.Flags & mergeable;
        into.Flags = ((into.Flags | piece.Flags) & ~mergeable) | keep;
        if (into.EntrySize != piece.EntrySize)
        {
            into.EntrySize = 0;
            into.Flags &= ~mergeable;
        }
        into.Alignment = Math.Max(into.Alignment, piece.Alignment);
        // SHT_NOBITS next to contents becomes zero-filled contents.
        if (into.Type == ElfSectionType.NoBits && piece.Type != ElfSectionType.NoBits)
            into.Type = piece.Type;
    }

    private static void Fill(OutputSection o)
    {
        if (o.Section.Type == ElfSectionType.NoBits)
        {
            o.Section.NoBitsSize = o.Size;
            return;
        }
        var data = new byte[o.Size];
        foreach (var (piece, offset, _) in o.Pieces)
            piece.Span.CopyTo(data.AsSpan((int)offset));
        o.Section.Data = data;
    }

    private static ElfObjectSymbol Copy(ElfObjectSymbol s, (OutputSection Out, ulong Offset)? at) => new(s.Name)
    {
        Value = at is { } p ? s.Value + p.Offset : s.Value,
        Size = s.Size,
        Type = s.Type,
        Binding = s.Binding,
        Other = s.Other,
        Section = at?.Out.Section,
        SpecialSection = at == null ? s.SpecialSection : ElfSpecialSection.Undefined,
    };

    private static void Define(ElfObjectSymbol g, ElfObjectSymbol s, (OutputSection Out, ulong Offset)? at)
    {
        g.Value = at is { } p ? s.Value + p.Offset : s.Value;
        g.Size = s.Size;
        g.Type = s.Type;
        g.Binding = s.Binding;
        g.Other = s.Other;
        g.Section = at?.Out.Section;
        g.SpecialSection = at == null ? s.SpecialSection : ElfSpecialSection.Undefined;
    }

    // ELF gABI, "Symbol Visibility": the most constraining visibility wins (internal, hidden, protected, default).
    private static ElfSymbolVisibility Stricter(ElfSymbolVisibility a, ElfSymbolVisibility b)
    {
        static int Rank(ElfSymbolVisibility v) => v switch
        {
            ElfSymbolVisibility.Internal => 3,
            ElfSymbolVisibility.Hidden => 2,
            ElfSymbolVisibility.Protected => 1,
            _ => 0,
        };
        return Rank(a) >= Rank(b) ? a : b;
    }
}
