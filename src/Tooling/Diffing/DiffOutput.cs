using XenLivepatch.Elf;

namespace XenLivepatch.Tooling.Diffing;

/// <summary>
/// The diff's output: a relocatable object holding what the diff included (changed and new functions, new data,
/// kept special entries), named as the running hypervisor names their originals, with every other reference
/// made external by the hypervisor's name.
/// </summary>
internal sealed class DiffOutput
{
    private readonly DiffUnit _base;
    private readonly DiffUnit _patched;
    private readonly HashSet<Entity> _included;
    private readonly HashSet<UnitSection> _includedSections;
    private readonly HashSet<SpecialGroup> _keptGroups;
    private Dictionary<Entity, string?>? _outNames;

    public DiffOutput(DiffUnit original, DiffUnit patched, HashSet<Entity> included, HashSet<UnitSection> includedSections, HashSet<SpecialGroup> keptGroups)
    {
        _base = original;
        _patched = patched;
        _included = included;
        _includedSections = includedSections;
        _keptGroups = keptGroups;
    }

    /// <summary>
    /// The name an included entity has in the output: a changed function the name of the function it replaces
    /// in the running hypervisor (global, so that <c>build</c> pairs them); a new function or variable its own
    /// (file#name for a static one, renamed if the hypervisor already has that name); a cold part or a copy of
    /// a changed constant none (it is reached through its section, and a name the hypervisor has would clash).
    /// </summary>
    public string? OutName(Entity e)
    {
        _outNames ??= OutNames();
        return _outNames.TryGetValue(e, out string? n) ? n : null;
    }

    private Dictionary<Entity, string?> OutNames()
    {
        var taken = new HashSet<string>(StringComparer.Ordinal);
        foreach (var b in _base.Entities)
        {
            string? xen = _base.XenName(b);
            if (xen != null)
                taken.Add(xen);
        }
        var names = new Dictionary<Entity, string?>(ReferenceEqualityComparer.Instance);
        foreach (var e in _patched.PatchTargets.Where(_included.Contains))
            names[e] = _patched.XenName(e.Twin!);
        foreach (var e in _patched.Entities.Where(e => _included.Contains(e) && !names.ContainsKey(e)))
        {
            if (e.Status != DiffStatus.New || e.Parent != null)
            {
                names[e] = null;
                continue;
            }
            string? n = _patched.XenName(e);
            if (n != null && e.IsLocal && taken.Contains(n))
            {
                int k = 1;
                while (taken.Contains($"{n}.lp{k}"))
                    k++;
                n = $"{n}.lp{k}";
            }
            if (n != null)
                taken.Add(n);
            names[e] = n;
        }
        return names;
    }

    private sealed record Piece(ulong OldStart, ulong Size, ulong NewStart);

    private readonly record struct Range(ulong Start, ulong Size);

    /// <summary>
    /// The ranges to copy for the kept entries or chunks of one section, in order, overlapping ones merged:
    /// several alternatives may share a replacement's start with different lengths (an empty one among them),
    /// and a chunk may lie inside another.
    /// </summary>
    private static List<Range> Ranges(IEnumerable<SpecialGroup> groups)
    {
        var result = new List<Range>();
        foreach (var g in groups.OrderBy(g => g.Start).ThenByDescending(g => g.Size))
        {
            if (result.Count > 0 && g.Start <= result[^1].Start + result[^1].Size)
            {
                var last = result[^1];
                ulong end = Math.Max(last.Start + last.Size, g.Start + g.Size);
                result[^1] = new Range(last.Start, end - last.Start);
                continue;
            }
            result.Add(new Range(g.Start, g.Size));
        }
        return result;
    }

