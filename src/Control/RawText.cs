using System.Text;

namespace XenLivepatch.Control;

/// <summary>
/// Bytes that need not be UTF-8 (payload names: Xen takes any bytes but NUL, and its tool passes the command
/// line's bytes as they are) carried in a string and back without loss. Valid UTF-8 decodes as usual; every byte
/// of an invalid sequence becomes the lone surrogate U+DC80 + (byte - 0x80), which no valid UTF-8 decodes to, and
/// encodes back to that byte.
/// </summary>
public static class RawText
{
    private const char EscapeBase = '\uDC00';

    /// <summary>The string for <paramref name="bytes"/>.</summary>
    public static string Decode(ReadOnlySpan<byte> bytes)
    {
        var sb = new StringBuilder(bytes.Length);
        while (!bytes.IsEmpty)
        {
            var rune = Rune.DecodeFromUtf8(bytes, out Rune r, out int consumed);
            if (rune == System.Buffers.OperationStatus.Done)
            {
                sb.Append(r.ToString());
                bytes = bytes[consumed..];
            }
            else
            {
                sb.Append((char)(EscapeBase + bytes[0]));
                bytes = bytes[1..];
            }
        }
        return sb.ToString();
    }

    /// <summary>The bytes of <paramref name="text"/>: UTF-8, with each escaped byte as itself.</summary>
    public static byte[] Encode(ReadOnlySpan<char> text)
    {
        var bytes = new List<byte>(text.Length);
        Span<byte> utf8 = stackalloc byte[4];
        for (int i = 0; i < text.Length; i++)
        {
            char c = text[i];
            if (IsEscape(text, i))
            {
                bytes.Add((byte)(c - EscapeBase));
                continue;
            }
            if (char.IsHighSurrogate(c) && i + 1 < text.Length && char.IsLowSurrogate(text[i + 1]))
            {
                int n = new Rune(c, text[++i]).EncodeToUtf8(utf8);
                bytes.AddRange(utf8[..n]);
                continue;
            }
            int m = Rune.TryCreate(c, out Rune rune) ? rune.EncodeToUtf8(utf8) : Rune.ReplacementChar.EncodeToUtf8(utf8);
            bytes.AddRange(utf8[..m]);
        }
        return [.. bytes];
    }

    /// <summary>How many bytes <see cref="Encode"/> gives.</summary>
    public static int GetByteCount(ReadOnlySpan<char> text) => Encode(text).Length;

    /// <summary>Whether <paramref name="text"/> carries bytes that are not UTF-8.</summary>
    public static bool HasRawBytes(ReadOnlySpan<char> text)
    {
        for (int i = 0; i < text.Length; i++)
        {
            if (IsEscape(text, i))
                return true;
        }
        return false;
    }

    /// <summary>
    /// <paramref name="text"/> for a medium that must be valid Unicode (JSON): each raw byte as <c>\xNN</c>.
    /// </summary>
    [return: System.Diagnostics.CodeAnalysis.NotNullIfNotNull(nameof(text))]
    public static string? Printable(string? text)
    {
        if (text == null || !HasRawBytes(text))
            return text;
        var sb = new StringBuilder(text.Length + 8);
        for (int i = 0; i < text.Length; i++)
        {
            if (IsEscape(text, i))
                sb.Append(System.Globalization.CultureInfo.InvariantCulture, $"\\x{text[i] - EscapeBase:x2}");
            else
                sb.Append(text[i]);
        }
        return sb.ToString();
    }

    // A lone low surrogate in U+DC80..U+DCFF (one not after a high surrogate).
    private static bool IsEscape(ReadOnlySpan<char> text, int i) =>
        text[i] is >= '\uDC80' and <= '\uDCFF' && (i == 0 || !char.IsHighSurrogate(text[i - 1]));
}
