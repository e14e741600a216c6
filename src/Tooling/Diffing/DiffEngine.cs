using System.Globalization;
using Iced.Intel;
using XenLivepatch.Tooling.Sources;

namespace XenLivepatch.Tooling.Diffing;

/// <summary>The diff of one pair of objects: correlation, comparison, inclusion, refusals (see <see cref="ObjectDiff"/>).</summary>
internal sealed class DiffEngine
{
    private readonly DiffUnit _base;
    private readonly DiffUnit _patched;
    private readonly List<SpecialGroup> _baseGroups = [];
    private readonly List<SpecialGroup> _patchedGroups = [];
    private readonly List<DiffRefusal> _refusals = [];
    private readonly HashSet<string> _refusalKeys = new(StringComparer.Ordinal);
    private readonly List<string> _notes = [];
    private readonly HashSet<Entity> _included = new(ReferenceEqualityComparer.Instance);
    private readonly HashSet<UnitSection> _includedSections = new(ReferenceEqualityComparer.Instance);
    private readonly HashSet<SpecialGroup> _keptGroups = new(ReferenceEqualityComparer.Instance);
    private readonly SortedSet<string> _references = new(StringComparer.Ordinal);
    private readonly ContentKeys _keys = new();

    private readonly IReadOnlyList<SourcePatch> _patches;
    private int _lineOnly;

    public DiffEngine(DiffUnit original, DiffUnit patched, IReadOnlyList<SourcePatch> patches)
    {
        _base = original;
        _patched = patched;
        _patches = patches;
    }

    internal static string Hex(long v) => v < 0 ? "-0x" + (-v).ToString("x", CultureInfo.InvariantCulture) : "0x" + v.ToString("x", CultureInfo.InvariantCulture);

    public DiffResult Run()
    {
        foreach (var (u, groups) in new[] { (_base, _baseGroups), (_patched, _patchedGroups) })
        {
            if (SpecialSections.Parse(u, groups) is { } malformed)
                return new DiffResult { Outcome = DiffOutcome.Mismatched, Object = _patched.Name, Problem = new ToolingProblem($"{u.Name}: {malformed}", "is it an object of Xen's build? Xen's headers write these entries") };
        }
        Correlation.Run(_base, _patched);
        _keys.Sign(_base, _baseGroups);
        _keys.Sign(_patched, _patchedGroups);
        var comparison = new EntityComparison(_patches);
        comparison.Run(_patched);
        _lineOnly = comparison.LineOnly;
        Decide();
        CheckUnexplained();
        var output = new DiffOutput(_base, _patched, _included, _includedSections, _keptGroups);
        var changed = new List<DiffSymbol>();
        var added = new List<DiffSymbol>();
        var data = new List<DiffSymbol>();
        Report(changed, added, data, output);
        if (_refusals.Count > 0)
        {
            return new DiffResult
            {
                Outcome = DiffOutcome.Refused, Object = _patched.Name, SourceFile = _patched.SourceFile, Changed = changed, New = added, NewData = data,
                Refusals = _refusals, Notes = _notes, References = [.. _references],
            };
        }
        bool hooks = _includedSections.Any(s => s.Kind == SectionKind.Hooks);
        if (changed.Count == 0 && added.Count == 0 && data.Count == 0 && !hooks)
            return new DiffResult { Outcome = DiffOutcome.NothingToPatch, Object = _patched.Name, SourceFile = _patched.SourceFile, Notes = _notes };
        byte[] bytes = output.Write();
        return new DiffResult
        {
            Outcome = DiffOutcome.Changed, Object = _patched.Name, SourceFile = _patched.SourceFile, Output = bytes,
            Changed = changed, New = added, NewData = data, Notes = _notes, References = [.. _references],
        };
    }

    private void Refuse(string section, string? symbol, string reason)
    {
        if (_refusalKeys.Add(section + "\0" + symbol + "\0" + reason))
            _refusals.Add(new DiffRefusal(_patched.Name, section, symbol, reason));
    }

    // ---- what goes into the payload ----------------------------------------------------------------------