    /// <summary>The output object's bytes.</summary>
    public byte[] Write()
    {
        var obj = new ElfObject(ElfClass.Elf64, ElfEncoding.LittleEndian, _patched.Object.Machine);
        var symtab = obj.GetOrAddSymbolTable();
        if (_patched.SourceFile != null)
            symtab.Add(new ElfObjectSymbol(_patched.SourceFile) { Type = ElfSymbolType.File, Binding = ElfSymbolBinding.Local, SpecialSection = ElfSpecialSection.Abs });
        var outOf = new Dictionary<Entity, ElfObjectSection>(ReferenceEqualityComparer.Instance);
        var outSym = new Dictionary<Entity, ElfObjectSymbol>(ReferenceEqualityComparer.Instance);
        var outSection = new Dictionary<UnitSection, (ElfObjectSection Out, List<Piece> Pieces)>(ReferenceEqualityComparer.Instance);
        var externals = new Dictionary<string, ElfObjectSymbol>(StringComparer.Ordinal);
        var emit = new List<(ElfObjectSection Out, UnitSection From, List<Piece> Pieces)>();

        ElfObjectSection NewSection(UnitSection from, string name, ReadOnlySpan<byte> data, ulong noBits)
        {
            var s = new ElfObjectSection(name, from.Section.Type)
            {
                Flags = from.Section.Flags & ~ElfSectionFlags.Group,
                Alignment = Math.Max(1, from.Section.Alignment),
                EntrySize = from.Section.EntrySize,
            };
            if (from.IsNoBits)
                s.NoBitsSize = noBits;
            else
                s.Data = data.ToArray();
            // Before the tables, which GetOrAddSymbolTable put first.
            obj.Sections.Insert(obj.Sections.IndexOf(symtab), s);
            return s;
        }

        foreach (var sec in _patched.Sections)
        {
            if (_includedSections.Contains(sec))
            {
                var o = NewSection(sec, sec.Name, sec.Bytes, sec.Size);
                var pieces = new List<Piece> { new(0, sec.Size, 0) };
                outSection[sec] = (o, pieces);
                emit.Add((o, sec, pieces));
                continue;
            }
            foreach (var e in sec.Entities.Where(_included.Contains))
            {
                string name = e.OwnsSection ? sec.Name : sec.Name + "." + e.Name;
                var o = NewSection(sec, name, sec.IsNoBits ? default : sec.Bytes.Slice((int)e.Start, (int)e.Size), e.Size);
                outOf[e] = o;
                emit.Add((o, sec, [new Piece(e.Start, e.Size, 0)]));
                if (OutName(e) is { } n)
                {
                    bool patchTarget = e.Status == DiffStatus.Changed;
                    var binding = patchTarget ? ElfSymbolBinding.Global : e.Symbol.Binding;
                    outSym[e] = symtab.Add(new ElfObjectSymbol(n) { Type = e.Symbol.Type, Binding = binding, Other = e.Symbol.Other, Size = e.Size, Section = o });
                }
            }
        }

        // Special sections: the kept entries, and the chunks (.fixup, replacements) they point at.
        foreach (var sec in _patched.Sections.Where(s => SectionKinds.IsSpecial(s.Kind)).OrderBy(s => s.Kind is SectionKind.Fixup or SectionKind.AltReplacement ? 0 : 1))
        {
            var kept = Ranges(_keptGroups.Where(g => ReferenceEquals(g.Section, sec)));
            if (kept.Count == 0)
                continue;
            var pieces = new List<Piece>();
            var bytes = new MemoryStream();
            foreach (var g in kept)
            {
                // Code chunks keep their alignment within the section as the assembler laid it out.
                if (sec.IsExec)
                {
                    ulong align = Math.Max(1, sec.Section.Alignment);
                    while ((ulong)bytes.Length % align != g.Start % align)
                        bytes.WriteByte(0xcc);
                }
                pieces.Add(new Piece(g.Start, g.Size, (ulong)bytes.Length));
                bytes.Write(sec.Bytes.Slice((int)g.Start, (int)g.Size));
            }
            var o = NewSection(sec, sec.Name, bytes.ToArray(), 0);
            outSection[sec] = (o, pieces);
            emit.Add((o, sec, pieces));
        }

        ElfObjectSymbol External(string name)
        {
            if (!externals.TryGetValue(name, out var s))
            {
                s = symtab.Add(new ElfObjectSymbol(name) { Binding = ElfSymbolBinding.Global, Type = ElfSymbolType.NoType, SpecialSection = ElfSpecialSection.Undefined });
                externals[name] = s;
            }
            return s;
        }

        (ElfObjectSymbol? Symbol, long Addend) Map(UnitSection from, UnitRelocation r)
        {
            var s = r.Symbol;
            if (s == null)
                return (null, r.Addend);
            if (s.Section == null)
            {
                if (s.SpecialSection == ElfSpecialSection.Undefined)
                    return (External(s.Name), r.Addend);
                return (symtab.Add(new ElfObjectSymbol(s.Name) { Type = s.Type, Binding = s.Binding, Value = s.Value, Size = s.Size, SpecialSection = s.SpecialSection }), r.Addend);
            }
            long at = (long)s.Value + r.Addend;
            var t = r.Target;
            if (t.Entity is { } e)
            {
                long delta = at - (long)e.Start;
                if (outOf.TryGetValue(e, out var o))
                    return (outSym.TryGetValue(e, out var named) ? named : obj.GetOrAddSectionSymbol(o), delta);
                return (External(_patched.XenName(e)!), delta);
            }
            if (t.Named is { } n)
                return (External(_patched.XenLabel(n)!), at - (long)n.Value);
            if (t.Section is { } ts && outSection.TryGetValue(ts, out var placed))
            {
                long reached = (from.Kind == SectionKind.BugFrames && _patched.LineInAddend ? DiffUnit.StripLine(at) : at) + t.Adjust;
                var piece = placed.Pieces.Find(p => reached >= (long)p.OldStart && reached <= (long)(p.OldStart + p.Size)) ?? placed.Pieces[0];
                return (obj.GetOrAddSectionSymbol(placed.Out), at - (long)piece.OldStart + (long)piece.NewStart);
            }
            throw new InvalidOperationException($"{_patched.Name}: a relocation of the payload reaches {s.Name}+{r.Addend}, which was neither carried nor named");
        }

        foreach (var (o, from, pieces) in emit)
        {
            var list = new List<ElfObjectRelocation>();
            foreach (var p in pieces)
            {
                foreach (var r in from.RelocationsIn(p.OldStart, p.Size))
                {
                    var (sym, addend) = Map(from, r);
                    list.Add(new ElfObjectRelocation(r.Offset - p.OldStart + p.NewStart, r.Type, sym, addend));
                }
            }
            if (list.Count == 0)
                continue;
            var rela = obj.GetOrAddRelocations(o, rela: true);
            rela.Entries.AddRange(list);
        }
        var problems = obj.Validate();
        if (problems.Count > 0)
            throw new InvalidOperationException($"{_patched.Name}: the diff's output is not a valid object: {string.Join("; ", problems)}");
        return obj.Write();
    }
}
