using Iced.Intel;
using XenLivepatch.Elf;

namespace XenLivepatch.Tooling.Diffing;

/// <summary>A section of one of the two objects, as the diff sees it.</summary>
internal sealed class UnitSection
{
    public UnitSection(ElfObjectSection section, SectionKind kind, int ordinal)
    {
        Section = section;
        Kind = kind;
        Ordinal = ordinal;
    }

    public ElfObjectSection Section { get; }
    public SectionKind Kind { get; }
    /// <summary>Index among the object's sections (stable order for output).</summary>
    public int Ordinal { get; }
    public string Name => Section.Name;
    public ulong Size => Section.Size;
    public bool IsExec => (Section.Flags & ElfSectionFlags.ExecInstr) != 0;
    public bool IsWritable => (Section.Flags & ElfSectionFlags.Write) != 0;
    public bool IsNoBits => Section.Type == ElfSectionType.NoBits;
    public ReadOnlySpan<byte> Bytes => Section.Data.Span;

    /// <summary>Relocations of the section, sorted by offset.</summary>
    public List<UnitRelocation> Relocations { get; } = [];

    /// <summary>The functions and objects defined in it, by start.</summary>
    public List<Entity> Entities { get; } = [];

    /// <summary>Named positions (any symbol with a name) defined in it, by value: what a reference can be named by.</summary>
    public List<ElfObjectSymbol> Labels { get; } = [];

    /// <summary>True for a section without functions or objects: carried whole when referred to.</summary>
    public bool IsAnonymous => Entities.Count == 0;

    /// <summary>A member of a COMDAT or other group.</summary>
    public bool Grouped { get; set; }

    /// <summary>The key this section's contents compare by (anonymous sections), once computed.</summary>
    public string? ContentKey { get; set; }

    /// <summary>Instruction ends by start offset (exec sections), for the PC-relative addend's adjustment.</summary>
    public int[]? InstructionStarts { get; set; }
    public int[]? InstructionEnds { get; set; }

    /// <summary>The relocations at offsets in [<paramref name="start"/>, <paramref name="start"/> + <paramref name="size"/>), by offset.</summary>
    public IEnumerable<UnitRelocation> RelocationsIn(ulong start, ulong size)
    {
        var list = Relocations;
        int lo = 0, hi = list.Count;
        while (lo < hi)
        {
            int mid = (lo + hi) >> 1;
            if (list[mid].Offset < start)
                lo = mid + 1;
            else
                hi = mid;
        }
        for (int i = lo; i < list.Count && list[i].Offset < start + size; i++)
            yield return list[i];
    }

    public override string ToString() => Name;
}

/// <summary>A relocation with its target resolved to a function, object or section position.</summary>
internal sealed class UnitRelocation
{
    public required ulong Offset { get; init; }
    public required uint Type { get; init; }
    public required ElfObjectSymbol? Symbol { get; init; }
    public required long Addend { get; init; }
    /// <summary>What the reference reaches, computed from the symbol and the addend.</summary>
    public Target Target { get; set; }
    /// <summary>The comparison key (names after correlation), once computed.</summary>
    public string? Key { get; set; }
}

/// <summary>
/// Where a relocation points: an entity (function or object) plus delta, a position in a section, or a symbol
/// referred to by name (undefined, or a named label such as an assembly entry point).
/// <see cref="Offset"/>: for an entity, S + A relative to the entity's start; for a section, S + A
/// (section-relative); for a named symbol, A relative to it. <see cref="Adjust"/> is what a PC-relative field
/// adds to reach the referenced byte (the instruction's end minus the field's place), 0 for absolute and data
/// fields.
/// </summary>
internal readonly record struct Target(Entity? Entity, UnitSection? Section, long Offset, ElfObjectSymbol? Named, long Adjust);

