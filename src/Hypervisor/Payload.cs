using XenLivepatch.Abi;
using XenLivepatch.Signing;

namespace XenLivepatch.Hypervisor;

/// <summary>
/// One <c>livepatch_func</c> of a loaded payload, after relocation and old-address resolution, with the
/// per-function state Xen keeps outside the payload (<c>struct livepatch_fstate</c>).
/// </summary>
public sealed class PatchFunction
{
    /// <summary>The entry as relocated (old_addr resolved).</summary>
    public required LivepatchFunc Entry { get; init; }

    /// <summary>The old function's name (read through <c>name</c>), or "" when the entry has none.</summary>
    public required string Name { get; init; }

    /// <summary>Where this entry lives in the payload's memory.</summary>
    public required ulong EntryAddress { get; init; }

    /// <summary>The address patched.</summary>
    public ulong OldAddress => Entry.OldAddr;

    /// <summary>The replacement, or 0 for a NOP patch.</summary>
    public ulong NewAddress => Entry.NewAddr;

    /// <summary><c>fstate.patch_offset</c>: bytes skipped at the start of the old function (an ENDBR64 on x86).</summary>
    public int PatchOffset { get; set; }

    /// <summary><c>fstate.applied</c>.</summary>
    public LivepatchFuncState Applied { get; set; }

    /// <summary><c>fstate.insn_buffer</c>: the original bytes a patch overwrote.</summary>
    public byte[] SavedBytes { get; } = new byte[Livepatch.OpaqueSize];

    /// <summary>How many bytes of <see cref="SavedBytes"/> are in use.</summary>
    public int SavedLength { get; set; }
}

/// <summary>A symbol a payload defines (its exported symbol table).</summary>
/// <param name="Name">The name.</param>
/// <param name="Value">The address.</param>
/// <param name="Size">The size.</param>
/// <param name="IsNew">True for new symbols (visible to later payloads); false for those that override a patched function.</param>
public sealed record PayloadSymbol(string Name, ulong Value, ulong Size, bool IsNew);

/// <summary>Where a payload's hooks live: the address of each hook section's pointer(s), 0 when absent.</summary>
public sealed class PayloadHooks
{
    /// <summary><c>.livepatch.hooks.load</c> entries (addresses of function pointers).</summary>
    public IReadOnlyList<ulong> Load { get; init; } = [];
    /// <summary><c>.livepatch.hooks.unload</c> entries.</summary>
    public IReadOnlyList<ulong> Unload { get; init; } = [];
    /// <summary><c>.livepatch.hooks.preapply</c>.</summary>
    public ulong PreApply { get; init; }
    /// <summary><c>.livepatch.hooks.apply</c>.</summary>
    public ulong Apply { get; init; }
    /// <summary><c>.livepatch.hooks.postapply</c>.</summary>
    public ulong PostApply { get; init; }
    /// <summary><c>.livepatch.hooks.prerevert</c>.</summary>
    public ulong PreRevert { get; init; }
    /// <summary><c>.livepatch.hooks.revert</c>.</summary>
    public ulong Revert { get; init; }
    /// <summary><c>.livepatch.hooks.postrevert</c>.</summary>
    public ulong PostRevert { get; init; }
}

/// <summary>A section of a loaded payload, for diagnostics.</summary>
public sealed record PayloadSection(string Name, ulong Address, ulong Size, string Region);

/// <summary>
/// A payload that passed UPLOAD: its memory, functions, hooks, build-ids, metadata and symbols, and its
/// state in the registry (CHECKED/APPLIED, the rc of its last action).
/// </summary>
public sealed class Payload
{
    internal Payload(string name) => Name = name;

    /// <summary>The name it was uploaded under.</summary>
    public string Name { get; }

    /// <summary>CHECKED or APPLIED.</summary>
    public LivepatchState State { get; internal set; } = LivepatchState.Checked;

    /// <summary>0, -EAGAIN while an action runs, or the -errno of the last action.</summary>
    public int Rc { get; internal set; }

    /// <summary>True once it has been reverted.</summary>
    public bool Reverted { get; internal set; }

    /// <summary>True when it has no rw data but <c>.livepatch.funcs</c>, so it may be applied again after a revert.</summary>
    public bool SafeToReapply { get; internal set; }

    /// <summary>Its memory.</summary>
    public PayloadAllocation Memory { get; internal set; } = null!;

    /// <summary>Its functions (empty for a hooks-only payload).</summary>
    public IReadOnlyList<PatchFunction> Functions { get; internal set; } = [];

    /// <summary>Its hooks.</summary>
    public PayloadHooks Hooks { get; internal set; } = new();

    /// <summary>Its own build-id (<c>.note.gnu.build-id</c>).</summary>
    public ReadOnlyMemory<byte> BuildId { get; internal set; }

    /// <summary>The build-id it applies on top of (<c>.livepatch.depends</c>).</summary>
    public ReadOnlyMemory<byte> Depends { get; internal set; }

    /// <summary>The hypervisor build-id it was made for (<c>.livepatch.xen_depends</c>); empty in the seed profile.</summary>
    public ReadOnlyMemory<byte> XenDepends { get; internal set; }

    /// <summary><c>.modinfo</c>: <c>key=value\0…</c>; empty when absent.</summary>
    public ReadOnlyMemory<byte> Metadata { get; internal set; }

    /// <summary>Its exported symbols.</summary>
    public IReadOnlyList<PayloadSymbol> Symbols { get; internal set; } = [];

    /// <summary>Its loaded sections.</summary>
    public IReadOnlyList<PayloadSection> Sections { get; internal set; } = [];

    /// <summary>True when a pre/post apply/revert hook is present (REPLACE refuses those).</summary>
    public bool HasVetoingHooks { get; internal set; }

    /// <summary>
    /// Its signature check at UPLOAD: verified and by which key, or why not (accepted unverified under policy
    /// verify). Null when the policy is none.
    /// </summary>
    public SignatureVerdict? Signature { get; internal set; }
}
