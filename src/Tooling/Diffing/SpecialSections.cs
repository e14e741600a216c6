using System.Buffers.Binary;
using System.Text;
using XenLivepatch.Elf;

namespace XenLivepatch.Tooling.Diffing;

/// <summary>
/// One entry of a special section (a bug frame, an exception-table record, an alternative) or one chunk of the
/// out-of-line code they point at (a <c>.fixup</c> chunk, an alternative's replacement): kept in a payload when
/// the function it belongs to is.
/// </summary>
internal sealed class SpecialGroup
{
    public required UnitSection Section { get; init; }
    public required ulong Start { get; init; }
    public required ulong Size { get; init; }
    /// <summary>The function the entry describes (its first field points into it), or null.</summary>
    public Entity? Owner { get; set; }
    /// <summary>The <c>.fixup</c> chunk or replacement the entry points at.</summary>
    public SpecialGroup? Chunk { get; set; }
    /// <summary>What it compares by (line numbers of bug frames excluded).</summary>
    public string Key { get; set; } = "";
}

/// <summary>
/// Xen's special sections (Xen 4.17): their entry sizes and which field points at the code they describe.
/// On x86, <c>struct bug_frame</c> is two 32-bit displacements (8 bytes; assertions add two more words, 16) with the
/// line number in their high bits, <c>struct exception_table_entry</c> two (8), <c>struct alt_instr</c> is 14 bytes
/// packed: orig and replacement displacements, cpuid, orig_len, repl_len (byte 11), pad_len, priv. On arm64
/// (arch/arm/include/asm/bug.h, alternative.h), a bug frame is 16 bytes in every <c>.bug_frames.N</c>: three
/// displacements (location, file, message), then the line (a 16-bit field at byte 12) and padding; <c>struct
/// alt_instr</c> is 12 bytes: two displacements, cpufeature, orig_len, alt_len (byte 11); there is no exception
/// table.
/// </summary>
internal static class SpecialSections
{
    private const int AltReplLenAt = 11;
    private const int ArmBugLineAt = 12;

    public static int EntrySize(UnitSection s, ElfMachine machine) => (s.Kind, machine) switch
    {
        (SectionKind.BugFrames, ElfMachine.AArch64) => 16,
        (SectionKind.BugFrames, _) => s.Name[^1] == '3' ? 16 : 8,
        (SectionKind.ExTable or SectionKind.ExTablePre, _) => 8,
        (SectionKind.AltInstructions, ElfMachine.AArch64) => 12,
        (SectionKind.AltInstructions, _) => 14,
        _ => 0,
    };

    /// <summary>
    /// Splits the special sections of <paramref name="u"/> into entries and chunks and assigns each to its
    /// function. Returns a problem when a section is not a whole number of entries.
    /// </summary>
    public static string? Parse(DiffUnit u, List<SpecialGroup> groups)
    {
        var fixupStarts = new SortedSet<ulong>();
        var entries = new List<SpecialGroup>();
        foreach (var s in u.Sections)
        {
            int size = EntrySize(s, u.Object.Machine);
            if (size == 0)
                continue;
            if (s.Size % (ulong)size != 0)
                return $"section {s.Name} holds {s.Size} bytes, not a whole number of {size}-byte entries";
            for (ulong at = 0; at < s.Size; at += (ulong)size)
            {
                var g = new SpecialGroup { Section = s, Start = at, Size = (ulong)size };
                var first = RelocationAt(s, at);
                if (first?.Target.Entity is { IsFunction: true } owner)
                    g.Owner = owner;
                entries.Add(g);
                if (s.Kind is SectionKind.ExTable or SectionKind.ExTablePre && RelocationAt(s, at + 4) is { Target.Section.Kind: SectionKind.Fixup } cont)
                    fixupStarts.Add((ulong)cont.Target.Offset);
            }
        }
        // .fixup holds one chunk per exception-table entry that jumps there: it runs from the entry's target to the next one.
        var fixup = u.Sections.Find(s => s.Kind == SectionKind.Fixup);
        var chunks = new List<SpecialGroup>();
        if (fixup != null)
        {
            var starts = fixupStarts.Where(x => x < fixup.Size).ToList();
            for (int i = 0; i < starts.Count; i++)
            {
                ulong end = i + 1 < starts.Count ? starts[i + 1] : fixup.Size;
                chunks.Add(new SpecialGroup { Section = fixup, Start = starts[i], Size = end - starts[i] });
            }
        }
        foreach (var g in entries)
        {
            if (g.Section.Kind is SectionKind.ExTable or SectionKind.ExTablePre && RelocationAt(g.Section, g.Start + 4) is { Target.Section.Kind: SectionKind.Fixup } cont)
                g.Chunk = chunks.Find(c => c.Start == (ulong)cont.Target.Offset);
            else if (g.Section.Kind == SectionKind.AltInstructions && RelocationAt(g.Section, g.Start + 4) is { Target.Section.Kind: SectionKind.AltReplacement } repl)
            {
                byte len = g.Section.Bytes[(int)g.Start + AltReplLenAt];
                ulong start = (ulong)repl.Target.Offset;
                if (start <= repl.Target.Section!.Size)
                    g.Chunk = new SpecialGroup { Section = repl.Target.Section, Start = start, Size = Math.Min(len, repl.Target.Section.Size - start) };
            }
            if (g.Chunk != null)
                g.Chunk.Owner ??= g.Owner;
        }
        groups.AddRange(entries);
        groups.AddRange(chunks);
        return null;
    }