    private void Decide()
    {
        foreach (var e in _patched.Entities)
        {
            if (e.Section.Kind == SectionKind.Hooks || e.Status == DiffStatus.Same)
                continue;
            var k = e.Section.Kind;
            string what = e.Status == DiffStatus.New ? "new" : "changed";
            string sec = e.Section.Name;
            switch (k)
            {
                case SectionKind.Text:
                    if (e.Status == DiffStatus.Changed && !e.IsFunction)
                        Refuse(sec, e.Name, $"data inside code changed ({e.Reason})");
                    break;
                case SectionKind.InitText:
                    Refuse(sec, e.Name, e.Status == DiffStatus.New
                        ? "new __init code: it would run only at boot, which is over; a live patch cannot redo boot-time work"
                        : "changed __init code: it ran at boot and Xen has freed it; a live patch cannot redo boot-time work");
                    break;
                case SectionKind.EntryText:
                    Refuse(sec, e.Name, $"{what} assembly entry code: exception and system-call entry paths cannot be redirected by a live patch");
                    break;
                case SectionKind.InitData:
                    Refuse(sec, e.Name, e.Status == DiffStatus.New
                        ? "new __init data: only boot-time code would use it, and boot is over"
                        : $"changed __init data ({e.Reason}): it was used at boot and Xen has freed it");
                    break;
                case SectionKind.PerCpu:
                    Refuse(sec, e.Name, $"{what} per-CPU data: Xen's loader places no per-CPU data for a payload");
                    break;
                case SectionKind.Data when e.Status == DiffStatus.Changed:
                    Refuse(sec, e.Name, $"changed initial data of an existing variable ({e.Reason}): the running hypervisor's copy holds live state; a payload can only add new variables");
                    break;
                case SectionKind.ReadOnly when e.Status == DiffStatus.Changed && !e.IsLocal:
                    Refuse(sec, e.Name, $"changed global constant ({e.Reason}): functions of other objects may read it, and the payload cannot change the original");
                    break;
                case SectionKind.Unknown:
                    Refuse(sec, e.Name, $"{what} symbol in {sec}, a section the tool does not know how to carry into a payload");
                    break;
            }
        }
        foreach (var e in _patched.PatchTargets)
            IncludeEntity(e, e.Name);
        // New global functions and variables may be used by other objects of the patch.
        foreach (var e in _patched.Entities.Where(e => e.Status == DiffStatus.New && !e.IsLocal && e.Parent == null && e.Section.Kind is SectionKind.Text or SectionKind.Data or SectionKind.ReadOnly))
            IncludeEntity(e, e.Name);
        foreach (var s in _patched.Sections.Where(s => s.Kind == SectionKind.Hooks))
            IncludeSection(s, s.Name);
        foreach (var g in _patchedGroups)
        {
            if (g.Owner != null && _included.Contains(g.Owner) && g.Section.Kind is not (SectionKind.Fixup or SectionKind.AltReplacement))
                KeepGroup(g);
        }
    }

    private void IncludeEntity(Entity e, string who)
    {
        if (!_included.Add(e))
            return;
        foreach (var r in e.Section.RelocationsIn(e.Start, e.Size))
            IncludeTarget(r, e.Name);
        foreach (var c in e.Children)
            IncludeEntity(c, who);
        if (e.IsFunction)
        {
            foreach (var g in _patchedGroups.Where(g => ReferenceEquals(g.Owner, e) && g.Section.Kind is not (SectionKind.Fixup or SectionKind.AltReplacement)))
                KeepGroup(g);
        }
    }

    private void KeepGroup(SpecialGroup g)
    {
        if (!_keptGroups.Add(g))
            return;
        string who = g.Owner?.Name ?? g.Section.Name;
        if (g.Section.Kind == SectionKind.ExTablePre)
            Refuse(g.Section.Name, g.Owner?.Name, "uses the pre-exception table (.ex_table.pre), which only entry code uses and Xen's livepatch does not load for a payload");
        foreach (var r in g.Section.RelocationsIn(g.Start, g.Size))
            IncludeTarget(r, who);
        if (g.Chunk is { } chunk && _keptGroups.Add(chunk))
        {
            foreach (var r in chunk.Section.RelocationsIn(chunk.Start, chunk.Size))
                IncludeTarget(r, who);
        }
    }

    private void IncludeSection(UnitSection s, string who)
    {
        if (!_includedSections.Add(s))
            return;
        foreach (var r in s.Relocations)
            IncludeTarget(r, who);
    }

