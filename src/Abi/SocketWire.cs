using System.Buffers.Binary;

namespace XenLivepatch.Abi;

/// <summary>One caller buffer carried with a sysctl: its address in the caller (the guest handle), its bytes.</summary>
/// <param name="Address">The guest handle (an address in the caller's space).</param>
/// <param name="Data">The contents: sent when <paramref name="In"/>, returned when <paramref name="Out"/>.</param>
/// <param name="In">The hypervisor reads it (a name, a payload).</param>
/// <param name="Out">The hypervisor writes it (LIST's arrays).</param>
public sealed record WireBuffer(ulong Address, byte[] Data, bool In, bool Out);

/// <summary>
/// The sandbox socket's framing: a request carries a hypercall's argument structure exactly as the hypercall
/// takes it, plus the caller buffers its guest handles point at; the reply carries the structure as the
/// hypervisor left it, the hypercall's result, and the buffers it wrote. All integers are little-endian.
/// <code>
/// request v1: u32 'XLPQ', u32 1, u32 op bytes (136), u32 buffers,
///             xen_sysctl, then per buffer: u64 address, u32 length, u32 flags (1 in, 2 out), [bytes if in]
/// request v2: u32 'XLPQ', u32 2, u32 op bytes, u32 buffers, u32 hypercall, u32 0,
///             op, then the buffers as in v1
///             hypercall 35 (sysctl): op is the 136-byte xen_sysctl
///             hypercall 17 (xen_version): op is i32 cmd, u32 0, u64 arg (the guest handle, 0 for none); at most
///             one buffer, of at most <see cref="MaxXenVersionBuffer"/> bytes
/// reply:      u32 'XLPR', i32 rc, u32 op bytes, u32 buffers,
///             op, then per out buffer: u64 address, u32 length, bytes
/// </code>
/// Version 1 is what every sysctl still travels as, so a sandbox from before version 2 serves today's tools
/// for everything but xen_version; a sandbox that does not know version 2 closes the connection.
/// </summary>
public static class SocketWire
{
    /// <summary>"XLPQ".</summary>
    public const uint RequestMagic = 0x51504c58;
    /// <summary>"XLPR".</summary>
    public const uint ReplyMagic = 0x52504c58;
    /// <summary>The protocol version of sysctl frames (every sysctl travels as version 1).</summary>
    public const uint Version = 1;
    /// <summary>The protocol version that names the hypercall (sysctl or xen_version).</summary>
    public const uint VersionWithHypercall = 2;
    /// <summary><c>__HYPERVISOR_sysctl</c>.</summary>
    public const uint SysctlHypercall = 35;
    /// <summary>The size of a xen_version frame's op: i32 cmd, u32 0, u64 arg.</summary>
    public const int XenVersionOpSize = 16;
    /// <summary>The largest buffer a xen_version request may carry (Xen's largest sub-op result is 1 KiB).</summary>
    public const int MaxXenVersionBuffer = 4096;
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

    /// <summary>Decodes a version 1 (sysctl) request; false (with the reason) when it is malformed.</summary>
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

    /// <summary>
    /// Reads a version 1 request's headers without allocating its buffers; false (with the reason) when it is
    /// malformed. <paramref name="outBytes"/> is what its out-buffers add up to (at most <see cref="MaxOutBytes"/>).
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
        return TryReadHeaders(m, XenSysctl.SizeOf, MaxMessage, out headers, out outBytes, out error);
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

    /// <summary>The 136-byte <c>xen_sysctl</c> of a version 1 request that <see cref="TryReadRequest"/> accepted.</summary>
    public static byte[] Sysctl(ReadOnlySpan<byte> m) => m.Slice(16, XenSysctl.SizeOf).ToArray();

