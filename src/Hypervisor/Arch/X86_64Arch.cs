using System.Buffers.Binary;
using XenLivepatch.Abi;
using XenLivepatch.Elf;

namespace XenLivepatch.Hypervisor;

/// <summary>x86-64 (xen/arch/x86/livepatch.c).</summary>
public sealed class X86_64Arch : LivepatchArch
{
    /// <summary>The instance.</summary>
    public static X86_64Arch Instance { get; } = new();

    private X86_64Arch() { }

    /// <inheritdoc/>
    public override ElfMachine Machine => ElfMachine.X86_64;

    /// <inheritdoc/>
    public override long Range => 1L << 31;

    /// <inheritdoc/>
    public override int JumpSize => 5;

    /// <summary><c>ENDBR64</c>: f3 0f 1e fa.</summary>
    public static ReadOnlySpan<byte> Endbr64 => [0xf3, 0x0f, 0x1e, 0xfa];

    /// <summary>The 4-byte NOP Xen writes over ENDBR64 of functions that must not be called indirectly.</summary>
    public static ReadOnlySpan<byte> Endbr64Poison => [0x66, 0x0f, 0x1f, 0x01];

    /// <inheritdoc/>
    public override LivepatchError? VerifyElf(string payload, byte elfClass, byte elfData, ushort machine) =>
        machine != (ushort)ElfMachine.X86_64 || elfClass != (byte)ElfClass.Elf64 || elfData != (byte)ElfEncoding.LittleEndian
            ? Refuse.X86ElfMachine(payload, machine, elfClass, elfData)
            : null;

    /// <inheritdoc/>
    public override LivepatchError PerformRel(string payload, string section) =>
        Refuse.X86Rel(payload, section);

    /// <inheritdoc/>
    public override LivepatchError? Relocate(ref RelocationSite site)
    {
        ulong size = (ulong)site.Section.Length;
        switch ((X86_64RelocationType)site.Type)
        {
            case X86_64RelocationType.R_X86_64_NONE:
                return null;
            case X86_64RelocationType.R_X86_64_64:
                if (site.Offset > size || size - site.Offset < 8)
                    return PastEnd(site);
                BinaryPrimitives.WriteUInt64LittleEndian(site.Section[(int)site.Offset..], site.Value);
                return null;
            case X86_64RelocationType.R_X86_64_PC32:
            case X86_64RelocationType.R_X86_64_PLT32:
            {
                if (site.Offset > size || size - site.Offset < 4)
                    return PastEnd(site);
                long value = (long)(site.Value - site.Place);
                BinaryPrimitives.WriteInt32LittleEndian(site.Section[(int)site.Offset..], (int)value);
                if (value != (int)value)
                    return Refuse.X86RelocationOverflow(site.Payload, site.Index, site.RelocationSection, site.TargetSection, value);
                return null;
            }
            default:
                return Refuse.X86RelocationType(site.Payload, ((X86_64RelocationType)site.Type).GetSpecName() ?? site.Type.ToString(System.Globalization.CultureInfo.InvariantCulture),
                    site.Index, site.RelocationSection);
        }
    }

    /// <inheritdoc/>
    public override LivepatchError? VerifyFunc(string payload, in LivepatchFunc func, bool hasEndbr)
    {
        if (func.NewAddr == 0)
        {
            if (func.NewSize > Livepatch.OpaqueSize)
                return Refuse.X86NopTooLarge(payload, func.NewSize, Livepatch.OpaqueSize);
            if (func.OldSize < func.NewSize)
                return Refuse.X86NopLongerThanFunction(payload, func.NewSize, func.OldSize);
            return null;
        }
        int needed = JumpSize + (hasEndbr ? Endbr64.Length : 0);
        if (func.OldSize < needed)
            return Refuse.X86FunctionTooSmall(payload, func.OldSize, needed, hasEndbr ? " (after its ENDBR64)" : "");
        return null;
    }

    // The P6 "ideal" NOPs (add_nops): 1 to 9 bytes.
    private static readonly byte[][] s_nops =
    [
        [],
        [0x90],
        [0x66, 0x90],
        [0x0f, 0x1f, 0x00],
        [0x0f, 0x1f, 0x40, 0x00],
        [0x0f, 0x1f, 0x44, 0x00, 0x00],
        [0x66, 0x0f, 0x1f, 0x44, 0x00, 0x00],
        [0x0f, 0x1f, 0x80, 0x00, 0x00, 0x00, 0x00],
        [0x0f, 0x1f, 0x84, 0x00, 0x00, 0x00, 0x00, 0x00],
        [0x66, 0x0f, 0x1f, 0x84, 0x00, 0x00, 0x00, 0x00, 0x00],
    ];

    /// <summary>Fills <paramref name="dest"/> with NOPs in chunks of up to 9 bytes, as Xen's <c>add_nops</c> does.</summary>
    public static void FillNops(Span<byte> dest)
    {
        while (!dest.IsEmpty)
        {
            int n = Math.Min(dest.Length, 9);
            s_nops[n].CopyTo(dest);
            dest = dest[n..];
        }
    }

    /// <inheritdoc/>
    public override void EncodePatch(in LivepatchFunc func, ulong place, Span<byte> dest)
    {
        if (func.NewAddr == 0)
        {
            FillNops(dest);
            return;
        }
        dest[0] = 0xE9; // jmp rel32
        BinaryPrimitives.WriteInt32LittleEndian(dest[1..], unchecked((int)(func.NewAddr - (place + 5))));
    }

    /// <inheritdoc/>
    public override bool StartsWithEndbr(ReadOnlySpan<byte> first4) => first4.SequenceEqual(Endbr64) || first4.SequenceEqual(Endbr64Poison);
}
