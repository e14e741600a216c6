using XenLivepatch.Elf;

namespace XenLivepatch.Signing;

/// <summary>How a <c>.note.Xen.signature</c> note lays out its signature.</summary>
public enum NoteLayout
{
    /// <summary>
    /// XenServer's <c>livepatch-sign</c> and the first upstream series (2025, v1): note type 0, the descriptor is
    /// <c>{ u16 version = 1; u8 algo (RSA 0); u8 hash (SHA-256 0); u32 length; u8 data[length] }</c>.
    /// </summary>
    Header,

    /// <summary>
    /// The upstream series from v3 (June 2025): the note type carries version (bits 0-15), algorithm (16-23) and
    /// hash (24-31); the descriptor is the signature.
    /// </summary>
    TypeEncoded,
}

/// <summary>Where a note signature lies in the file, and what it claims.</summary>
/// <param name="SectionIndex">The <c>.note.Xen.signature</c> section.</param>
/// <param name="Layout">Header or type-encoded.</param>
/// <param name="SignatureOffset">File offset of the signature bytes (the bytes zeroed for hashing).</param>
/// <param name="SignatureLength">Their length.</param>
public readonly record struct NoteBlock(int SectionIndex, NoteLayout Layout, int SignatureOffset, int SignatureLength);

/// <summary>
/// The ELF-note signature: one note named "Xen" in a section <c>.note.Xen.signature</c>, RSA PKCS#1 v1.5 over
/// SHA-256. The signed bytes are the whole file with the signature bytes (only them) zeroed: the signer adds
/// the section with a zeroed signature, signs the file, then writes the signature in; the verifier zeroes them
/// again. The loader then gets exactly those bytes, zeroes included, so nothing it reads was left out of the hash.
/// </summary>
public static class NoteSignature
{
    /// <summary>The section's name.</summary>
    public const string SectionName = ".note.Xen.signature";

    /// <summary>The note's name.</summary>
    public const string NoteName = "Xen";

    /// <summary>Signature version 1.</summary>
    public const ushort Version = 1;

    /// <summary>RSA.</summary>
    public const byte AlgorithmRsa = 0;

    /// <summary>SHA-256.</summary>
    public const byte HashSha256 = 0;

    /// <summary>The header of <see cref="NoteLayout.Header"/>: version, algo, hash, length.</summary>
    public const int HeaderLength = 8;

    /// <summary>The longest signature accepted (Xen's series refuses notes of 1024 bytes or more).</summary>
    public const int MaxSignatureLength = 1023;

    /// <summary>
    /// Finds the note signature in <paramref name="data"/>. <see cref="SignatureFailure.Unsigned"/> when the file
    /// is not an ELF this can read or has no such section; otherwise the section must be exactly one SHT_NOTE
    /// section holding exactly one well-formed "Xen" note.
    /// </summary>
    public static SignatureFailure TryFind(ReadOnlyMemory<byte> data, out NoteBlock block, out string problem)
    {
        block = default;
        if (!ElfFile.TryRead(data, out var elf, out var elfError))
        {
            problem = $"not an ELF file whose sections can be read ({elfError.Message})";
            return SignatureFailure.Unsigned;
        }
        return TryFind(elf, out block, out problem);
    }