/// <summary>A function or object (STT_FUNC or STT_OBJECT with a section): what changes, is patched or is carried.</summary>
internal sealed class Entity
{
    public Entity(ElfObjectSymbol symbol, UnitSection section, ulong start, ulong size)
    {
        Symbol = symbol;
        Section = section;
        Start = start;
        Size = size;
        Name = symbol.Name;
    }

    public ElfObjectSymbol Symbol { get; }
    public UnitSection Section { get; }
    public ulong Start { get; }
    public ulong Size { get; }
    /// <summary>The name it correlates by: the original object's name for a renamed clone or static local.</summary>
    public string Name { get; set; }
    public bool IsFunction => Symbol.Type is ElfSymbolType.Func or ElfSymbolType.GnuIFunc;
    public bool IsLocal => Symbol.IsLocal;
    /// <summary>The whole section is this entity (-ffunction-sections, -fdata-sections).</summary>
    public bool OwnsSection => Start == 0 && Size == Section.Size && Section.Entities.Count == 1;
    public Entity? Twin { get; set; }
    public DiffStatus Status { get; set; }
    /// <summary>Why it changed (for the report).</summary>
    public string? Reason { get; set; }
    /// <summary>The function this is a cold part of (gcc's <c>foo.cold</c>), or null.</summary>
    public Entity? Parent { get; set; }
    public List<Entity> Children { get; } = [];
    /// <summary>Signature of the special-section entries (bug frames, exception table, alternatives) attached to it.</summary>
    public string SpecialKey { get; set; } = "";

    public override string ToString() => Name;
}

internal enum DiffStatus
{
    Same,
    Changed,
    New,
}

/// <summary>
/// One of the two objects, analysed: sections classified, functions and objects found with their ranges,
/// every relocation resolved to what it reaches (section symbols replaced by the function or object at the
/// referenced byte, as the compiler's references to local symbols become section-relative).
/// </summary>
internal sealed class DiffUnit
{
    private readonly Dictionary<ElfObjectSection, UnitSection> _bySection = new(ReferenceEqualityComparer.Instance);
    private readonly Dictionary<ElfObjectSymbol, Entity> _bySymbol = new(ReferenceEqualityComparer.Instance);

    private DiffUnit(string name, ElfObject obj)
    {
        Name = name;
        Object = obj;
    }

    public string Name { get; }
    public ElfObject Object { get; }
    /// <summary>x86's bug frames keep the line number in their displacements' high bits (the relocation's addend);
    /// arm64's in a field of their own (<see cref="SpecialSections"/>).</summary>
    public bool LineInAddend => Object.Machine == ElfMachine.X86_64;
    /// <summary>The STT_FILE symbol's name: the source file, as Xen's symbol table prefixes local names with it.</summary>
    public string? SourceFile { get; private set; }
    public List<UnitSection> Sections { get; } = [];
    public List<Entity> Entities { get; } = [];
    public List<ElfObjectSymbol> Symbols { get; } = [];

    /// <summary>The name the running hypervisor's symbol table has for an entity of the patched object (file#name for a static one).</summary>
    public string? XenName(Entity e) => e.IsLocal ? (SourceFile is { } f ? f + "#" + e.Name : null) : e.Name;

    public string? XenLabel(ElfObjectSymbol s) => s.IsLocal ? (SourceFile is { } f ? f + "#" + s.Name : null) : s.Name;

    /// <summary>Patch targets: changed functions that run after boot (a cold part goes with its function).</summary>
    public IEnumerable<Entity> PatchTargets => Entities.Where(e => e.IsFunction && e.Status == DiffStatus.Changed && e.Parent == null && e.Section.Kind == SectionKind.Text);

    public UnitSection? SectionOf(ElfObjectSection? s) => s != null && _bySection.TryGetValue(s, out var u) ? u : null;

    public Entity? EntityOf(ElfObjectSymbol s) => _bySymbol.TryGetValue(s, out var e) ? e : null;

    public UnitSection? FindSection(string name) => Sections.Find(s => s.Name == name);