    // The version 1 layout after the magic and version: op size (must be opSize), buffer count, op, buffers (each
    // at most maxBuffer bytes, in or out or both, the out ones adding up to at most MaxOutBytes), all checked
    // before anything is allocated for them.
    private static bool TryReadHeaders(ReadOnlySpan<byte> m, int opSize, int maxBuffer, out List<BufferHeader> headers, out int outBytes, out string error)
    {
        headers = [];
        outBytes = 0;
        uint length = BinaryPrimitives.ReadUInt32LittleEndian(m[8..]);
        uint count = BinaryPrimitives.ReadUInt32LittleEndian(m[12..]);
        if (length != opSize || count > MaxBuffers || m.Length < 16 + (int)length)
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
            if (len > maxBuffer)
            {
                error = "buffer too large";
                return false;
            }
            bool isIn = (flags & 1) != 0;
            if (isIn && m.Length - at < len)
            {
                error = "truncated buffer";
                return false;
            }
            if (!isIn)
                outs += len;
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

    private static bool TryDecodeBody(ReadOnlySpan<byte> m, int opSize, int maxBuffer, bool allocateOut, out byte[] op, out List<WireBuffer> buffers, out string error)
    {
        op = [];
        buffers = [];
        if (!TryReadHeaders(m, opSize, maxBuffer, out var headers, out _, out error))
            return false;
        op = m.Slice(16, opSize).ToArray();
        buffers = Buffers(m, headers, allocateOut);
        return true;
    }

    /// <summary>Encodes a xen_version request (version 2): <paramref name="cmd"/> with its argument buffer, or none.</summary>
    public static byte[] EncodeXenVersionRequest(int cmd, WireBuffer? arg)
    {
        var op = new byte[XenVersionOpSize];
        BinaryPrimitives.WriteInt32LittleEndian(op, cmd);
        BinaryPrimitives.WriteUInt64LittleEndian(op.AsSpan(8), arg?.Address ?? 0);
        IReadOnlyList<WireBuffer> buffers = arg == null ? [] : [arg];
        byte[] v1 = EncodeRequest(op, buffers);
        // The v1 body with the hypercall number and a reserved word between the header and the op.
        var m = new byte[v1.Length + 8];
        v1.AsSpan(0, 16).CopyTo(m);
        BinaryPrimitives.WriteUInt32LittleEndian(m.AsSpan(4), VersionWithHypercall);
        BinaryPrimitives.WriteUInt32LittleEndian(m.AsSpan(16), XenVersion.Hypercall);
        v1.AsSpan(16).CopyTo(m.AsSpan(24));
        return m;
    }

    /// <summary>
    /// Decodes a request of either version; false (with the reason) when it is malformed or breaks a limit (a
    /// xen_version request with more than one buffer, or a buffer over <see cref="MaxXenVersionBuffer"/> bytes).
    /// </summary>
    /// <remarks>
    /// Without <paramref name="sysctlOutBuffers"/>, a sysctl's out-buffers are left empty: for a caller whose every
    /// sysctl fails before it touches one (an unprivileged peer), nothing is allocated for them.
    /// </remarks>
    public static bool TryDecode(ReadOnlySpan<byte> m, out WireRequest request, out string error, bool sysctlOutBuffers = true)
    {
        request = new WireRequest(SysctlHypercall, [], []);
        if (m.Length < 16 || BinaryPrimitives.ReadUInt32LittleEndian(m) != RequestMagic)
        {
            error = "not a livepatch sysctl request";
            return false;
        }
        uint version = BinaryPrimitives.ReadUInt32LittleEndian(m[4..]);
        if (version == Version)
        {
            if (!TryReadRequest(m, out var headers, out _, out error))
                return false;
            request = new WireRequest(SysctlHypercall, Sysctl(m), Buffers(m, headers, sysctlOutBuffers));
            return true;
        }
        if (version != VersionWithHypercall)
        {
            error = "unknown protocol version";
            return false;
        }
        if (m.Length < 24 || BinaryPrimitives.ReadUInt32LittleEndian(m[20..]) != 0)
        {
            error = "truncated version 2 header";
            return false;
        }
        uint hypercall = BinaryPrimitives.ReadUInt32LittleEndian(m[16..]);
        uint opSize = BinaryPrimitives.ReadUInt32LittleEndian(m[8..]);
        uint count = BinaryPrimitives.ReadUInt32LittleEndian(m[12..]);
        bool version17 = hypercall == XenVersion.Hypercall;
        if (hypercall != SysctlHypercall && !version17)
        {
            error = $"hypercall {hypercall} is not served";
            return false;
        }
        if (version17 && (opSize != XenVersionOpSize || count > 1 || m.Length > 24 + XenVersionOpSize + 16 + MaxXenVersionBuffer))
        {
            error = "xen_version request over its size budget";
            return false;
        }
        // The rest is a version 1 body: reuse its decoder on a header rebuilt without the two extra words.
        var body = new byte[m.Length - 8];
        m[..16].CopyTo(body);
        BinaryPrimitives.WriteUInt32LittleEndian(body.AsSpan(4), Version);
        m[24..].CopyTo(body.AsSpan(16));
        if (!TryDecodeBody(body, (int)opSize, version17 ? MaxXenVersionBuffer : MaxMessage, allocateOut: version17 || sysctlOutBuffers, out byte[] op, out var list, out error))
            return false;
        request = new WireRequest(hypercall, op, list);
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

    /// <summary>Decodes a reply to a sysctl into the result, the structure and the returned buffers.</summary>
    public static bool TryDecodeReply(ReadOnlySpan<byte> m, out int rc, out byte[] sysctl, out List<(ulong Address, byte[] Data)> buffers, out string error) =>
        TryDecodeReply(m, XenSysctl.SizeOf, out rc, out sysctl, out buffers, out error);

    /// <summary>Decodes a reply whose op is <paramref name="opSize"/> bytes (136 for a sysctl, 16 for xen_version).</summary>
    public static bool TryDecodeReply(ReadOnlySpan<byte> m, int opSize, out int rc, out byte[] sysctl, out List<(ulong Address, byte[] Data)> buffers, out string error)
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
        if (length != opSize || count > MaxBuffers || m.Length < 16 + (int)length)
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
    /// sandbox answers it from its registry, for <c>get</c> and <c>list --json</c>. <see cref="StatusFrames"/> holds the layout.
    /// </summary>
    public const uint StatusRequestMagic = 0x53504c58;
    /// <summary>"XLPT".</summary>
    public const uint StatusReplyMagic = 0x54504c58;

    /// <summary>True when <paramref name="m"/> is a status request (rather than a sysctl).</summary>
    public static bool IsStatusRequest(ReadOnlySpan<byte> m) => m.Length >= 4 && BinaryPrimitives.ReadUInt32LittleEndian(m) == StatusRequestMagic;

    /// <summary>Encodes a status request for payload <paramref name="name"/>.</summary>
    public static byte[] EncodeStatusRequest(string name) => StatusFrames.EncodeRequest(name);

    /// <summary>Decodes a status request.</summary>
    public static bool TryDecodeStatusRequest(ReadOnlySpan<byte> m, out string name, out string error) =>
        StatusFrames.TryDecodeRequest(m, out name, out error);

    /// <summary>Encodes a status reply.</summary>
    public static byte[] EncodeStatusReply(int rc, IReadOnlyList<KeyValuePair<string, string>> fields) =>
        StatusFrames.EncodeReply(rc, fields);

    /// <summary>Decodes a status reply.</summary>
    public static bool TryDecodeStatusReply(ReadOnlySpan<byte> m, out int rc, out Dictionary<string, string> fields, out string error) =>
        StatusFrames.TryDecodeReply(m, out rc, out fields, out error);
}

/// <summary>A decoded request: which hypercall, its argument structure, and the caller buffers.</summary>
/// <param name="Hypercall">35 (sysctl) or 17 (xen_version).</param>
/// <param name="Op">The 136-byte <c>xen_sysctl</c>, or the 16-byte xen_version op (cmd, arg).</param>
/// <param name="Buffers">The caller buffers.</param>
public sealed record WireRequest(uint Hypercall, byte[] Op, List<WireBuffer> Buffers)
{
    /// <summary>A xen_version request's <c>cmd</c>.</summary>
    public int XenVersionCmd => BinaryPrimitives.ReadInt32LittleEndian(Op);

    /// <summary>A xen_version request's <c>arg</c> (a guest handle, 0 for none).</summary>
    public ulong XenVersionArg => BinaryPrimitives.ReadUInt64LittleEndian(Op.AsSpan(8));
}