    /// <summary>Finds the note signature in an opened ELF file (see <see cref="TryFind(ReadOnlyMemory{byte}, out NoteBlock, out string)"/>).</summary>
    public static SignatureFailure TryFind(ElfFile elf, out NoteBlock block, out string problem)
    {
        block = default;
        int index = -1;
        for (int i = 1; i < elf.SectionCount; i++)
        {
            if (!elf.TryGetSectionName(i, out string? name, out _) || name != SectionName)
                continue;
            if (index >= 0)
                return Malformed(out problem, $"two {SectionName} sections ([{index}] and [{i}])");
            index = i;
        }
        if (index < 0)
        {
            problem = $"no {SectionName} section";
            return SignatureFailure.Unsigned;
        }
        var sh = elf.GetSectionHeader(index);
        if (sh.Type != ElfSectionType.Note)
            return Malformed(out problem, $"{SectionName} is of type {sh.Type}, not a note section");
        if (!elf.TryGetSectionData(index, out var section, out var dataError))
            return Malformed(out problem, $"{SectionName}: {dataError.Message}");
        if (!ElfFile.TryParseNotes(section, elf.Header.Encoding, 4, out var notes, out var noteError))
            return Malformed(out problem, $"{SectionName}: {noteError.Message}");
        if (notes.Count != 1)
            return Malformed(out problem, $"{SectionName} holds {notes.Count} notes; a signature is one note");
        var note = notes[0];
        if (note.Name != NoteName || note.NameSize != NoteName.Length + 1)
            return Malformed(out problem, $"the signature note is named \"{note.Name}\" ({note.NameSize} bytes), not \"{NoteName}\"");

        // ElfFile checked that the section lies inside the file, and TryParseNotes that the descriptor lies
        // inside the section: the sums below stay inside the file.
        long descriptor = (long)sh.Offset + note.SectionOffset + ElfNote.HeaderSize + ((note.NameSize + 3) & ~3u);
        var d = note.Descriptor.Span;
        var l = new ElfLayout(ElfClass.Elf64, elf.Header.Encoding);
        if (note.Type == 0)
        {
            if (d.Length < HeaderLength)
                return Malformed(out problem, $"the signature note's descriptor is {d.Length} bytes, shorter than its {HeaderLength}-byte header");
            ushort version = l.U16(d, 0);
            byte algo = d[2], hash = d[3];
            uint length = l.U32(d, 4);
            if (version != Version || algo != AlgorithmRsa || hash != HashSha256)
                return Unsupported(out problem, version, algo, hash);
            if (length != d.Length - HeaderLength)
                return Malformed(out problem, $"the signature note's header gives {length} signature bytes, its descriptor holds {d.Length - HeaderLength}");
            if (length is 0 or > MaxSignatureLength)
                return Malformed(out problem, $"the signature is {length} bytes (1 to {MaxSignatureLength} accepted)");
            block = new NoteBlock(index, NoteLayout.Header, (int)(descriptor + HeaderLength), (int)length);
        }
        else
        {
            ushort version = (ushort)(note.Type & 0xffff);
            byte algo = (byte)(note.Type >> 16), hash = (byte)(note.Type >> 24);
            if (version != Version || algo != AlgorithmRsa || hash != HashSha256)
                return Unsupported(out problem, version, algo, hash);
            if (d.Length is 0 or > MaxSignatureLength)
                return Malformed(out problem, $"the signature is {d.Length} bytes (1 to {MaxSignatureLength} accepted)");
            block = new NoteBlock(index, NoteLayout.TypeEncoded, (int)descriptor, d.Length);
        }
        problem = "";
        return SignatureFailure.None;
    }

    /// <summary>The signed bytes: a copy of <paramref name="data"/> with the signature bytes zeroed.</summary>
    public static byte[] Covered(ReadOnlySpan<byte> data, NoteBlock block)
    {
        byte[] copy = data.ToArray();
        copy.AsSpan(block.SignatureOffset, block.SignatureLength).Clear();
        return copy;
    }

    private static SignatureFailure Unsupported(out string problem, ushort version, byte algo, byte hash)
    {
        var what = new List<string>();
        if (version != Version)
            what.Add($"version {version}");
        if (algo != AlgorithmRsa)
            what.Add($"algorithm {algo}");
        if (hash != HashSha256)
            what.Add($"hash {hash}");
        problem = $"the signature note has {string.Join(", ", what)}; version 1, RSA (0) and SHA-256 (0) are accepted";
        return SignatureFailure.UnsupportedAlgorithm;
    }

    private static SignatureFailure Malformed(out string problem, string text)
    {
        problem = text;
        return SignatureFailure.Malformed;
    }
}