    public static DiffUnit Analyse(string name, ElfObject obj)
    {
        var u = new DiffUnit(name, obj);
        int ordinal = 0;
        foreach (var s in obj.Sections)
        {
            var us = new UnitSection(s, SectionKinds.Of(s), ordinal++);
            u.Sections.Add(us);
            u._bySection[s] = us;
        }
        foreach (var g in obj.Sections.OfType<ElfGroupSection>())
        {
            foreach (var m in g.Members)
            {
                if (u.SectionOf(m) is { } ms)
                    ms.Grouped = true;
            }
        }
        var symtab = obj.SymbolTable;
        if (symtab != null)
        {
            foreach (var sym in symtab.Symbols)
            {
                u.Symbols.Add(sym);
                if (sym.Type == ElfSymbolType.File)
                {
                    u.SourceFile ??= sym.Name;
                    continue;
                }
                if (u.SectionOf(sym.Section) is not { } sec || sym.Type == ElfSymbolType.Section)
                    continue;
                if (sym.Name.Length > 0)
                    sec.Labels.Add(sym);
                if (sym.Type is ElfSymbolType.Func or ElfSymbolType.GnuIFunc or ElfSymbolType.Object && (sec.Section.Flags & ElfSectionFlags.Alloc) != 0)
                {
                    ulong size = sym.Size;
                    if (sym.Value > sec.Size)
                        continue;
                    size = Math.Min(size, sec.Size - sym.Value);
                    var e = new Entity(sym, sec, sym.Value, size);
                    sec.Entities.Add(e);
                    u.Entities.Add(e);
                    u._bySymbol[sym] = e;
                }
            }
        }
        foreach (var sec in u.Sections)
        {
            sec.Entities.Sort((a, b) => a.Start.CompareTo(b.Start));
            sec.Labels.Sort((a, b) => a.Value.CompareTo(b.Value));
        }
        // gcc's cold parts: foo.cold (and foo.part.0.cold) belong to foo.
        foreach (var e in u.Entities)
        {
            if (!e.IsFunction || !e.Name.EndsWith(".cold", StringComparison.Ordinal))
                continue;
            string parentName = e.Name[..^".cold".Length];
            var parent = u.Entities.Find(p => p.IsFunction && p.Name == parentName);
            if (parent != null)
            {
                e.Parent = parent;
                parent.Children.Add(e);
            }
        }
        foreach (var rel in obj.Sections.OfType<ElfRelocationSection>())
        {
            if (u.SectionOf(rel.Target) is not { } target || target.Kind is SectionKind.Table or SectionKind.Metadata)
                continue;
            foreach (var r in rel.Entries)
                target.Relocations.Add(new UnitRelocation { Offset = r.Offset, Type = r.Type, Symbol = r.Symbol, Addend = r.Addend });
            target.Relocations.Sort((a, b) => a.Offset.CompareTo(b.Offset));
        }
        foreach (var sec in u.Sections)
        {
            if (sec.Relocations.Count == 0)
                continue;
            if (sec.IsExec && obj.Machine == ElfMachine.X86_64)
                Decode(sec);
            foreach (var r in sec.Relocations)
                r.Target = u.Resolve(sec, r);
        }
        return u;
    }

    // Instruction boundaries of an x86-64 code section (a linear sweep; a byte that does not decode is one
    // "instruction", so data inside code cannot derail what follows for long).
    private static void Decode(UnitSection sec)
    {
        var code = sec.Bytes.ToArray();
        var starts = new List<int>(code.Length / 3);
        var ends = new List<int>(code.Length / 3);
        var decoder = Decoder.Create(64, new ByteArrayCodeReader(code));
        decoder.IP = 0;
        while (decoder.IP < (ulong)code.Length)
        {
            int at = (int)decoder.IP;
            decoder.Decode(out var insn);
            int end = insn.IsInvalid ? at + 1 : (int)insn.NextIP;
            if (insn.IsInvalid)
                decoder.IP = (ulong)end;
            starts.Add(at);
            ends.Add(end);
        }
        sec.InstructionStarts = [.. starts];
        sec.InstructionEnds = [.. ends];
    }

