using System.Buffers.Binary;
using XenLivepatch.Abi;
using XenLivepatch.Elf;

namespace XenLivepatch.Hypervisor;

/// <summary>
/// arm64 (xen/arch/arm/arm64/livepatch.c): relocations follow Linux's module loader, including which types
/// are checked for overflow and the TSTBR14 quirk (a 19-bit range check on a 14-bit field). A patch is one
/// 4-byte <c>B</c> at old_addr (or NOPs); Xen writes it through a writable alias of its text, cleans the data
/// cache over it (and over the replacement), and invalidates the instruction cache and synchronises (ISB) once
/// every patch is written, before any CPU leaves the rendezvous. Checked against real arm64 Xen 4.17.3 under
/// QEMU (tests/Hypervisor.Tests/Differential/XenArm64DifferentialTests.cs).
/// </summary>
public sealed class Arm64Arch : LivepatchArch
{
    /// <summary>The instance.</summary>
    public static Arm64Arch Instance { get; } = new();

    private Arm64Arch() { }

    /// <inheritdoc/>
    public override ElfMachine Machine => ElfMachine.AArch64;

    /// <inheritdoc/>
    public override long Range => 128L << 20;

    /// <inheritdoc/>
    public override int JumpSize => 4;

    /// <inheritdoc/>
    public override bool HasExceptionTable => false;

    /// <summary><c>LIVEPATCH_VMAP_START</c> in Xen 4.17's arm64 memory layout: payloads are mapped from here.</summary>
    public const ulong PayloadAreaStart = 0x00a00000;

    /// <summary>
    /// Where the first payload goes: the area's first page holds its allocator's bitmap (<c>vm_init_type</c>)
    /// and every allocation follows a free guard page (<c>vm_alloc</c>).
    /// </summary>
    public const ulong PayloadAreaFirst = PayloadAreaStart + 0x2000;

    /// <summary>
    /// How far payloads reach from <see cref="PayloadAreaStart"/>. <c>LIVEPATCH_VMAP_SIZE</c> is 2 MiB, but Xen
    /// 4.17's allocator hands out every page its first bitmap page covers (32,768 pages) before it looks at the
    /// area's end, and nothing else is mapped there: real arm64 Xen 4.17.3 takes payloads past 2 MiB.
    /// </summary>
    public const ulong PayloadAreaReach = 128UL << 20;

    /// <summary><c>AARCH64_BREAK_FAULT</c>: an instruction that relocation leaves untouched.</summary>
    public const uint BreakFault = 0xd4200000 | (0x800 << 5);

    private enum Op { Abs, Prel, Page }

    private enum Imm { Bits26, Bits19, Bits16, Bits14, Bits12, Adr }

    /// <inheritdoc/>
    public override LivepatchError? VerifyElf(string payload, byte elfClass, byte elfData, ushort machine) =>
        machine != (ushort)ElfMachine.AArch64 || elfClass != (byte)ElfClass.Elf64
            ? Refuse.Arm64ElfMachine(payload, machine, elfClass)
            : null;

    /// <inheritdoc/>
    public override LivepatchError PerformRel(string payload, string section) =>
        Refuse.Arm64Rel(payload, section);

    /// <inheritdoc/>
    public override bool SymbolOk(string name) =>
        !(name.Length >= 2 && name[0] == '$' && name[1] is 'x' or 'd' && (name.Length == 2 || name[2] == '.'));

    /// <inheritdoc/>
    public override LivepatchError? VerifyFunc(string payload, in LivepatchFunc func, bool hasEndbr)
    {
        if (func.NewAddr == 0 && (func.NewSize > Livepatch.OpaqueSize || func.NewSize % 4 != 0))
            return Refuse.Arm64NopSize(payload, func.NewSize, Livepatch.OpaqueSize);
        if (func.OldSize < 4)
            return Refuse.Arm64FunctionTooSmall(payload, func.OldSize);
        return null;
    }

    /// <summary>The A64 NOP.</summary>
    public const uint Nop = 0xd503201f;

