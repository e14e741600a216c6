using System.Diagnostics.CodeAnalysis;

namespace XenLivepatch.Elf;

/// <summary>The note format (SHT_NOTE sections, PT_NOTE segments): one parser for both.</summary>
internal static class ElfNotes
{
    /// <summary>See <see cref="ElfFile.TryParseNotes"/>.</summary>
    public static bool TryParse(ReadOnlyMemory<byte> data, ElfEncoding encoding, int alignment,
        [NotNullWhen(true)] out IReadOnlyList<ElfNote>? notes, [NotNullWhen(false)] out ElfError? error)
    {
        notes = null;
        var l = new ElfLayout(ElfClass.Elf64, encoding);
        var span = data.Span;
        var list = new List<ElfNote>();
        long pos = 0;
        long len = span.Length;
        long mask = alignment - 1;
        while (pos < len)
        {
            if (len - pos < ElfNote.HeaderSize)
                return ElfFile.Fail(out error, new ElfError(ElfErrorCode.BadNote, $"note at offset {pos}: only {len - pos} bytes remain, not enough for a 12-byte note header"));
            uint namesz = l.U32(span, (int)pos);
            uint descsz = l.U32(span, (int)pos + 4);
            uint type = l.U32(span, (int)pos + 8);
            long nameStart = pos + ElfNote.HeaderSize;
            long descStart = nameStart + ((namesz + mask) & ~mask); // namesz ≤ 2^32, so no overflow in long.
            if (namesz > len - nameStart)
                return ElfFile.Fail(out error, new ElfError(ElfErrorCode.BadNote, $"note at offset {pos}: name size {namesz} runs past the end of the {len}-byte note data"));
            if (descStart > len || descsz > len - descStart)
                return ElfFile.Fail(out error, new ElfError(ElfErrorCode.BadNote, $"note at offset {pos}: descriptor size {descsz} runs past the end of the {len}-byte note data"));
            var nameBytes = span.Slice((int)nameStart, (int)namesz);
            int nul = nameBytes.IndexOf((byte)0);
            string name = System.Text.Encoding.Latin1.GetString(nul >= 0 ? nameBytes[..nul] : nameBytes);
            list.Add(new ElfNote(name, type, data.Slice((int)descStart, (int)descsz)) { NameSize = namesz, SectionOffset = pos });
            pos = descStart + ((descsz + mask) & ~mask);
        }
        notes = list;
        error = null;
        return true;
    }

    /// <summary>The descriptor of the first NT_GNU_BUILD_ID note owned by "GNU" in <paramref name="notes"/>, or null.</summary>
    public static ReadOnlyMemory<byte>? GnuBuildId(IReadOnlyList<ElfNote> notes)
    {
        foreach (var n in notes)
        {
            if (n.IsGnuBuildId)
                return n.Descriptor;
        }
        return null;
    }
}
