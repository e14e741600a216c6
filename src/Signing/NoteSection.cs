using XenLivepatch.Elf;

namespace XenLivepatch.Signing;

/// <summary>
/// Adds the <c>.note.Xen.signature</c> section to an ELF file without moving anything: after the file's last
/// byte come the note (4-aligned), a copy of the section name table with the new name at its end, and the
/// section header table (8-aligned) with the new section last. The old name table and header table stay
/// where they were, unreferenced; the ELF header's <c>e_shoff</c> and <c>e_shnum</c> point at the new ones.
/// A file signed this way can be signed again with a key of another size: the tail is written anew.
/// </summary>
internal static class NoteSection
{
    private static readonly byte[] s_name = System.Text.Encoding.ASCII.GetBytes(NoteSignature.SectionName + "\0");

    /// <summary>
    /// The signed file's bytes with a zeroed signature of <paramref name="signatureLength"/> bytes. When
    /// <paramref name="elf"/> is a file this class signed, <paramref name="prefixLength"/> is where its note starts
    /// (<see cref="OursStart"/>) and its own tail is dropped; otherwise it is the file's length.
    /// </summary>
    public static byte[] Add(ElfFile elf, int prefixLength, int signatureLength, out NoteBlock block)
    {
        var h = elf.Header;
        var l = h.Layout;
        bool resign = prefixLength != elf.Data.Length;
        int sections = elf.SectionCount - (resign ? 1 : 0);
        int names = elf.SectionNameTableIndex;
        if (h.SectionHeaderCount == 0 || h.SectionHeaderCount != elf.SectionCount || names == 0 || names >= sections)
            throw new SigningException("the payload has no section name table, or uses extended section numbering; the note format cannot be added to it");
        if (sections + 1 >= (int)ElfSpecialSection.LoReserve)
            throw new SigningException($"the payload has {sections} sections; one more would need extended section numbering");
        if (elf.GetSectionHeader(names).Type != ElfSectionType.StringTable || !elf.TryGetSectionData(names, out var nameTable, out var e))
            throw new SigningException("the payload's section name table is not a readable string table");
        int oldNames = nameTable.Length - (resign ? s_name.Length : 0);

        var descriptor = new byte[NoteSignature.HeaderLength + signatureLength];
        l.W16(descriptor, 0, NoteSignature.Version);
        descriptor[2] = NoteSignature.AlgorithmRsa;
        descriptor[3] = NoteSignature.HashSha256;
        l.W32(descriptor, 4, (uint)signatureLength);
        byte[] note = ElfNote.Encode(NoteSignature.NoteName, 0, descriptor, h.Encoding);

        long noteOffset = Align(prefixLength, 4);
        long namesOffset = noteOffset + note.Length;
        int namesLength = oldNames + s_name.Length;
        long tableOffset = Align(namesOffset + namesLength, l.Is64 ? 8 : 4);
        int entry = h.SectionHeaderEntrySize;
        long total = tableOffset + (long)(sections + 1) * entry;
        if (total > int.MaxValue)
            throw new SigningException("the signed payload would be larger than 2 GiB");

        var result = new byte[total];
        elf.Data.Span[..prefixLength].CopyTo(result);
        note.CopyTo(result, noteOffset);
        nameTable.Span[..oldNames].CopyTo(result.AsSpan((int)namesOffset));
        s_name.CopyTo(result, namesOffset + oldNames);
        var table = result.AsSpan((int)tableOffset);
        elf.Data.Span.Slice((int)h.SectionHeaderOffset, sections * entry).CopyTo(table);

        WriteSection(l, table[(names * entry)..], offset: (ulong)namesOffset, size: (ulong)namesLength, nameOffset: null);
        var added = table[(sections * entry)..];
        added[..entry].Clear();
        WriteSection(l, added, offset: (ulong)noteOffset, size: (ulong)note.Length, nameOffset: (uint)oldNames);
        l.W32(added, l.Is64 ? ElfSectionHeader.Layout64.Type : ElfSectionHeader.Layout32.Type, (uint)ElfSectionType.Note);
        l.WWord(added, l.Is64 ? ElfSectionHeader.Layout64.AddrAlign : ElfSectionHeader.Layout32.AddrAlign, 4);

        l.WWord(result, l.Is64 ? ElfHeader.Layout64.ShOff : ElfHeader.Layout32.ShOff, (ulong)tableOffset);
        l.W16(result, l.Is64 ? ElfHeader.Layout64.ShNum : ElfHeader.Layout32.ShNum, (ushort)(sections + 1));

        int signatureOffset = (int)noteOffset + ElfNote.HeaderSize + 4 + NoteSignature.HeaderLength;
        block = new NoteBlock(sections, NoteLayout.Header, signatureOffset, signatureLength);
        return result;
    }

    /// <summary>True when <paramref name="elf"/>'s note signature is at the end as <see cref="Add"/> writes it.</summary>
    public static bool IsOurs(ElfFile elf, NoteBlock block)
    {
        var h = elf.Header;
        int names = elf.SectionNameTableIndex;
        if (block.Layout != NoteLayout.Header || block.SectionIndex != elf.SectionCount - 1 || names <= 0 || names >= block.SectionIndex
            || h.SectionHeaderCount != elf.SectionCount)
            return false;
        var note = elf.GetSectionHeader(block.SectionIndex);
        var table = elf.GetSectionHeader(names);
        if (!elf.TryGetSectionData(names, out var nameTable, out _) || !nameTable.Span.EndsWith(s_name)
            || note.NameOffset != (ulong)(nameTable.Length - s_name.Length))
            return false;
        ulong noteEnd = note.Offset + note.Size;
        ulong tableOffset = (table.Offset + table.Size + (h.Layout.Is64 ? 7u : 3u)) & ~(h.Layout.Is64 ? 7ul : 3ul);
        return note.Offset % 4 == 0 && table.Offset == noteEnd
            && h.SectionHeaderOffset == tableOffset
            && h.SectionHeaderOffset + (ulong)elf.SectionCount * h.SectionHeaderEntrySize == (ulong)elf.Data.Length;
    }

    /// <summary>Where the note of a file <see cref="IsOurs"/> recognises starts.</summary>
    public static int OursStart(ElfFile elf, NoteBlock block) => (int)elf.GetSectionHeader(block.SectionIndex).Offset;

    private static void WriteSection(ElfLayout l, Span<byte> header, ulong offset, ulong size, uint? nameOffset)
    {
        if (nameOffset is { } n)
            l.W32(header, l.Is64 ? ElfSectionHeader.Layout64.Name : ElfSectionHeader.Layout32.Name, n);
        l.WWord(header, l.Is64 ? ElfSectionHeader.Layout64.Offset : ElfSectionHeader.Layout32.Offset, offset);
        l.WWord(header, l.Is64 ? ElfSectionHeader.Layout64.Size : ElfSectionHeader.Layout32.Size, size);
    }

    private static long Align(long value, int alignment) => (value + alignment - 1) & -alignment;
}