    private void IncludeTarget(UnitRelocation r, string who)
    {
        var t = r.Target;
        if (r.Symbol == null)
            return;
        if (t.Entity is { } e)
        {
            bool carried = e.Status != DiffStatus.Same || (e.Parent != null && _included.Contains(e.Parent));
            if (carried)
            {
                if (e.Section.Kind is SectionKind.Text or SectionKind.ReadOnly or SectionKind.Data)
                    IncludeEntity(e, who);
                return;
            }
            switch (e.Section.Kind)
            {
                case SectionKind.InitText or SectionKind.InitData:
                    Refuse(e.Section.Name, e.Name, $"{who} refers to it, but it is __init and Xen frees it after boot");
                    return;
                case SectionKind.Hooks:
                    return;
            }
            if (_patched.XenName(e) is { } name)
                _references.Add(name);
            else
                Refuse(e.Section.Name, e.Name, $"{who} refers to this static symbol, but the object has no STT_FILE symbol: Xen's symbol table names it file#{e.Name}");
            return;
        }
        if (t.Named is { } n)
        {
            if (n.Section != null && _patched.SectionOf(n.Section) is { Kind: SectionKind.InitText or SectionKind.InitData } init)
                Refuse(init.Name, n.Name, $"{who} refers to it, but it is __init and Xen frees it after boot");
            else if (_patched.XenLabel(n) is { } name)
                _references.Add(name);
            else
                Refuse(_patched.SectionOf(n.Section)?.Name ?? "?", n.Name, $"{who} refers to this static symbol, but the object has no STT_FILE symbol");
            return;
        }
        if (t.Section is not { } s)
            return;
        switch (s.Kind)
        {
            case SectionKind.Strings or SectionKind.Constants or SectionKind.ReadOnly when s.IsAnonymous:
                IncludeSection(s, who);
                return;
            case SectionKind.Fixup or SectionKind.AltReplacement:
                return;
            case SectionKind.Text or SectionKind.EntryText or SectionKind.InitText:
                Refuse(s.Name, null, $"{who} refers to code at {s.Name}+{Hex(t.Offset + t.Adjust)}, which no function symbol covers: the running hypervisor's copy cannot be found by name");
                return;
            case SectionKind.InitData:
                Refuse(s.Name, null, $"{who} refers to __init data at {s.Name}+{Hex(t.Offset + t.Adjust)}, which Xen frees after boot");
                return;
            case SectionKind.Unknown:
                Refuse(s.Name, null, $"{who} refers to {s.Name}, a section the tool does not know how to carry into a payload");
                return;
            default:
                Refuse(s.Name, null, $"{who} refers to {s.Name}+{Hex(t.Offset + t.Adjust)}, which no symbol names: the running hypervisor's copy cannot be found by name");
                return;
        }
    }

    // ---- changes nothing took in -------------------------------------------------------------------------

    /// <summary>Refuses changes outside the functions and objects: assembly without symbols, unknown sections, bytes between symbols.</summary>
    private void CheckUnexplained()
    {
        foreach (var p in _patched.Sections)
        {
            if (p.Kind is SectionKind.Table or SectionKind.Metadata or SectionKind.Hooks || SectionKinds.IsSpecial(p.Kind) ||
                p.Kind is SectionKind.Strings or SectionKind.Constants)
            {
                continue;
            }
            var b = _base.FindSection(p.Name);
            if (p.IsAnonymous)
            {
                if (p.Size == 0 || p.Kind == SectionKind.ReadOnly)
                    continue;
                bool same = b != null && b.IsAnonymous && _keys.SectionContentKey(b) == _keys.SectionContentKey(p);
                if (!same)
                    RefuseSection(p, b == null ? "new" : "changed", "");
                continue;
            }
            if (p.Kind == SectionKind.Unknown && !_refusals.Exists(r => r.Section == p.Name) && (b == null || _keys.SectionContentKey(b) != _keys.SectionContentKey(p)))
            {
                RefuseSection(p, b == null ? "new" : "changed", "");
                continue;
            }
            if (b != null && !b.IsAnonymous && GapKey(b) != GapKey(p))
                RefuseSection(p, "changed", " outside any function or object");
        }
        foreach (var g in _patchedGroups.Where(g => g.Section.Kind == SectionKind.ExTablePre && g.Owner?.Status != DiffStatus.Same && g.Owner != null && !_included.Contains(g.Owner)))
            Refuse(g.Section.Name, g.Owner!.Name, "its pre-exception table entries changed");
        int lineOnly = _patched.Entities.Count(e => e.Status == DiffStatus.Same && e.Twin != null && HasBugFrames(e) && BugFramesMoved(e));
        if (lineOnly > 0)
            _notes.Add($"{lineOnly} unchanged function{(lineOnly == 1 ? "" : "s")} only had line numbers of bug frames (WARN, BUG, ASSERT) move: not patched");
        if (_lineOnly > 0)
            _notes.Add($"{_lineOnly} function{(_lineOnly == 1 ? "" : "s")} only had __LINE__ arguments move with the patch's lines: not patched");
        foreach (var e in _patched.Entities.Where(e => e.Status == DiffStatus.New && e.Parent == null && !_included.Contains(e) && e.Section.Kind is SectionKind.Text or SectionKind.ReadOnly or SectionKind.Data))
            _notes.Add($"new {(e.IsFunction ? "function" : "object")} {e.Name} is not used by any changed function: left out");
    }

