using System.Text;

namespace XenLivepatch.Elf;

/// <summary>Builds the contents of a string table: a leading NUL, then each distinct string once.</summary>
public sealed class StringTableBuilder
{
    private readonly Dictionary<string, uint> _offsets = new(StringComparer.Ordinal) { [""] = 0 };
    private readonly List<byte> _bytes = [0];

    /// <summary>Adds <paramref name="value"/> (once) and returns its offset.</summary>
    public uint Add(string value)
    {
        if (_offsets.TryGetValue(value, out uint offset))
            return offset;
        offset = (uint)_bytes.Count;
        _bytes.AddRange(Encoding.Latin1.GetBytes(value));
        _bytes.Add(0);
        _offsets[value] = offset;
        return offset;
    }

    /// <summary>The offset of a string already added.</summary>
    public uint this[string value] => _offsets[value];

    /// <summary>The table's bytes.</summary>
    public byte[] ToArray() => [.. _bytes];
}
