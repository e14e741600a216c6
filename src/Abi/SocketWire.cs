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

    /// <summary>
    /// The most bytes the out-buffers of one request may add up to: what a reply of <see cref="MaxMessage"/> bytes
    /// carries. The server allocates them and echoes them back, so this bounds what one request makes it hold.
    /// </summary>
    public const int MaxOutBytes = MaxMessage - 16 - XenSysctl.SizeOf - MaxBuffers * 12;

    /// <summary>One buffer header of a request: where its bytes are in the message when it is in.</summary>
    /// <param name="Address">The guest handle.</param>
    /// <param name="Length">The buffer's length.</param>
    /// <param name="In">Whether the request carries its bytes.</param>
    /// <param name="Out">Whether the reply brings them back.</param>
    /// <param name="Offset">Where its bytes start in the message (in buffers).</param>
    public readonly record struct BufferHeader(ulong Address, int Length, bool In, bool Out, int Offset);

    /// <summary>
    /// Reads a request's headers without allocating its buffers; false (with the reason) when it is malformed.
    /// <paramref name="outBytes"/> is what its out-buffers add up to (at most <see cref="MaxOutBytes"/>).
    /// </summary>
    public static bool TryReadRequest(ReadOnlySpan<byte> m, out List<BufferHeader> headers, out int outBytes, out string error)
    {
        headers = [];
        outBytes = 0;
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
        int at = 16 + (int)length;
        long outs = 0;
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
            if (flags is 0 or > 3)
            {
                error = $"buffer flags {flags} (1 in, 2 out, 3 both)";
                return false;
            }
            if (len > MaxMessage)
            {
                error = "buffer too large";
                return false;
            }
            bool isIn = (flags & 1) != 0;
            if (isIn)
            {
                if (m.Length - at < len)
                {
                    error = "truncated buffer";
                    return false;
                }
            }
            else
            {
                outs += len;
            }
            headers.Add(new BufferHeader(address, (int)len, isIn, (flags & 2) != 0, at));
            if (isIn)
                at += (int)len;
        }
        if (outs > MaxOutBytes)
        {
            error = $"out-buffers of {outs} bytes, more than a reply carries ({MaxOutBytes})";
            return false;
        }
        outBytes = (int)outs;
        error = "";
        return true;
    }

    /// <summary>
    /// The buffers of a request read by <see cref="TryReadRequest"/>: in-buffers with their bytes, the others
    /// zeroed, or, without <paramref name="allocateOut"/>, empty (for a caller whose every call fails).
    /// </summary>
    public static List<WireBuffer> Buffers(ReadOnlySpan<byte> m, IReadOnlyList<BufferHeader> headers, bool allocateOut = true)
    {
        ArgumentNullException.ThrowIfNull(headers);
        var buffers = new List<WireBuffer>(headers.Count);
        foreach (var h in headers)
        {
            byte[] data = h.In ? m.Slice(h.Offset, h.Length).ToArray() : allocateOut ? new byte[h.Length] : [];
            buffers.Add(new WireBuffer(h.Address, data, h.In, h.Out));
        }
        return buffers;
    }

    /// <summary>The 136-byte <c>xen_sysctl</c> of a request that <see cref="TryReadRequest"/> accepted.</summary>
    public static byte[] Sysctl(ReadOnlySpan<byte> m) => m.Slice(16, XenSysctl.SizeOf).ToArray();

    /// <summary>Decodes a request; false (with the reason) when it is malformed.</summary>
    public static bool TryDecodeRequest(ReadOnlySpan<byte> m, out byte[] sysctl, out List<WireBuffer> buffers, out string error)
    {
        sysctl = [];
        buffers = [];
        if (!TryReadRequest(m, out var headers, out _, out error))
            return false;
        sysctl = Sysctl(m);
        buffers = Buffers(m, headers);
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
}