    /// <inheritdoc/>
    public override void EncodePatch(in LivepatchFunc func, ulong place, Span<byte> dest)
    {
        if (func.NewAddr == 0)
        {
            for (int i = 0; i + 4 <= dest.Length; i += 4)
                BinaryPrimitives.WriteUInt32LittleEndian(dest[i..], Nop);
            return;
        }
        // B imm26: a PC-relative branch in [-128 MiB, +128 MiB) between word-aligned addresses. The upload check
        // (old - new within the range) passes +128 MiB and a replacement off a word boundary; Xen's encoder
        // refuses those ("offset out of range", "must be word aligned") and the patch is its break instruction.
        long offset = unchecked((long)(func.NewAddr - place));
        uint insn = UnencodablePatch(func, place) != null ? BreakFault : 0x14000000u | (uint)((offset >> 2) & 0x3ffffff);
        BinaryPrimitives.WriteUInt32LittleEndian(dest, insn);
    }

    /// <inheritdoc/>
    public override string? UnencodablePatch(in LivepatchFunc func, ulong place)
    {
        if (func.NewAddr == 0)
            return null;
        long offset = unchecked((long)(func.NewAddr - place));
        string? why = ((place | func.NewAddr) & 3) != 0 ? "is not word aligned"
            : offset < -Range || offset >= Range ? $"is {offset:+#;-#} bytes away, outside the B's [-128 MiB, +128 MiB)"
            : null;
        return why == null ? null
            : $"the branch from 0x{place:x} to 0x{func.NewAddr:x} {why}: Xen accepts the payload but writes BRK #0x800 there, which traps when the function is called";
    }

