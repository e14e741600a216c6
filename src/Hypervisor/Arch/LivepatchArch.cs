using System.Diagnostics.CodeAnalysis;
using XenLivepatch.Abi;
using XenLivepatch.Elf;

namespace XenLivepatch.Hypervisor;

/// <summary>One RELA entry being applied: where, to what, and for whom (for the messages).</summary>
public ref struct RelocationSite
{
    /// <summary>The loaded bytes of the relocated section.</summary>
    public Span<byte> Section { get; set; }
    /// <summary><c>r_offset</c>.</summary>
    public ulong Offset { get; set; }
    /// <summary>P: the address of the place (section load address + r_offset).</summary>
    public ulong Place { get; set; }
    /// <summary>S + A: the resolved symbol value plus the addend.</summary>
    public ulong Value { get; set; }
    /// <summary>The relocation type.</summary>
    public uint Type { get; set; }
    /// <summary>The payload's name.</summary>
    public string Payload { get; set; }
    /// <summary>The relocation section's name.</summary>
    public string RelocationSection { get; set; }
    /// <summary>The relocated section's name.</summary>
    public string TargetSection { get; set; }
    /// <summary>The entry's index in its section.</summary>
    public int Index { get; set; }
}

/// <summary>
/// What differs between architectures in the livepatch core (xen/arch/*/livepatch.c): the ELF header
/// check, relocations, the function checks, the patch range and the instructions a patch writes.
/// Chosen from <c>e_machine</c> by <see cref="TryGet"/>.
/// </summary>
public abstract class LivepatchArch
{
    /// <summary>The machine this architecture patches.</summary>
    public abstract ElfMachine Machine { get; }

    /// <summary><c>ARCH_LIVEPATCH_RANGE</c>: a patched function and its replacement must be closer than this.</summary>
    public abstract long Range { get; }

    /// <summary>The architecture for <paramref name="machine"/>.</summary>
    public static bool TryGet(ElfMachine machine, [NotNullWhen(true)] out LivepatchArch? arch)
    {
        arch = machine switch
        {
            ElfMachine.X86_64 => X86_64Arch.Instance,
            ElfMachine.AArch64 => Arm64Arch.Instance,
            _ => null,
        };
        return arch != null;
    }

    /// <summary>The architecture for <paramref name="machine"/>; throws for machines we do not patch.</summary>
    public static LivepatchArch Get(ElfMachine machine) =>
        TryGet(machine, out var arch) ? arch : throw new NotSupportedException($"livepatching {machine} is not supported (x86-64 and arm64 are)");

    /// <summary><c>arch_livepatch_verify_elf</c>: class, byte order and machine of the payload (raw e_ident bytes).</summary>
    public abstract LivepatchError? VerifyElf(string payload, byte elfClass, byte elfData, ushort machine);

    /// <summary><c>arch_livepatch_perform_rel</c>: SHT_REL sections.</summary>
    public abstract LivepatchError PerformRel(string payload, string section);

    /// <summary><c>arch_livepatch_perform_rela</c>, for one entry.</summary>
    public abstract LivepatchError? Relocate(ref RelocationSite site);

    /// <summary>
    /// <c>arch_livepatch_verify_func</c>: the sizes a function entry needs. <paramref name="hasEndbr"/> tells
    /// whether the old function starts with ENDBR64 (or its poison) on x86.
    /// </summary>
    public abstract LivepatchError? VerifyFunc(string payload, in LivepatchFunc func, bool hasEndbr);

    /// <summary><c>arch_livepatch_symbol_ok</c>: whether a payload symbol goes to its exported symbol table.</summary>
    public virtual bool SymbolOk(string name) => true;

    /// <summary>Bytes at the start of an old function that this architecture patches after (ENDBR64); empty when none.</summary>
    public virtual bool StartsWithEndbr(ReadOnlySpan<byte> first4) => false;

    /// <summary>
    /// Whether the hypervisor has an exception table a payload's <c>.ex_table</c> extends (<c>CONFIG_HAS_EX_TABLE</c>:
    /// x86 only); where it has none, a payload with the section is refused with -EOPNOTSUPP.
    /// </summary>
    public virtual bool HasExceptionTable => true;

    /// <summary>
    /// Where a patch starts in the old function (<c>arch_livepatch_apply</c>'s <c>patch_offset</c>): 4 bytes in
    /// when the function starts with ENDBR64 (or its poison) and the profile handles CET-IBT (Xen 4.17); else 0.
    /// <paramref name="head"/> is the function's first bytes (shorter when they are not known).
    /// </summary>
    public int PatchOffset(LivepatchProfile profile, ReadOnlySpan<byte> head)
    {
        ArgumentNullException.ThrowIfNull(profile);
        return profile.HandlesEndbr && head.Length >= 4 && StartsWithEndbr(head[..4]) ? 4 : 0;
    }

    /// <summary>How many bytes a function's patch writes after <paramref name="patchOffset"/>, at most what Xen saves.</summary>
    public int PatchBytes(in LivepatchFunc func, int patchOffset) => Math.Min(PatchLength(func, patchOffset), Livepatch.OpaqueSize);

    /// <summary>Size of the patch a jump needs (x86 <c>E9 rel32</c>: 5; arm64 <c>B</c>: 4).</summary>
    public abstract int JumpSize { get; }

    /// <summary>
    /// <c>livepatch_insn_len</c>: how many bytes a function's patch writes at <c>old_addr + patch_offset</c>:
    /// a jump, or the NOPs that replace <c>new_size - patch_offset</c> bytes.
    /// </summary>
    public int PatchLength(in LivepatchFunc func, int patchOffset) =>
        func.NewAddr != 0 ? JumpSize : (int)Math.Max(0L, (long)func.NewSize - patchOffset);

    /// <summary>
    /// The instructions of a patch (<c>arch_livepatch_apply</c>): a branch from <paramref name="place"/> to
    /// <c>new_addr</c>, or NOPs when <c>new_addr</c> is 0. <paramref name="dest"/> is <see cref="PatchLength"/> bytes.
    /// </summary>
    public abstract void EncodePatch(in LivepatchFunc func, ulong place, Span<byte> dest);

    /// <summary>
    /// Why the branch from <paramref name="place"/> to <c>new_addr</c> cannot be encoded although the upload checks
    /// pass it (what the patch is then), or null when it can: <c>check</c> tells its user.
    /// </summary>
    public virtual string? UnencodablePatch(in LivepatchFunc func, ulong place) => null;

    // A relocation whose place runs past the section it relocates (both architectures).
    private protected static LivepatchError PastEnd(in RelocationSite site) =>
        Refuse.RelocationPastEnd(site.Payload, site.Index, site.RelocationSection, site.Offset, site.TargetSection, site.Section.Length);
}
