using System.Buffers.Binary;

namespace XenLivepatch.Abi;

/// <summary>
/// <c>struct livepatch_expectation</c> (32 bytes, packed): one byte of bitfields (<c>enabled:1, len:5,
/// rsv:2</c>, from the least significant bit, as gcc allocates them on x86-64 and arm64) and 31 bytes of
/// data that must match the old function at APPLY.
/// </summary>
public readonly record struct LivepatchExpectation(bool Enabled, byte Length, byte Reserved, ReadOnlyMemory<byte> Data)
{
    /// <summary><c>sizeof(struct livepatch_expectation)</c>.</summary>
    public const int SizeOf = 32;

    /// <summary>Size of <c>data</c>.</summary>
    public const int DataSize = 31;

    /// <summary>Decodes the bitfield byte and the data.</summary>
    public static LivepatchExpectation Read(ReadOnlySpan<byte> s)
    {
        byte bits = s[0];
        return new LivepatchExpectation((bits & 1) != 0, (byte)((bits >> 1) & 0x1f), (byte)(bits >> 6), s.Slice(1, DataSize).ToArray());
    }

    /// <summary>Encodes the structure; <see cref="Length"/> must fit 5 bits, <see cref="Reserved"/> 2 bits, the data 31 bytes.</summary>
    public void Write(Span<byte> d)
    {
        if (Length > 0x1f || Reserved > 3 || Data.Length > DataSize)
            throw new ArgumentOutOfRangeException(nameof(d), "expectation len is 5 bits, rsv 2 bits and data 31 bytes");
        d[0] = (byte)((Enabled ? 1 : 0) | (Length << 1) | (Reserved << 6));
        d.Slice(1, DataSize).Clear();
        Data.Span.CopyTo(d[1..]);
    }
}

/// <summary>
/// <c>struct livepatch_func</c>, one entry of <c>.livepatch.funcs</c>: version 1 (64 bytes; the seed's form,
/// Xen 4.7–4.13) or version 2 (104 bytes, Xen 4.14+, with an expectation). Pointers are 64-bit: this is the
/// LP64 layout of x86-64 and arm64.
/// </summary>
public readonly record struct LivepatchFunc
{
    /// <summary><c>const char *name</c>: the old function's name, used when <see cref="OldAddr"/> is 0.</summary>
    public ulong Name { get; init; }
    /// <summary><c>void *new_addr</c>: the replacement, or 0 to NOP out <see cref="NewSize"/> bytes.</summary>
    public ulong NewAddr { get; init; }
    /// <summary><c>void *old_addr</c>: the function to patch, or 0 to resolve <see cref="Name"/>.</summary>
    public ulong OldAddr { get; init; }
    /// <summary><c>uint32_t new_size</c>.</summary>
    public uint NewSize { get; init; }
    /// <summary><c>uint32_t old_size</c> (must not be 0).</summary>
    public uint OldSize { get; init; }
    /// <summary><c>uint8_t version</c> (<c>LIVEPATCH_PAYLOAD_VERSION</c>: 1 or 2).</summary>
    public byte Version { get; init; }
    /// <summary><c>opaque[31]</c> (v1) or <c>_pad[39]</c> (v2): bytes the hypervisor does not check.</summary>
    public ReadOnlyMemory<byte> Pad { get; init; }
    /// <summary><c>expect</c> (version 2 only).</summary>
    public LivepatchExpectation Expect { get; init; }

    /// <summary>Size of a version's structure: 64 (v1) or 104 (v2).</summary>
    public static int SizeOf(byte version) => version == 1 ? 64 : 104;

    /// <summary>Member offsets.</summary>
    public static class FieldLocations
    {
        /// <summary><c>name</c>.</summary>
        public const int Name = 0;
        /// <summary><c>new_addr</c>.</summary>
        public const int NewAddr = 8;
        /// <summary><c>old_addr</c>.</summary>
        public const int OldAddr = 16;
        /// <summary><c>new_size</c>.</summary>
        public const int NewSize = 24;
        /// <summary><c>old_size</c>.</summary>
        public const int OldSize = 28;
        /// <summary><c>version</c>.</summary>
        public const int Version = 32;
        /// <summary><c>opaque</c> / <c>_pad</c>.</summary>
        public const int Pad = 33;
        /// <summary><c>expect</c> (v2).</summary>
        public const int Expect = 72;
    }

    /// <summary>Size of <c>opaque</c>/<c>_pad</c> in a version.</summary>
    public static int PadSize(byte version) => version == 1 ? Livepatch.OpaqueSize : 39;

    /// <summary>The members of a version, for layout checks.</summary>
    public static IReadOnlyList<AbiField> Fields(byte version) =>
    [
        new("name", FieldLocations.Name, 8), new("new_addr", FieldLocations.NewAddr, 8), new("old_addr", FieldLocations.OldAddr, 8),
        new("new_size", FieldLocations.NewSize, 4), new("old_size", FieldLocations.OldSize, 4), new("version", FieldLocations.Version, 1),
        .. version == 1
            ? (AbiField[])[new("opaque", FieldLocations.Pad, Livepatch.OpaqueSize)]
            : [new("_pad", FieldLocations.Pad, 39), new("expect", FieldLocations.Expect, LivepatchExpectation.SizeOf), new("expect.data", FieldLocations.Expect + 1, LivepatchExpectation.DataSize)],
    ];

    /// <summary>Reads an entry of <paramref name="version"/>'s layout (the stored version byte is reported as found).</summary>
    public static LivepatchFunc Read(ReadOnlySpan<byte> s, byte version) => new()
    {
        Name = BinaryPrimitives.ReadUInt64LittleEndian(s[FieldLocations.Name..]),
        NewAddr = BinaryPrimitives.ReadUInt64LittleEndian(s[FieldLocations.NewAddr..]),
        OldAddr = BinaryPrimitives.ReadUInt64LittleEndian(s[FieldLocations.OldAddr..]),
        NewSize = BinaryPrimitives.ReadUInt32LittleEndian(s[FieldLocations.NewSize..]),
        OldSize = BinaryPrimitives.ReadUInt32LittleEndian(s[FieldLocations.OldSize..]),
        Version = s[FieldLocations.Version],
        Pad = s.Slice(FieldLocations.Pad, PadSize(version)).ToArray(),
        Expect = version == 1 ? default : LivepatchExpectation.Read(s[FieldLocations.Expect..]),
    };

    /// <summary>Writes an entry in <paramref name="version"/>'s layout.</summary>
    public void Write(Span<byte> d, byte version)
    {
        d[..SizeOf(version)].Clear();
        BinaryPrimitives.WriteUInt64LittleEndian(d[FieldLocations.Name..], Name);
        BinaryPrimitives.WriteUInt64LittleEndian(d[FieldLocations.NewAddr..], NewAddr);
        BinaryPrimitives.WriteUInt64LittleEndian(d[FieldLocations.OldAddr..], OldAddr);
        BinaryPrimitives.WriteUInt32LittleEndian(d[FieldLocations.NewSize..], NewSize);
        BinaryPrimitives.WriteUInt32LittleEndian(d[FieldLocations.OldSize..], OldSize);
        d[FieldLocations.Version] = Version;
        if (Pad.Length > PadSize(version))
            throw new ArgumentOutOfRangeException(nameof(d), $"pad is {PadSize(version)} bytes in version {version}");
        Pad.Span.CopyTo(d[FieldLocations.Pad..]);
        if (version != 1)
            Expect.Write(d[FieldLocations.Expect..]);
    }
}
