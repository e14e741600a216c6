using System.Buffers.Binary;

namespace XenLivepatch.Abi;

/// <summary>
/// The other sysctls a live patching tool makes besides <c>XEN_SYSCTL_livepatch_op</c>: the console ones, with
/// which <c>xl debug-keys x</c> and <c>xl dmesg</c> show what the livepatch core holds (its debug key 'x' prints
/// into Xen's console ring). Numbers from xen/include/public/sysctl.h; same in every interface version.
/// </summary>
public static class SysctlCommands
{
    /// <summary><c>XEN_SYSCTL_readconsole</c>.</summary>
    public const uint ReadConsole = 1;
    /// <summary><c>XEN_SYSCTL_debug_keys</c>.</summary>
    public const uint DebugKeys = 7;
    /// <summary><c>XEN_SYSCTL_livepatch_op</c>.</summary>
    public const uint LivepatchOp = Livepatch.SysctlCommand;

    /// <summary>A whole <c>xen_sysctl</c> of command <paramref name="cmd"/>, its union written by <paramref name="writeUnion"/>.</summary>
    public static byte[] Encode(uint cmd, uint interfaceVersion, UnionWriter writeUnion)
    {
        ArgumentNullException.ThrowIfNull(writeUnion);
        var buffer = new byte[XenSysctl.SizeOf];
        BinaryPrimitives.WriteUInt32LittleEndian(buffer, cmd);
        BinaryPrimitives.WriteUInt32LittleEndian(buffer.AsSpan(4), interfaceVersion);
        writeUnion(buffer.AsSpan(XenSysctl.UnionOffset, XenSysctl.UnionSize));
        return buffer;
    }

    /// <summary>Writes into a span (a sysctl's union).</summary>
    public delegate void UnionWriter(Span<byte> union);
}

/// <summary>
/// <c>struct xen_sysctl_readconsole</c> (24 bytes): reads Xen's console ring. IN <c>clear</c> (empty the ring
/// after reading), <c>incremental</c> (start at <c>index</c>), <c>buffer</c>, <c>count</c> (its size); OUT
/// <c>index</c> (where the read stopped: the next incremental read starts there) and <c>count</c> (bytes written).
/// </summary>
public readonly record struct SysctlReadConsole(byte Clear, byte Incremental, uint Index, ulong Buffer, uint Count)
{
    /// <summary><c>sizeof</c>.</summary>
    public const int SizeOf = 24;

    /// <summary>Member offsets.</summary>
    public static class FieldLocations
    {
        /// <summary><c>uint8_t clear</c>.</summary>
        public const int Clear = 0;
        /// <summary><c>uint8_t incremental</c>.</summary>
        public const int Incremental = 1;
        /// <summary><c>uint8_t pad0, pad1</c>.</summary>
        public const int Pad = 2;
        /// <summary><c>uint32_t index</c>.</summary>
        public const int Index = 4;
        /// <summary><c>XEN_GUEST_HANDLE_64(char) buffer</c>.</summary>
        public const int Buffer = 8;
        /// <summary><c>uint32_t count</c>.</summary>
        public const int Count = 16;
    }

    /// <summary>The members, for layout checks.</summary>
    public static IReadOnlyList<AbiField> Fields { get; } =
    [
        new("clear", FieldLocations.Clear, 1), new("incremental", FieldLocations.Incremental, 1), new("pad0", FieldLocations.Pad, 1),
        new("pad1", FieldLocations.Pad + 1, 1), new("index", FieldLocations.Index, 4), new("buffer", FieldLocations.Buffer, 8),
        new("count", FieldLocations.Count, 4),
    ];

    /// <summary>Reads the structure.</summary>
    public static SysctlReadConsole Read(ReadOnlySpan<byte> s) => new(
        s[FieldLocations.Clear],
        s[FieldLocations.Incremental],
        BinaryPrimitives.ReadUInt32LittleEndian(s[FieldLocations.Index..]),
        BinaryPrimitives.ReadUInt64LittleEndian(s[FieldLocations.Buffer..]),
        BinaryPrimitives.ReadUInt32LittleEndian(s[FieldLocations.Count..]));

    /// <summary>Writes the structure (the pads and the tail padding zeroed).</summary>
    public void Write(Span<byte> d)
    {
        d[..SizeOf].Clear();
        d[FieldLocations.Clear] = Clear;
        d[FieldLocations.Incremental] = Incremental;
        BinaryPrimitives.WriteUInt32LittleEndian(d[FieldLocations.Index..], Index);
        BinaryPrimitives.WriteUInt64LittleEndian(d[FieldLocations.Buffer..], Buffer);
        BinaryPrimitives.WriteUInt32LittleEndian(d[FieldLocations.Count..], Count);
    }
}

/// <summary>
/// <c>struct xen_sysctl_debug_keys</c> (16 bytes): IN <c>keys</c>, <c>nr_keys</c>. Xen runs each key's handler
/// as if pressed on its console; what they print goes to the console ring.
/// </summary>
public readonly record struct SysctlDebugKeys(ulong Keys, uint NrKeys)
{
    /// <summary><c>sizeof</c>.</summary>
    public const int SizeOf = 16;

    /// <summary>Member offsets.</summary>
    public static class FieldLocations
    {
        /// <summary><c>XEN_GUEST_HANDLE_64(const_char) keys</c>.</summary>
        public const int Keys = 0;
        /// <summary><c>uint32_t nr_keys</c>.</summary>
        public const int NrKeys = 8;
    }

    /// <summary>The members, for layout checks.</summary>
    public static IReadOnlyList<AbiField> Fields { get; } = [new("keys", FieldLocations.Keys, 8), new("nr_keys", FieldLocations.NrKeys, 4)];

    /// <summary>Reads the structure.</summary>
    public static SysctlDebugKeys Read(ReadOnlySpan<byte> s) => new(
        BinaryPrimitives.ReadUInt64LittleEndian(s[FieldLocations.Keys..]),
        BinaryPrimitives.ReadUInt32LittleEndian(s[FieldLocations.NrKeys..]));

    /// <summary>Writes the structure (the tail padding zeroed).</summary>
    public void Write(Span<byte> d)
    {
        d[..SizeOf].Clear();
        BinaryPrimitives.WriteUInt64LittleEndian(d[FieldLocations.Keys..], Keys);
        BinaryPrimitives.WriteUInt32LittleEndian(d[FieldLocations.NrKeys..], NrKeys);
    }
}
