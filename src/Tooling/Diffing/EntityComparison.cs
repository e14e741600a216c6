using Iced.Intel;
using XenLivepatch.Tooling.Sources;

namespace XenLivepatch.Tooling.Diffing;

/// <summary>
/// Compares each correlated pair: size, bytes, references by key, special entries; a function whose code differs
/// only in <c>__LINE__</c> immediates the source patches explain is the same.
/// </summary>
internal sealed class EntityComparison(IReadOnlyList<SourcePatch> patches)
{
    /// <summary>How many functions differed only in line numbers the patches moved.</summary>
    public int LineOnly { get; private set; }

    /// <summary>Marks every entity of <paramref name="patched"/> new, the same as its twin, or changed (with why).</summary>
    public void Run(DiffUnit patched)
    {
        foreach (var p in patched.Entities)
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
        foreach (var p in patched.Entities.Where(e => e.Parent != null && e.Status != DiffStatus.Same))
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
            LineOnly++;
        }
        return references;
    }

    private static string? ReferenceDifference(Entity b, Entity p)
    {
        var rb = b.Section.RelocationsIn(b.Start, b.Size).ToList();
        var rp = p.Section.RelocationsIn(p.Start, p.Size).ToList();
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
        if (patches.Count == 0)
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
            if (before <= 0 || !patches.Any(sp => sp.Files.Any(f => f.MapLine((int)before) == after)))
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