    /// <summary>What a PC-relative field at <paramref name="offset"/> adds to reach its target: the distance from the field to the end of its instruction.</summary>
    private static long PcAdjust(UnitSection sec, ulong offset)
    {
        if (sec.InstructionStarts is not { } starts)
            return 0;
        int i = Array.BinarySearch(starts, (int)offset);
        if (i < 0)
            i = ~i - 1;
        if (i < 0)
            return 4;
        int end = sec.InstructionEnds![i];
        return end > (int)offset ? end - (long)offset : 4;
    }

    public static bool IsPcRelative(uint type) => (X86_64RelocationType)type is X86_64RelocationType.R_X86_64_PC32 or X86_64RelocationType.R_X86_64_PLT32 or
        X86_64RelocationType.R_X86_64_GOTPCREL or X86_64RelocationType.R_X86_64_GOTPCRELX or X86_64RelocationType.R_X86_64_REX_GOTPCRELX or
        X86_64RelocationType.R_X86_64_PC64 or X86_64RelocationType.R_X86_64_PC16 or X86_64RelocationType.R_X86_64_PC8;

    /// <summary>The addend with what a bug frame stores in its high bits (the line number) taken out.</summary>
    public static long StripLine(long addend) => (addend << 40) >> 40;

    private Target Resolve(UnitSection sec, UnitRelocation r) => ResolveAddend(sec, r, sec.Kind == SectionKind.BugFrames && LineInAddend ? StripLine(r.Addend) : r.Addend);

    /// <summary>Resolves a reference with <paramref name="addend"/> (which for bug frames excludes the line bits).</summary>
    public Target ResolveAddend(UnitSection sec, UnitRelocation r, long addend)
    {
        var sym = r.Symbol;
        if (sym == null)
            return default;
        long adjust = sec.IsExec && IsPcRelative(r.Type) ? PcAdjust(sec, r.Offset) : 0;
        if (sym.Section == null)
            return sym.SpecialSection == ElfSpecialSection.Undefined ? new Target(null, null, addend, sym, adjust) : default;
        var target = SectionOf(sym.Section);
        if (target == null)
            return default;
        if (sym.Type != ElfSymbolType.Section && EntityOf(sym) is { } direct)
            return new Target(direct, target, (long)sym.Value + addend - (long)direct.Start, null, adjust);
        // A named label that is no function or object (an assembly entry point): referred to by its name.
        if (sym.Type != ElfSymbolType.Section && sym.Name.Length > 0 && !sym.Name.StartsWith(".L", StringComparison.Ordinal) &&
            target.Kind is not (SectionKind.Strings or SectionKind.Constants))
        {
            return new Target(null, target, addend, sym, adjust);
        }
        long at = (long)sym.Value + addend;
        long reached = at + adjust;
        if (target.Kind is not (SectionKind.Strings or SectionKind.Constants) && Cover(target, reached) is { } e)
            return new Target(e, target, at - (long)e.Start, null, adjust);
        // A section of one function or object (-ffunction-sections, -fdata-sections): every reference into it is
        // a reference to it, even one whose addend lies outside it (a jump table's entries are relative to the table).
        if (target.Entities is [{ OwnsSection: true } only])
            return new Target(only, target, at - (long)only.Start, null, adjust);
        return new Target(null, target, at, null, adjust);
    }

    /// <summary>The entity that holds byte <paramref name="at"/> (or ends exactly there, as gcc refers to the end of an array).</summary>
    public static Entity? Cover(UnitSection sec, long at)
    {
        Entity? endsHere = null;
        foreach (var e in sec.Entities)
        {
            if (at >= (long)e.Start && at < (long)(e.Start + e.Size))
                return e;
            if (at == (long)(e.Start + e.Size) && e.Size > 0)
                endsHere = e;
        }
        return endsHere;
    }
}
