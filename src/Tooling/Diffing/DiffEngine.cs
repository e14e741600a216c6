using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using System.Text.RegularExpressions;
using Iced.Intel;
using XenLivepatch.Tooling.Sources;

namespace XenLivepatch.Tooling.Diffing;

/// <summary>The diff of one pair of objects: correlation, comparison, inclusion, refusals (see <see cref="ObjectDiff"/>).</summary>
internal sealed partial class DiffEngine
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

    private readonly IReadOnlyList<SourcePatch> _patches;
    private int _lineOnly;

    public DiffEngine(DiffUnit original, DiffUnit patched, IReadOnlyList<SourcePatch> patches)
    {
        _base = original;
        _patched = patched;
        _patches = patches;
    }

    private static string Hex(long v) => v < 0 ? "-0x" + (-v).ToString("x", CultureInfo.InvariantCulture) : "0x" + v.ToString("x", CultureInfo.InvariantCulture);

    public DiffResult Run()
    {
        foreach (var (u, groups) in new[] { (_base, _baseGroups), (_patched, _patchedGroups) })
        {
            if (SpecialSections.Parse(u, groups) is { } malformed)
                return new DiffResult { Outcome = DiffOutcome.Mismatched, Object = _patched.Name, Problem = new ToolingProblem($"{u.Name}: {malformed}", "is it an object of Xen's build? Xen's headers write these entries") };
        }
        Correlate();
        ComputeKeys(_base, _baseGroups);
        ComputeKeys(_patched, _patchedGroups);
        Compare();
        Decide();
        CheckUnexplained();
        var changed = new List<DiffSymbol>();
        var added = new List<DiffSymbol>();
        var data = new List<DiffSymbol>();
        Report(changed, added, data);
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
        byte[] output = Write();
        return new DiffResult
        {
            Outcome = DiffOutcome.Changed, Object = _patched.Name, SourceFile = _patched.SourceFile, Output = output,
            Changed = changed, New = added, NewData = data, Notes = _notes, References = [.. _references],
        };
    }

    private void Refuse(string section, string? symbol, string reason)
    {
        if (_refusalKeys.Add(section + "\0" + symbol + "\0" + reason))
            _refusals.Add(new DiffRefusal(_patched.Name, section, symbol, reason));
    }

    // ---- correlation -------------------------------------------------------------------------------------

    [GeneratedRegex(@"\.\d+")]
    private static partial Regex NumberSuffix();

    [GeneratedRegex(@"^.+\.\d+$")]
    private static partial Regex StaticLocalName();

    /// <summary>The name with gcc's numbers taken out: <c>foo.isra.3</c> and <c>foo.isra.7</c> compare equal.</summary>
    private static string Unnumbered(string name) => NumberSuffix().Replace(name, ".");

    private static bool IsStaticLocal(Entity e) => e.IsLocal && !e.IsFunction && StaticLocalName().IsMatch(e.Name);

    private static bool Correlatable(Entity e) => e.Section.Kind != SectionKind.Hooks;

    private void Correlate()
    {
        // gcc's clones carry numbers that change between builds: name the patched one as the original's.
        var baseNames = new HashSet<string>(_base.Entities.Select(e => e.Name), StringComparer.Ordinal);
        var patchedNames = new HashSet<string>(_patched.Entities.Select(e => e.Name), StringComparer.Ordinal);
        var claimed = new HashSet<Entity>(ReferenceEqualityComparer.Instance);
        foreach (var p in _patched.Entities.Where(e => e.IsFunction && !baseNames.Contains(e.Name) && NumberSuffix().IsMatch(e.Name)))
        {
            string key = Unnumbered(p.Name);
            var b = _base.Entities.Find(x => x.IsFunction && !patchedNames.Contains(x.Name) && !claimed.Contains(x) && Unnumbered(x.Name) == key);
            if (b == null)
                continue;
            claimed.Add(b);
            p.Name = b.Name;
        }

        // By name, static locals aside.
        var byName = new Dictionary<string, Entity>(StringComparer.Ordinal);
        foreach (var b in _base.Entities.Where(e => Correlatable(e) && !IsStaticLocal(e)))
            byName.TryAdd(Key(b), b);
        foreach (var p in _patched.Entities.Where(e => Correlatable(e) && !IsStaticLocal(e)))
        {
            if (byName.Remove(Key(p), out var b))
                Twin(b, p);
        }

        // Static locals (name.N): gcc numbers them per object, so the number may change. The twin is the
        // variable of the same name that the twin of a function using the original uses.
        foreach (var b in _base.Entities.Where(IsStaticLocal))
        {
            string stem = Unnumbered(b.Name);
            Entity? found = null;
            foreach (var user in Users(_base, b))
            {
                if (user.Twin == null)
                    continue;
                foreach (var r in RelocationsIn(user.Twin.Section, user.Twin.Start, user.Twin.Size))
                {
                    if (r.Target.Entity is { } t && t.Twin == null && IsStaticLocal(t) && Unnumbered(t.Name) == stem)
                    {
                        found = t;
                        break;
                    }
                }
                if (found != null)
                    break;
            }
            if (found == null)
                continue;
            found.Name = b.Name;
            Twin(b, found);
        }
    }

    private static string Key(Entity e) => (e.IsFunction ? "f:" : "o:") + e.Name;

    private static void Twin(Entity b, Entity p)
    {
        b.Twin = p;
        p.Twin = b;
    }

    /// <summary>The entities whose relocations reach <paramref name="target"/>.</summary>
    private static IEnumerable<Entity> Users(DiffUnit u, Entity target)
    {
        foreach (var s in u.Sections)
        {
            foreach (var r in s.Relocations)
            {
                if (!ReferenceEquals(r.Target.Entity, target))
                    continue;
                if (DiffUnit.Cover(s, (long)r.Offset) is { } user && !ReferenceEquals(user, target))
                    yield return user;
            }
        }
    }

    internal static IEnumerable<UnitRelocation> RelocationsIn(UnitSection s, ulong start, ulong size)
    {
        var list = s.Relocations;
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

    // ---- keys --------------------------------------------------------------------------------------------

    private readonly Dictionary<Entity, string> _contentKeys = new(ReferenceEqualityComparer.Instance);
    private readonly HashSet<object> _inProgress = new(ReferenceEqualityComparer.Instance);

    private void ComputeKeys(DiffUnit u, List<SpecialGroup> groups)
    {
        foreach (var s in u.Sections)
        {
            foreach (var r in s.Relocations)
                r.Key = KeyOf(r);
        }
        SpecialSections.Sign(groups, RangeKey, u.Object.Machine);
    }

    /// <summary>What a relocation reaches, in terms both objects share: names, texts, contents.</summary>
    private string KeyOf(UnitRelocation r)
    {
        var t = r.Target;
        if (r.Symbol == null)
            return "0+" + Hex(r.Addend);
        if (t.Entity is { } e)
        {
            string k = "e:" + e.Name;
            if (!e.IsFunction && e.Section.Kind == SectionKind.ReadOnly)
                k += "#" + EntityContentKey(e);
            return k + "+" + Hex(t.Offset);
        }
        if (t.Named is { } n)
            return (n.Section == null ? "u:" : "n:") + n.Name + "+" + Hex(t.Offset);
        if (t.Section is not { } s)
            return "?";
        long at = t.Offset + t.Adjust;
        switch (s.Kind)
        {
            case SectionKind.Strings when at >= 0 && at < (long)s.Size:
            {
                var bytes = s.Bytes[(int)at..];
                int nul = bytes.IndexOf((byte)0);
                return "str:" + Convert.ToHexString(nul < 0 ? bytes : bytes[..nul]) + "-" + t.Adjust.ToString(CultureInfo.InvariantCulture);
            }
            case SectionKind.Constants when at >= 0 && at < (long)s.Size:
            {
                long entry = Math.Max(1, (long)s.Section.EntrySize);
                long start = at - at % entry;
                int length = (int)Math.Min(entry, (long)s.Size - start);
                return "cst:" + Convert.ToHexString(s.Bytes.Slice((int)start, length)) + "@" + (at - start).ToString(CultureInfo.InvariantCulture) + "-" + t.Adjust.ToString(CultureInfo.InvariantCulture);
            }
            case SectionKind.Fixup or SectionKind.AltReplacement:
                // The chunk's contents are part of the entry's key (SpecialSections.Sign); its place is not.
                return "chunk:" + s.Name;
        }
        if (s.IsAnonymous)
            return "s:" + SectionContentKey(s) + "+" + Hex(t.Offset);
        return "s:" + s.Name + "@" + Hex(t.Offset);
    }

    private string EntityContentKey(Entity e)
    {
        if (_contentKeys.TryGetValue(e, out string? k))
            return k;
        if (!_inProgress.Add(e))
            return "cycle";
        k = RangeKey(e.Section, e.Start, e.Size);
        _inProgress.Remove(e);
        _contentKeys[e] = k;
        return k;
    }

    private string SectionContentKey(UnitSection s)
    {
        if (s.ContentKey != null)
            return s.ContentKey;
        if (!_inProgress.Add(s))
            return "cycle";
        s.ContentKey = RangeKey(s, 0, s.Size);
        _inProgress.Remove(s);
        return s.ContentKey;
    }

    /// <summary>A digest of a range: its bytes and its relocations' offsets, types and keys.</summary>
    private string RangeKey(UnitSection s, ulong start, ulong size)
    {
        var sb = new StringBuilder();
        if (s.IsNoBits)
            sb.Append("nobits:").Append(size);
        else
            sb.Append(Convert.ToHexString(s.Bytes.Slice((int)start, (int)size)));
        foreach (var r in RelocationsIn(s, start, size))
            sb.Append('|').Append(r.Offset - start).Append(',').Append(r.Type).Append(',').Append(r.Key ?? KeyOf(r));
        return Convert.ToHexString(SHA256.HashData(Encoding.UTF8.GetBytes(sb.ToString())))[..24];
    }

    // ---- comparison --------------------------------------------------------------------------------------

    private void Compare()
    {
        foreach (var p in _patched.Entities)
        {
            if (p.Twin is not { } b)
            {
                p.Status = DiffStatus.New;
                p.Reason = "new";
                continue;
            }
            string? why = Difference(b, p);
            p.Status = why == null ? DiffStatus.Same : DiffStatus.Changed;
            p.Reason = why;
        }
        // A cold part and its function are one: a change in either changes both.
        foreach (var p in _patched.Entities.Where(e => e.Parent != null && e.Status != DiffStatus.Same))
        {
            var parent = p.Parent!;
            if (parent.Status == DiffStatus.Same)
            {
                parent.Status = DiffStatus.Changed;
                parent.Reason = $"its cold part {p.Name} {(p.Status == DiffStatus.New ? "is new" : "changed")}";
            }
        }
    }

    /// <summary>Why <paramref name="p"/> differs from its original <paramref name="b"/>, or null when it does not.</summary>
    private string? Difference(Entity b, Entity p)
    {
        if (b.Section.Kind != p.Section.Kind)
            return $"moved from {b.Section.Name} to {p.Section.Name}";
        if (b.Size != p.Size)
            return p.IsFunction ? $"code differs ({b.Size} bytes, now {p.Size})" : $"size {b.Size}, now {p.Size}";
        if (b.Section.IsNoBits != p.Section.IsNoBits)
            return p.Section.IsNoBits ? "initial value differs (now zero)" : "initial value differs (was zero)";
        string? references = ReferenceDifference(b, p);
        if (!p.Section.IsNoBits && !b.Section.Bytes.Slice((int)b.Start, (int)b.Size).SequenceEqual(p.Section.Bytes.Slice((int)p.Start, (int)p.Size)))
        {
            if (!p.IsFunction)
                return "initial value differs";
            if (references != null || !p.Section.IsExec)
                return "code differs";
            if (!LinesOnly(b, p, out string? why))
                return why;
            _lineOnly++;
        }
        return references;
    }

    private static string? ReferenceDifference(Entity b, Entity p)
    {
        var rb = RelocationsIn(b.Section, b.Start, b.Size).ToList();
        var rp = RelocationsIn(p.Section, p.Start, p.Size).ToList();
        for (int i = 0; i < Math.Max(rb.Count, rp.Count); i++)
        {
            if (i >= rb.Count || i >= rp.Count)
                return "references differ";
            var x = rb[i];
            var y = rp[i];
            if (x.Offset - b.Start != y.Offset - p.Start || x.Type != y.Type)
                return "references differ";
            if (x.Key != y.Key)
                return DescribeReference(x, y);
        }
        if (b.SpecialKey != p.SpecialKey)
            return "its bug frames, exception-table entries or alternatives differ";
        return null;
    }

    /// <summary>
    /// True when the two functions differ only in instruction immediates that the source patches' line moves
    /// explain: each old value is a line that a patched file's line moved to the new value (<c>__LINE__</c>
    /// passed as an argument, as <c>domain_crash()</c> does). Without the patches nothing is explained.
    /// </summary>
    private bool LinesOnly(Entity b, Entity p, out string? why)
    {
        why = "code differs";
        if (_patches.Count == 0)
            return false;
        byte[] x = b.Section.Bytes.Slice((int)b.Start, (int)b.Size).ToArray();
        byte[] y = p.Section.Bytes.Slice((int)p.Start, (int)p.Size).ToArray();
        var dx = Iced.Intel.Decoder.Create(64, new ByteArrayCodeReader(x));
        var dy = Iced.Intel.Decoder.Create(64, new ByteArrayCodeReader(y));
        while (dx.IP < (ulong)x.Length)
        {
            int at = (int)dx.IP;
            dx.Decode(out var ix);
            dy.Decode(out var iy);
            if (ix.IsInvalid || iy.IsInvalid || ix.Length != iy.Length || ix.Code != iy.Code)
                return false;
            var a = x.AsSpan(at, ix.Length);
            var c = y.AsSpan(at, iy.Length);
            if (a.SequenceEqual(c))
                continue;
            var offsets = dx.GetConstantOffsets(ix);
            if (!offsets.HasImmediate || offsets.ImmediateSize is not (1 or 2 or 4) || offsets.HasImmediate2)
                return false;
            for (int k = 0; k < a.Length; k++)
            {
                if (a[k] != c[k] && (k < offsets.ImmediateOffset || k >= offsets.ImmediateOffset + offsets.ImmediateSize))
                    return false;
            }
            long before = Immediate(a.Slice(offsets.ImmediateOffset, offsets.ImmediateSize));
            long after = Immediate(c.Slice(offsets.ImmediateOffset, offsets.ImmediateSize));
            if (before <= 0 || !_patches.Any(sp => sp.Files.Any(f => f.MapLine((int)before) == after)))
            {
                why = $"code differs (an immediate {before} became {after}, which no line move of the patches explains)";
                return false;
            }
        }
        return true;
    }

    private static long Immediate(ReadOnlySpan<byte> b) => b.Length switch
    {
        1 => (sbyte)b[0],
        2 => System.Buffers.Binary.BinaryPrimitives.ReadInt16LittleEndian(b),
        _ => System.Buffers.Binary.BinaryPrimitives.ReadInt32LittleEndian(b),
    };

    private static string DescribeReference(UnitRelocation x, UnitRelocation y)
    {
        if (x.Target.Entity is { } ex && y.Target.Entity is { } ey && ex.Name == ey.Name && !ey.IsFunction)
            return $"uses {ey.Name}, a constant that changed";
        string Name(UnitRelocation r) => r.Target.Entity?.Name ?? r.Target.Named?.Name ?? (r.Target.Section?.Kind == SectionKind.Strings ? "a string" : r.Target.Section?.Name) ?? "?";
        string a = Name(x), c = Name(y);
        return a == c ? $"a reference to {c} differs" : $"refers to {c} where it referred to {a}";
    }
}
