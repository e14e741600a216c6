using System.Buffers.Binary;
using System.Text;
using XenLivepatch.Interop;

namespace XenLivepatch.Cli;

/// <summary>
/// Finds a named section in an ELF64 little-endian file by its section headers, reading only the headers and the
/// section-name table (the front looks for the whole tool it carries; its file is megabytes, of which this reads
/// about two kilobytes, and the front links nothing of the ELF library, whose start-up cost it is there to avoid).
/// Every offset and count is checked against the file's size: a damaged file is a reason, never a wrong read.
/// </summary>
internal static class EmbeddedImage
{
    /// <summary>Finds section <paramref name="name"/> of <paramref name="file"/>, <paramref name="length"/> bytes long.</summary>
    public static bool TryFind(SafeFileDescriptor file, long length, string name, out long offset, out long size, out string why)
    {
        offset = size = 0;
        Span<byte> header = stackalloc byte[64];
        if (!Read(file, header, 0) || !header[..4].SequenceEqual("\u007fELF"u8) || header[4] != 2 || header[5] != 1)
        {
            why = "the program is not an ELF64 little-endian file";
            return false;
        }
        long shoff = (long)BinaryPrimitives.ReadUInt64LittleEndian(header[0x28..]);
        int shentsize = BinaryPrimitives.ReadUInt16LittleEndian(header[0x3A..]);
        int shnum = BinaryPrimitives.ReadUInt16LittleEndian(header[0x3C..]);
        int shstrndx = BinaryPrimitives.ReadUInt16LittleEndian(header[0x3E..]);
        if (shentsize != 64 || shnum == 0 || shstrndx >= shnum || shoff < 0 || shoff > length - (long)shnum * 64)
        {
            why = "the program's section headers are not where its header says";
            return false;
        }
        byte[] sections = new byte[shnum * 64];
        if (!Read(file, sections, shoff))
        {
            why = "the program's section headers cannot be read";
            return false;
        }
        var (namesAt, namesSize) = Extent(sections, shstrndx);
        if (namesAt < 0 || namesSize > 1 << 20 || namesAt > length - namesSize)
        {
            why = "the program's section names are not where its headers say";
            return false;
        }
        byte[] names = new byte[namesSize];
        if (!Read(file, names, namesAt))
        {
            why = "the program's section names cannot be read";
            return false;
        }
        byte[] wanted = Encoding.ASCII.GetBytes(name + "\0");
        for (int i = 0; i < shnum; i++)
        {
            uint at = BinaryPrimitives.ReadUInt32LittleEndian(sections.AsSpan(i * 64));
            if (at > names.Length - wanted.Length || !names.AsSpan((int)at, wanted.Length).SequenceEqual(wanted))
                continue;
            (offset, size) = Extent(sections, i);
            if (offset < 0 || size <= 0 || offset > length - size)
            {
                why = $"its {name} section is not inside the file";
                return false;
            }
            why = "";
            return true;
        }
        why = $"it has no {name} section";
        return false;
    }

    // sh_offset and sh_size of section i (negative when they do not fit a long).
    private static (long Offset, long Size) Extent(byte[] sections, int i) =>
        ((long)BinaryPrimitives.ReadUInt64LittleEndian(sections.AsSpan(i * 64 + 0x18)),
         (long)BinaryPrimitives.ReadUInt64LittleEndian(sections.AsSpan(i * 64 + 0x20)));

    private static unsafe bool Read(SafeFileDescriptor file, Span<byte> buffer, long at)
    {
        fixed (byte* p = buffer)
        {
            for (int done = 0; done < buffer.Length;)
            {
                nint n = LibC.pread(file, p + done, (nuint)(buffer.Length - done), at + done);
                if (n <= 0)
                    return false;
                done += (int)n;
            }
        }
        return true;
    }
}
