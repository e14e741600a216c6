using System.Buffers.Binary;

namespace XenLivepatch.Abi;

/// <summary>
/// The sandbox's payload signature status frames, a side channel beside the sysctl frames of
/// <see cref="SocketWire"/> (which keeps the public entry points and the magic numbers).
/// <code>
/// request: u32 'XLPS', u32 version (1), u32 name length, name bytes
/// reply:   u32 'XLPT', i32 rc (0, -ENOENT, -EPERM), u32 fields, per field: u32 key length, key, u32 value length, value (UTF-8)
/// </code>
/// </summary>
internal static class StatusFrames
{
    private const int MaxStatusFields = 32;
    private const int MaxStatusText = 4096;

    /// <summary>Encodes a status request for payload <paramref name="name"/>.</summary>
    public static byte[] EncodeRequest(string name)
    {
        byte[] n = System.Text.Encoding.UTF8.GetBytes(name);
        var m = new byte[12 + n.Length];
        BinaryPrimitives.WriteUInt32LittleEndian(m, SocketWire.StatusRequestMagic);
        BinaryPrimitives.WriteUInt32LittleEndian(m.AsSpan(4), SocketWire.Version);
        BinaryPrimitives.WriteUInt32LittleEndian(m.AsSpan(8), (uint)n.Length);
        n.CopyTo(m, 12);
        return m;
    }

    /// <summary>Decodes a status request.</summary>
    public static bool TryDecodeRequest(ReadOnlySpan<byte> m, out string name, out string error)
    {
        name = "";
        if (m.Length < 12 || !SocketWire.IsStatusRequest(m) || BinaryPrimitives.ReadUInt32LittleEndian(m[4..]) != SocketWire.Version)
        {
            error = "not a status request of this version";
            return false;
        }
        uint length = BinaryPrimitives.ReadUInt32LittleEndian(m[8..]);
        if (length > Livepatch.NameSize || length != m.Length - 12)
        {
            error = "bad status request name length";
            return false;
        }
        name = System.Text.Encoding.UTF8.GetString(m[12..]);
        error = "";
        return true;
    }

    /// <summary>Encodes a status reply.</summary>
    public static byte[] EncodeReply(int rc, IReadOnlyList<KeyValuePair<string, string>> fields)
    {
        ArgumentNullException.ThrowIfNull(fields);
        var encoded = fields.Take(MaxStatusFields)
            .Select(f => (Key: System.Text.Encoding.UTF8.GetBytes(f.Key), Value: System.Text.Encoding.UTF8.GetBytes(f.Value.Length > MaxStatusText ? f.Value[..MaxStatusText] : f.Value)))
            .ToList();
        var m = new byte[12 + encoded.Sum(f => 8 + f.Key.Length + f.Value.Length)];
        BinaryPrimitives.WriteUInt32LittleEndian(m, SocketWire.StatusReplyMagic);
        BinaryPrimitives.WriteInt32LittleEndian(m.AsSpan(4), rc);
        BinaryPrimitives.WriteUInt32LittleEndian(m.AsSpan(8), (uint)encoded.Count);
        int at = 12;
        foreach (var (key, value) in encoded)
        {
            BinaryPrimitives.WriteUInt32LittleEndian(m.AsSpan(at), (uint)key.Length);
            key.CopyTo(m, at + 4);
            at += 4 + key.Length;
            BinaryPrimitives.WriteUInt32LittleEndian(m.AsSpan(at), (uint)value.Length);
            value.CopyTo(m, at + 4);
            at += 4 + value.Length;
        }
        return m;
    }

    /// <summary>Decodes a status reply.</summary>
    public static bool TryDecodeReply(ReadOnlySpan<byte> m, out int rc, out Dictionary<string, string> fields, out string error)
    {
        rc = 0;
        fields = new Dictionary<string, string>(StringComparer.Ordinal);
        if (m.Length < 12 || BinaryPrimitives.ReadUInt32LittleEndian(m) != SocketWire.StatusReplyMagic)
        {
            error = "not a status reply";
            return false;
        }
        rc = BinaryPrimitives.ReadInt32LittleEndian(m[4..]);
        uint count = BinaryPrimitives.ReadUInt32LittleEndian(m[8..]);
        if (count > MaxStatusFields)
        {
            error = "too many status fields";
            return false;
        }
        int at = 12;
        for (int i = 0; i < count; i++)
        {
            string? key = null;
            for (int part = 0; part < 2; part++)
            {
                if (m.Length - at < 4)
                {
                    error = "truncated status reply";
                    return false;
                }
                uint length = BinaryPrimitives.ReadUInt32LittleEndian(m[at..]);
                at += 4;
                if (length > MaxStatusText * 4 || m.Length - at < length)
                {
                    error = "truncated status reply";
                    return false;
                }
                string text = System.Text.Encoding.UTF8.GetString(m.Slice(at, (int)length));
                at += (int)length;
                if (part == 0)
                    key = text;
                else
                    fields[key!] = text;
            }
        }
        error = "";
        return true;
    }
}
