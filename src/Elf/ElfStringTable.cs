using System.Diagnostics.CodeAnalysis;
using System.Text;

namespace XenLivepatch.Elf;

/// <summary>
/// A view of a string table (SHT_STRTAB contents). Strings are NUL-terminated byte strings; they are
/// decoded as Latin-1 so that every byte maps to one character and names round-trip exactly.
/// </summary>
public sealed class ElfStringTable
{
    private readonly ReadOnlyMemory<byte> _data;

    /// <summary>Wraps the bytes of a string table of section <paramref name="sectionIndex"/>.</summary>
    public ElfStringTable(ReadOnlyMemory<byte> data, int sectionIndex = -1)
    {
        _data = data;
        SectionIndex = sectionIndex;
    }

    /// <summary>The section this table came from, or -1.</summary>
    public int SectionIndex { get; }

    /// <summary>Size in bytes.</summary>
    public int Size => _data.Length;

    /// <summary>The raw bytes.</summary>
    public ReadOnlyMemory<byte> Data => _data;

    /// <summary>Gets the bytes of the string at <paramref name="offset"/>, without its NUL.</summary>
    public bool TryGetBytes(uint offset, out ReadOnlySpan<byte> bytes, [NotNullWhen(false)] out ElfError? error)
    {
        var span = _data.Span;
        if (offset >= (uint)span.Length)
        {
            bytes = default;
            error = ElfError.Sec(ElfErrorCode.BadStringOffset, SectionIndex, $"string offset {offset} is past the end of the {span.Length}-byte string table");
            return false;
        }
        int end = span[(int)offset..].IndexOf((byte)0);
        if (end < 0)
        {
            bytes = default;
            error = ElfError.Sec(ElfErrorCode.UnterminatedString, SectionIndex, $"string at offset {offset} is not NUL-terminated within the {span.Length}-byte string table");
            return false;
        }
        bytes = span.Slice((int)offset, end);
        error = null;
        return true;
    }

    /// <summary>Gets the string at <paramref name="offset"/>.</summary>
    public bool TryGetString(uint offset, [NotNullWhen(true)] out string? value, [NotNullWhen(false)] out ElfError? error)
    {
        if (!TryGetBytes(offset, out var bytes, out error))
        {
            value = null;
            return false;
        }
        value = bytes.IsEmpty ? string.Empty : Encoding.Latin1.GetString(bytes);
        return true;
    }

    /// <summary>Gets the string at <paramref name="offset"/>; throws <see cref="ElfFormatException"/> when malformed.</summary>
    public string GetString(uint offset) => TryGetString(offset, out string? s, out var e) ? s : throw new ElfFormatException(e);

    /// <summary>Compares the string at <paramref name="offset"/> with <paramref name="name"/> without allocating.</summary>
    public bool StringEquals(uint offset, ReadOnlySpan<byte> name) => TryGetBytes(offset, out var bytes, out _) && bytes.SequenceEqual(name);
}