    /// <inheritdoc/>
    public override LivepatchError? Relocate(ref RelocationSite site)
    {
        ulong size = (ulong)site.Section.Length;
        // Every arm64 relocation touches at least one 32-bit word.
        if (site.Offset >= size || size - site.Offset < 4)
            return PastEnd(site);
        var dest = site.Section[(int)site.Offset..];
        bool check = true;
        bool overflow;
        switch ((AArch64RelocationType)site.Type)
        {
            case AArch64RelocationType.R_AARCH64_ABS64:
                if (size - site.Offset < 8)
                    return PastEnd(site);
                check = false;
                overflow = Data(Op.Abs, dest, site, 64);
                break;
            case AArch64RelocationType.R_AARCH64_ABS32: overflow = Data(Op.Abs, dest, site, 32); break;
            case AArch64RelocationType.R_AARCH64_ABS16: overflow = Data(Op.Abs, dest, site, 16); break;
            case AArch64RelocationType.R_AARCH64_PREL64:
                if (size - site.Offset < 8)
                    return PastEnd(site);
                check = false;
                overflow = Data(Op.Prel, dest, site, 64);
                break;
            case AArch64RelocationType.R_AARCH64_PREL32: overflow = Data(Op.Prel, dest, site, 32); break;
            case AArch64RelocationType.R_AARCH64_PREL16: overflow = Data(Op.Prel, dest, site, 16); break;

            case AArch64RelocationType.R_AARCH64_MOVW_UABS_G0_NC: check = false; overflow = Movw(Op.Abs, dest, site, 0, signed: false); break;
            case AArch64RelocationType.R_AARCH64_MOVW_UABS_G0: overflow = Movw(Op.Abs, dest, site, 0, signed: false); break;
            case AArch64RelocationType.R_AARCH64_MOVW_UABS_G1_NC: check = false; overflow = Movw(Op.Abs, dest, site, 16, signed: false); break;
            case AArch64RelocationType.R_AARCH64_MOVW_UABS_G1: overflow = Movw(Op.Abs, dest, site, 16, signed: false); break;
            case AArch64RelocationType.R_AARCH64_MOVW_UABS_G2_NC: check = false; overflow = Movw(Op.Abs, dest, site, 32, signed: false); break;
            case AArch64RelocationType.R_AARCH64_MOVW_UABS_G2: overflow = Movw(Op.Abs, dest, site, 32, signed: false); break;
            case AArch64RelocationType.R_AARCH64_MOVW_UABS_G3: check = false; overflow = Movw(Op.Abs, dest, site, 48, signed: false); break;
            case AArch64RelocationType.R_AARCH64_MOVW_SABS_G0: overflow = Movw(Op.Abs, dest, site, 0, signed: true); break;
            case AArch64RelocationType.R_AARCH64_MOVW_SABS_G1: overflow = Movw(Op.Abs, dest, site, 16, signed: true); break;
            case AArch64RelocationType.R_AARCH64_MOVW_SABS_G2: overflow = Movw(Op.Abs, dest, site, 32, signed: true); break;
            case AArch64RelocationType.R_AARCH64_MOVW_PREL_G0_NC: check = false; overflow = Movw(Op.Prel, dest, site, 0, signed: false); break;
            case AArch64RelocationType.R_AARCH64_MOVW_PREL_G0: overflow = Movw(Op.Prel, dest, site, 0, signed: true); break;
            case AArch64RelocationType.R_AARCH64_MOVW_PREL_G1_NC: check = false; overflow = Movw(Op.Prel, dest, site, 16, signed: false); break;
            case AArch64RelocationType.R_AARCH64_MOVW_PREL_G1: overflow = Movw(Op.Prel, dest, site, 16, signed: true); break;
            case AArch64RelocationType.R_AARCH64_MOVW_PREL_G2_NC: check = false; overflow = Movw(Op.Prel, dest, site, 32, signed: false); break;
            case AArch64RelocationType.R_AARCH64_MOVW_PREL_G2: overflow = Movw(Op.Prel, dest, site, 32, signed: true); break;
            case AArch64RelocationType.R_AARCH64_MOVW_PREL_G3: check = false; overflow = Movw(Op.Prel, dest, site, 48, signed: true); break;

            case AArch64RelocationType.R_AARCH64_ADR_PREL_LO21: overflow = Insn(Op.Prel, dest, site, 0, 21, Imm.Adr); break;
            case AArch64RelocationType.R_AARCH64_ADR_PREL_PG_HI21_NC: check = false; overflow = Insn(Op.Page, dest, site, 12, 21, Imm.Adr); break;
            case AArch64RelocationType.R_AARCH64_ADR_PREL_PG_HI21: overflow = Insn(Op.Page, dest, site, 12, 21, Imm.Adr); break;
            case AArch64RelocationType.R_AARCH64_LDST8_ABS_LO12_NC:
            case AArch64RelocationType.R_AARCH64_ADD_ABS_LO12_NC: check = false; overflow = Insn(Op.Abs, dest, site, 0, 12, Imm.Bits12); break;
            case AArch64RelocationType.R_AARCH64_LDST16_ABS_LO12_NC: check = false; overflow = Insn(Op.Abs, dest, site, 1, 11, Imm.Bits12); break;
            case AArch64RelocationType.R_AARCH64_LDST32_ABS_LO12_NC: check = false; overflow = Insn(Op.Abs, dest, site, 2, 10, Imm.Bits12); break;
            case AArch64RelocationType.R_AARCH64_LDST64_ABS_LO12_NC: check = false; overflow = Insn(Op.Abs, dest, site, 3, 9, Imm.Bits12); break;
            case AArch64RelocationType.R_AARCH64_LDST128_ABS_LO12_NC: check = false; overflow = Insn(Op.Abs, dest, site, 4, 8, Imm.Bits12); break;
            // Xen (like older Linux) checks TSTBR14 against 19 bits while the field holds 14: reproduced.
            case AArch64RelocationType.R_AARCH64_TSTBR14: overflow = Insn(Op.Prel, dest, site, 2, 19, Imm.Bits14); break;
            case AArch64RelocationType.R_AARCH64_CONDBR19: overflow = Insn(Op.Prel, dest, site, 2, 19, Imm.Bits19); break;
            case AArch64RelocationType.R_AARCH64_JUMP26:
            case AArch64RelocationType.R_AARCH64_CALL26: overflow = Insn(Op.Prel, dest, site, 2, 26, Imm.Bits26); break;
            default:
                return Refuse.Arm64RelocationType(site.Payload, ((AArch64RelocationType)site.Type).GetSpecName() ?? site.Type.ToString(System.Globalization.CultureInfo.InvariantCulture),
                    site.Index, site.RelocationSection);
        }
        if (check && overflow)
            return Refuse.Arm64RelocationOverflow(site.Payload, site.Index, site.RelocationSection, site.TargetSection, ((AArch64RelocationType)site.Type).GetSpecName());
        return null;
    }

