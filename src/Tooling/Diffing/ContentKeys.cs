using System.Globalization;
using System.Security.Cryptography;
using System.Text;

namespace XenLivepatch.Tooling.Diffing;

/// <summary>
/// What a reference reaches, in terms both objects share (names, string and constant contents, digests of
/// anonymous sections), so that two relocations compare equal when they reach the same thing in either build.
/// </summary>
internal sealed class ContentKeys
{
    private readonly Dictionary<Entity, string> _contentKeys = new(ReferenceEqualityComparer.Instance);
    private readonly HashSet<object> _inProgress = new(ReferenceEqualityComparer.Instance);

    /// <summary>Gives every relocation of <paramref name="u"/> its key, and its special entries theirs.</summary>
    public void Sign(DiffUnit u, List<SpecialGroup> groups)
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
            return "0+" + DiffEngine.Hex(r.Addend);
        if (t.Entity is { } e)
        {
            string k = "e:" + e.Name;
            if (!e.IsFunction && e.Section.Kind == SectionKind.ReadOnly)
                k += "#" + EntityContentKey(e);
            return k + "+" + DiffEngine.Hex(t.Offset);
        }
        if (t.Named is { } n)
            return (n.Section == null ? "u:" : "n:") + n.Name + "+" + DiffEngine.Hex(t.Offset);
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
            return "s:" + SectionContentKey(s) + "+" + DiffEngine.Hex(t.Offset);
        return "s:" + s.Name + "@" + DiffEngine.Hex(t.Offset);
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

    /// <summary>The key of an anonymous section's whole contents.</summary>
    public string SectionContentKey(UnitSection s)
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
        foreach (var r in s.RelocationsIn(start, size))
            sb.Append('|').Append(r.Offset - start).Append(',').Append(r.Type).Append(',').Append(r.Key ?? KeyOf(r));
        return Convert.ToHexString(SHA256.HashData(Encoding.UTF8.GetBytes(sb.ToString())))[..24];
    }
}