    /// <summary>
    /// Computes each entry's key and the functions' <see cref="Entity.SpecialKey"/>. An arm64 bug frame's line field
    /// is left out, as x86's line bits are (<see cref="DiffUnit.StripLine"/>): moving <c>__LINE__</c> changes no code.
    /// </summary>
    public static void Sign(IEnumerable<SpecialGroup> groups, Func<UnitSection, ulong, ulong, string> rangeKey, ElfMachine machine)
    {
        var byOwner = new Dictionary<Entity, List<string>>(ReferenceEqualityComparer.Instance);
        foreach (var g in groups)
        {
            if (g.Section.Kind is SectionKind.Fixup or SectionKind.AltReplacement)
                continue;
            // Field by field: a relocated field by what it reaches, any other by its bytes (cpuid and lengths of an alternative).
            var sb = new StringBuilder();
            sb.Append(g.Section.Name).Append('{');
            for (ulong at = g.Start; at < g.Start + g.Size; at += 4)
            {
                var r = RelocationAt(g.Section, at);
                if (machine == ElfMachine.AArch64 && g.Section.Kind == SectionKind.BugFrames && at - g.Start == ArmBugLineAt)
                    sb.Append("line;");
                else if (r != null)
                    sb.Append(r.Key).Append(';');
                else if (at + 4 <= g.Start + g.Size)
                    sb.Append(BinaryPrimitives.ReadUInt32LittleEndian(g.Section.Bytes[(int)at..])).Append(';');
                else
                    sb.Append(Convert.ToHexString(g.Section.Bytes[(int)at..(int)(g.Start + g.Size)])).Append(';');
            }
            if (g.Chunk != null)
                sb.Append(g.Chunk.Section.Name).Append('=').Append(rangeKey(g.Chunk.Section, g.Chunk.Start, g.Chunk.Size));
            sb.Append('}');
            g.Key = sb.ToString();
            if (g.Owner != null)
            {
                if (!byOwner.TryGetValue(g.Owner, out var list))
                    byOwner[g.Owner] = list = [];
                list.Add(g.Key);
            }
        }
        foreach (var (owner, keys) in byOwner)
        {
            keys.Sort(StringComparer.Ordinal);
            owner.SpecialKey = string.Join('\n', keys);
        }
    }

    public static UnitRelocation? RelocationAt(UnitSection s, ulong offset)
    {
        var list = s.Relocations;
        int lo = 0, hi = list.Count - 1;
        while (lo <= hi)
        {
            int mid = (lo + hi) >> 1;
            ulong o = list[mid].Offset;
            if (o == offset)
                return list[mid];
            if (o < offset)
                lo = mid + 1;
            else
                hi = mid - 1;
        }
        return null;
    }
}