    private void RefuseSection(UnitSection p, string what, string where)
    {
        string reason = p.Kind switch
        {
            SectionKind.Text => $"{what} code{where} (assembly without function symbols): there is no function to patch",
            SectionKind.EntryText => $"{what} assembly entry code{where}: exception and system-call entry paths cannot be redirected by a live patch",
            SectionKind.InitText => $"{what} __init code{where}: it ran at boot and Xen has freed it",
            SectionKind.InitData => $"{what} __init data{where}: it was used at boot and Xen has freed it",
            SectionKind.PerCpu => $"{what} per-CPU data{where}: Xen's loader places no per-CPU data for a payload",
            SectionKind.Data => $"{what} data{where}: the running hypervisor's copy holds live state",
            _ => $"{what} section {p.Name}, which the tool does not know how to carry into a payload",
        };
        Refuse(p.Name, null, reason);
    }

    private bool HasBugFrames(Entity e) => _patchedGroups.Exists(g => ReferenceEquals(g.Owner, e) && g.Section.Kind == SectionKind.BugFrames);

    // True when some bug frame of the function (or its original) has a different line number.
    private bool BugFramesMoved(Entity p)
    {
        static List<long> Lines(IEnumerable<SpecialGroup> groups) => groups
            .SelectMany(g => g.Section.RelocationsIn(g.Start, g.Size).Select(r => r.Addend >> 24)).ToList();
        var a = Lines(_baseGroups.Where(g => ReferenceEquals(g.Owner, p.Twin) && g.Section.Kind == SectionKind.BugFrames));
        var b = Lines(_patchedGroups.Where(g => ReferenceEquals(g.Owner, p) && g.Section.Kind == SectionKind.BugFrames));
        return !a.SequenceEqual(b);
    }

    /// <summary>What a section holds outside its functions and objects, alignment padding left out.</summary>
    private string GapKey(UnitSection s)
    {
        if (s.IsNoBits)
            return "";
        var sb = new System.Text.StringBuilder();
        ulong at = 0;
        void Gap(ulong from, ulong to)
        {
            if (to <= from)
                return;
            var bytes = s.Bytes.Slice((int)from, (int)(to - from));
            if (!IsPadding(bytes, s.IsExec))
                sb.Append(Convert.ToHexString(bytes)).Append('/');
            foreach (var r in s.RelocationsIn(from, to - from))
                sb.Append(r.Type).Append(',').Append(r.Key).Append('/');
        }
        foreach (var e in s.Entities)
        {
            Gap(at, e.Start);
            at = Math.Max(at, e.Start + e.Size);
        }
        Gap(at, s.Size);
        return sb.ToString();
    }

    private static bool IsPadding(ReadOnlySpan<byte> bytes, bool code)
    {
        if (bytes.IndexOfAnyExcept((byte)0) < 0)
            return true;
        if (!code)
            return false;
        var decoder = Decoder.Create(64, new ByteArrayCodeReader(bytes.ToArray()));
        while (decoder.IP < (ulong)bytes.Length)
        {
            decoder.Decode(out var insn);
            if (insn.IsInvalid || insn.Mnemonic is not (Mnemonic.Nop or Mnemonic.Int3 or Mnemonic.Ud2))
                return false;
        }
        return true;
    }

    // ---- the report --------------------------------------------------------------------------------------

    private void Report(List<DiffSymbol> changed, List<DiffSymbol> added, List<DiffSymbol> data, DiffOutput output)
    {
        foreach (var e in _patched.PatchTargets.Where(_included.Contains))
            changed.Add(new DiffSymbol(e.Name, _patched.XenName(e.Twin!) ?? e.Name, e.Section.Name, e.Reason ?? "changed"));
        foreach (var e in _patched.Entities.Where(_included.Contains))
        {
            if (e.Parent != null)
            {
                if (e.IsFunction)
                    added.Add(new DiffSymbol(e.Name, output.OutName(e) ?? "", e.Section.Name, $"cold part of {e.Parent.Name}, carried with it"));
                continue;
            }
            if (e.Status == DiffStatus.New)
                (e.IsFunction ? added : data).Add(new DiffSymbol(e.Name, output.OutName(e) ?? "", e.Section.Name, "new"));
            else if (e.Status == DiffStatus.Changed && !e.IsFunction)
                data.Add(new DiffSymbol(e.Name, output.OutName(e) ?? "", e.Section.Name, $"new copy of a changed constant ({e.Reason}); only the changed functions use it"));
        }
    }
}
