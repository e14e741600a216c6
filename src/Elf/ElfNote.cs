using System.Text;

namespace XenLivepatch.Elf;

/// <summary>
/// One note of an SHT_NOTE section: <c>{ namesz, descsz, type }</c> (12 bytes, both classes), then the name
/// and the descriptor, each padded to the section's note alignment (4, or 8 for sections aligned to 8).
/// </summary>
public sealed record ElfNote(string Name, uint Type, ReadOnlyMemory<byte> Descriptor)
{
    /// <summary>Size of the note header.</summary>
    public const int HeaderSize = 12;

    /// <summary>The owner of GNU notes (build-id, ABI tag, properties).</summary>
    public const string GnuOwner = "GNU";

    /// <summary><c>namesz</c> as stored (it counts the name's NUL terminator).</summary>
    public uint NameSize { get; init; }

    /// <summary>Offset of this note inside its section.</summary>
    public long SectionOffset { get; init; }

    /// <summary>True for the GNU build-id note.</summary>
    public bool IsGnuBuildId => Type == (uint)ElfGnuNoteType.BuildId && Name == GnuOwner;

    /// <summary>The note alignment that the ELF ABI and binutils use for a section of this alignment.</summary>
    public static int AlignmentFor(ulong sectionAlignment) => sectionAlignment == 8 ? 8 : 4;

    /// <summary>
    /// Encodes one note. The name is written with its NUL terminator (as GNU tools do), and the name and
    /// descriptor are padded to <paramref name="alignment"/>.
    /// </summary>
    public static byte[] Encode(string name, uint type, ReadOnlySpan<byte> descriptor, ElfEncoding encoding, int alignment = 4)
    {
        if (alignment is not (4 or 8))
            throw new ArgumentOutOfRangeException(nameof(alignment), alignment, "note alignment is 4 or 8");
        var l = new ElfLayout(ElfClass.Elf64, encoding);
        byte[] nameBytes = Encoding.Latin1.GetBytes(name + "\0");
        int nameLen = Align(nameBytes.Length, alignment);
        int descLen = Align(descriptor.Length, alignment);
        var buf = new byte[HeaderSize + nameLen + descLen];
        l.W32(buf, 0, (uint)nameBytes.Length);
        l.W32(buf, 4, (uint)descriptor.Length);
        l.W32(buf, 8, type);
        nameBytes.CopyTo(buf, HeaderSize);
        descriptor.CopyTo(buf.AsSpan(HeaderSize + nameLen));
        return buf;
    }

    /// <summary>Encodes a GNU build-id note (owner "GNU", type NT_GNU_BUILD_ID).</summary>
    public static byte[] EncodeGnuBuildId(ReadOnlySpan<byte> buildId, ElfEncoding encoding) =>
        Encode(GnuOwner, (uint)ElfGnuNoteType.BuildId, buildId, encoding);

    private static int Align(int value, int alignment) => (value + alignment - 1) & -alignment;
}
