using System.Buffers.Binary;

namespace XenLivepatch.Abi;

/// <summary>One caller buffer carried with a sysctl: its address in the caller (the guest handle), its bytes.</summary>
/// <param name="Address">The guest handle (an address in the caller's space).</param>
/// <param name="Data">The contents: sent when <paramref name="In"/>, returned when <paramref name="Out"/>.</param>
/// <param name="In">The hypervisor reads it (a name, a payload).</param>
/// <param name="Out">The hypervisor writes it (LIST's arrays).</param>
public sealed record WireBuffer(ulong Address, byte[] Data, bool In, bool Out);

/// <summary>
/// The sandbox socket's framing: a request carries the 136-byte <c>xen_sysctl</c> exactly as the hypercall
/// takes it, plus the caller buffers its guest handles point at; the reply carries the <c>xen_sysctl</c> as the
/// hypervisor left it, the hypercall's result, and the buffers it wrote. All integers are little-endian.
/// <code>
/// request: u32 'XLPQ', u32 version (1), u32 sysctl bytes (136), u32 buffers,
///          xen_sysctl, then per buffer: u64 address, u32 length, u32 flags (1 in, 2 out), [bytes if in]
/// reply:   u32 'XLPR', i32 rc, u32 sysctl bytes (136), u32 buffers,
///          xen_sysctl, then per out buffer: u64 address, u32 length, bytes
/// </code>
/// </summary>
public static class SocketWire
{
    /// <summary>"XLPQ".</summary>
    public const uint RequestMagic = 0x51504c58;
    /// <summary>"XLPR".</summary>
    public const uint ReplyMagic = 0x52504c58;
    /// <summary>The protocol version.</summary>
    public const uint Version = 1;
    /// <summary>The largest message either side accepts: a 2 MiB payload plus room for the rest.</summary>
    public const int MaxMessage = 4 * 1024 * 1024;
    /// <summary>The most buffers one sysctl carries (LIST uses five).</summary>
    public const int MaxBuffers = 16;

    /// <summary>Encodes a request.</summary>
    public static byte[] EncodeRequest(ReadOnlySpan<byte> sysctl, IReadOnlyList<WireBuffer> buffers)
    {
        int size = 16 + sysctl.Length + buffers.Sum(b => 16 + (b.In ? b.Data.Length : 0));
        var m = new byte[size];
        var s = m.AsSpan();
        BinaryPrimitives.WriteUInt32LittleEndian(s, RequestMagic);
        BinaryPrimitives.WriteUInt32LittleEndian(s[4..], Version);
        BinaryPrimitives.WriteUInt32LittleEndian(s[8..], (uint)sysctl.Length);
        BinaryPrimitives.WriteUInt32LittleEndian(s[12..], (uint)buffers.Count);
        sysctl.CopyTo(s[16..]);
        int at = 16 + sysctl.Length;
        foreach (var b in buffers)
        {
            BinaryPrimitives.WriteUInt64LittleEndian(s[at..], b.Address);
            BinaryPrimitives.WriteUInt32LittleEndian(s[(at + 8)..], (uint)b.Data.Length);
            BinaryPrimitives.WriteUInt32LittleEndian(s[(at + 12)..], (b.In ? 1u : 0) | (b.Out ? 2u : 0));
            at += 16;
            if (b.In)
            {
                b.Data.CopyTo(s[at..]);
                at += b.Data.Length;
            }
        }
        return m;
    }

    /// <summary>Decodes a request; false (with the reason) when it is malformed.</summary>
    public static bool TryDecodeRequest(ReadOnlySpan<byte> m, out byte[] sysctl, out List<WireBuffer> buffers, out string error)
    {
        sysctl = [];
        buffers = [];
        if (m.Length < 16 || BinaryPrimitives.ReadUInt32LittleEndian(m) != RequestMagic)
        {
            error = "not a livepatch sysctl request";
            return false;
        }
        if (BinaryPrimitives.ReadUInt32LittleEndian(m[4..]) != Version)
        {
            error = "unknown protocol version";
            return false;
        }
        uint length = BinaryPrimitives.ReadUInt32LittleEndian(m[8..]);
        uint count = BinaryPrimitives.ReadUInt32LittleEndian(m[12..]);
        if (length != XenSysctl.SizeOf || count > MaxBuffers || m.Length < 16 + (int)length)
        {
            error = "bad sysctl size or buffer count";
            return false;
        }
        sysctl = m.Slice(16, (int)length).ToArray();
        int at = 16 + (int)length;
        for (int i = 0; i < count; i++)
        {
            if (m.Length - at < 16)
            {
                error = "truncated buffer header";
                return false;
            }
            ulong address = BinaryPrimitives.ReadUInt64LittleEndian(m[at..]);
            uint len = BinaryPrimitives.ReadUInt32LittleEndian(m[(at + 8)..]);
            uint flags = BinaryPrimitives.ReadUInt32LittleEndian(m[(at + 12)..]);
            at += 16;
            if (len > MaxMessage)
            {
                error = "buffer too large";
                return false;
            }
            byte[] data;
            if ((flags & 1) != 0)
            {
                if (m.Length - at < len)
                {
                    error = "truncated buffer";
                    return false;
                }
                data = m.Slice(at, (int)len).ToArray();
                at += (int)len;
            }
            else
            {
                data = new byte[len];
            }
            buffers.Add(new WireBuffer(address, data, (flags & 1) != 0, (flags & 2) != 0));
        }
        error = "";
        return true;
    }