    private static long DoReloc(Op op, ulong place, ulong value) => op switch
    {
        Op.Abs => (long)value,
        Op.Prel => (long)(value - place),
        _ => (long)((value & ~0xfffUL) - (place & ~0xfffUL)),
    };

    // reloc_data: store len bits; 16/32-bit values overflow outside [INTn_MIN, UINTn_MAX].
    private static bool Data(Op op, Span<byte> dest, in RelocationSite site, int len)
    {
        long v = DoReloc(op, site.Place, site.Value);
        switch (len)
        {
            case 16:
                BinaryPrimitives.WriteInt16LittleEndian(dest, (short)v);
                return v is < short.MinValue or > ushort.MaxValue;
            case 32:
                BinaryPrimitives.WriteInt32LittleEndian(dest, (int)v);
                return v is < int.MinValue or > uint.MaxValue;
            default:
                BinaryPrimitives.WriteInt64LittleEndian(dest, v);
                return false;
        }
    }

    // reloc_insn_movw: a 16-bit immediate at bit 5; signed forms pick MOVZ (>= 0) or MOVN (< 0, inverted).
    private static bool Movw(Op op, Span<byte> dest, in RelocationSite site, int lsb, bool signed)
    {
        uint insn = BinaryPrimitives.ReadUInt32LittleEndian(dest);
        long sval = DoReloc(op, site.Place, site.Value);
        ulong imm = (ulong)(sval >> lsb);
        if (signed)
        {
            insn &= ~(3u << 29);
            if (sval >= 0)
                insn |= 2u << 29;
            else
                imm = ~imm;
        }
        insn = Encode(Imm.Bits16, insn, imm);
        BinaryPrimitives.WriteUInt32LittleEndian(dest, insn);
        return imm > ushort.MaxValue;
    }

    // reloc_insn_imm: len bits of (value >> lsb); overflow when the bits above len-1 are not all the sign bit.
    private static bool Insn(Op op, Span<byte> dest, in RelocationSite site, int lsb, int len, Imm type)
    {
        uint insn = BinaryPrimitives.ReadUInt32LittleEndian(dest);
        long sval = DoReloc(op, site.Place, site.Value) >> lsb;
        ulong mask = ((1UL << (lsb + len)) - 1) >> lsb;
        ulong imm = (ulong)sval & mask;
        insn = Encode(type, insn, imm);
        BinaryPrimitives.WriteUInt32LittleEndian(dest, insn);
        sval = (long)((ulong)sval & ~(mask >> 1)) >> (len - 1);
        return (ulong)(sval + 1) >= 2;
    }

    // aarch64_insn_encode_immediate.
    private static uint Encode(Imm type, uint insn, ulong imm)
    {
        if (insn == BreakFault)
            return insn;
        if (type == Imm.Adr)
        {
            uint immlo = (uint)(imm & 3);
            uint immhi = (uint)((imm >> 2) & 0x7ffff);
            insn &= ~((3u << 29) | (0x7ffffu << 5));
            return insn | (immlo << 29) | (immhi << 5);
        }
        (uint mask, int shift) = type switch
        {
            Imm.Bits26 => (0x3ffffffu, 0),
            Imm.Bits19 => (0x7ffffu, 5),
            Imm.Bits16 => (0xffffu, 5),
            Imm.Bits14 => (0x3fffu, 5),
            _ => (0xfffu, 10),
        };
        insn &= ~(mask << shift);
        return insn | (((uint)imm & mask) << shift);
    }
}