    /// <summary>Encodes a reply: the result, the structure, and the buffers marked out.</summary>
    public static byte[] EncodeReply(int rc, ReadOnlySpan<byte> sysctl, IReadOnlyList<WireBuffer> buffers)
    {
        var outs = buffers.Where(b => b.Out).ToList();
        int size = 16 + sysctl.Length + outs.Sum(b => 12 + b.Data.Length);
        var m = new byte[size];
        var s = m.AsSpan();
        BinaryPrimitives.WriteUInt32LittleEndian(s, ReplyMagic);
        BinaryPrimitives.WriteInt32LittleEndian(s[4..], rc);
        BinaryPrimitives.WriteUInt32LittleEndian(s[8..], (uint)sysctl.Length);
        BinaryPrimitives.WriteUInt32LittleEndian(s[12..], (uint)outs.Count);
        sysctl.CopyTo(s[16..]);
        int at = 16 + sysctl.Length;
        foreach (var b in outs)
        {
            BinaryPrimitives.WriteUInt64LittleEndian(s[at..], b.Address);
            BinaryPrimitives.WriteUInt32LittleEndian(s[(at + 8)..], (uint)b.Data.Length);
            b.Data.CopyTo(s[(at + 12)..]);
            at += 12 + b.Data.Length;
        }
        return m;
    }

    /// <summary>Decodes a reply into the result, the structure and the returned buffers.</summary>
    public static bool TryDecodeReply(ReadOnlySpan<byte> m, out int rc, out byte[] sysctl, out List<(ulong Address, byte[] Data)> buffers, out string error)
    {
        rc = 0;
        sysctl = [];
        buffers = [];
        if (m.Length < 16 || BinaryPrimitives.ReadUInt32LittleEndian(m) != ReplyMagic)
        {
            error = "not a livepatch sysctl reply";
            return false;
        }
        rc = BinaryPrimitives.ReadInt32LittleEndian(m[4..]);
        uint length = BinaryPrimitives.ReadUInt32LittleEndian(m[8..]);
        uint count = BinaryPrimitives.ReadUInt32LittleEndian(m[12..]);
        if (length != XenSysctl.SizeOf || count > MaxBuffers || m.Length < 16 + (int)length)
        {
            error = "bad reply sizes";
            return false;
        }
        sysctl = m.Slice(16, (int)length).ToArray();
        int at = 16 + (int)length;
        for (int i = 0; i < count; i++)
        {
            if (m.Length - at < 12)
            {
                error = "truncated reply";
                return false;
            }
            ulong address = BinaryPrimitives.ReadUInt64LittleEndian(m[at..]);
            uint len = BinaryPrimitives.ReadUInt32LittleEndian(m[(at + 8)..]);
            at += 12;
            if (m.Length - at < len)
            {
                error = "truncated reply buffer";
                return false;
            }
            buffers.Add((address, m.Slice(at, (int)len).ToArray()));
            at += (int)len;
        }
        error = "";
        return true;
    }

    /// <summary>"XLPS": a payload signature status request. Not a sysctl (Xen's ABI has no signature field): the
    /// sandbox answers it from its registry, for <c>get</c> and <c>list --json</c>.
    /// <code>
    /// request: u32 'XLPS', u32 version (1), u32 name length, name bytes
    /// reply:   u32 'XLPT', i32 rc (0, -ENOENT, -EPERM), u32 fields, per field: u32 key length, key, u32 value length, value (UTF-8)
    /// </code>
    /// </summary>
    public const uint StatusRequestMagic = 0x53504c58;
    /// <summary>"XLPT".</summary>
    public const uint StatusReplyMagic = 0x54504c58;
    private const int MaxStatusFields = 32;
    private const int MaxStatusText = 4096;

    /// <summary>True when <paramref name="m"/> is a status request (rather than a sysctl).</summary>
    public static bool IsStatusRequest(ReadOnlySpan<byte> m) => m.Length >= 4 && BinaryPrimitives.ReadUInt32LittleEndian(m) == StatusRequestMagic;

    /// <summary>Encodes a status request for payload <paramref name="name"/>.</summary>
    public static byte[] EncodeStatusRequest(string name)
    {
        byte[] n = System.Text.Encoding.UTF8.GetBytes(name);
        var m = new byte[12 + n.Length];
        BinaryPrimitives.WriteUInt32LittleEndian(m, StatusRequestMagic);
        BinaryPrimitives.WriteUInt32LittleEndian(m.AsSpan(4), Version);
        BinaryPrimitives.WriteUInt32LittleEndian(m.AsSpan(8), (uint)n.Length);
        n.CopyTo(m, 12);
        return m;
    }

    /// <summary>Decodes a status request.</summary>
    public static bool TryDecodeStatusRequest(ReadOnlySpan<byte> m, out string name, out string error)
    {
        name = "";
        if (m.Length < 12 || !IsStatusRequest(m) || BinaryPrimitives.ReadUInt32LittleEndian(m[4..]) != Version)
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
    public static byte[] EncodeStatusReply(int rc, IReadOnlyList<KeyValuePair<string, string>> fields)
    {
        ArgumentNullException.ThrowIfNull(fields);
        var encoded = fields.Take(MaxStatusFields)
            .Select(f => (Key: System.Text.Encoding.UTF8.GetBytes(f.Key), Value: System.Text.Encoding.UTF8.GetBytes(f.Value.Length > MaxStatusText ? f.Value[..MaxStatusText] : f.Value)))
            .ToList();
        var m = new byte[12 + encoded.Sum(f => 8 + f.Key.Length + f.Value.Length)];
        BinaryPrimitives.WriteUInt32LittleEndian(m, StatusReplyMagic);
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
    public static bool TryDecodeStatusReply(ReadOnlySpan<byte> m, out int rc, out Dictionary<string, string> fields, out string error)
    {
        rc = 0;
        fields = new Dictionary<string, string>(StringComparer.Ordinal);
        if (m.Length < 12 || BinaryPrimitives.ReadUInt32LittleEndian(m) != StatusReplyMagic)
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
