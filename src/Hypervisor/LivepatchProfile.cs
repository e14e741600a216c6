using XenLivepatch.Abi;
using XenLivepatch.Signing;

namespace XenLivepatch.Hypervisor;

/// <summary>
/// Which hypervisor's rules the core follows. <see cref="Xen417"/> is what Debian's Xen 4.17.7 does (our
/// oracle, checked under QEMU); <see cref="Seed2016"/> follows the seed design document (payload version 1,
/// no <c>.livepatch.xen_depends</c>, <c>.livepatch.funcs</c> required, load/unload hooks only).
/// </summary>
public sealed record LivepatchProfile
{
    /// <summary>"xen-4.17" or "seed-2016".</summary>
    public required string Name { get; init; }

    /// <summary>The sysctl dialect.</summary>
    public required LivepatchAbi Abi { get; init; }

    /// <summary><c>LIVEPATCH_PAYLOAD_VERSION</c>: the version every <c>livepatch_func</c> must carry.</summary>
    public byte PayloadVersion => Abi.PayloadVersion;

    /// <summary>Size of one <c>livepatch_func</c> (64 or 104).</summary>
    public int FuncSize => LivepatchFunc.SizeOf(PayloadVersion);

    /// <summary>Xen 4.15+: <c>.livepatch.xen_depends</c> must exist and equal the hypervisor's build-id.</summary>
    public bool RequiresXenDepends { get; init; }

    /// <summary>
    /// The seed design: <c>.livepatch.funcs</c> is one of the special sections that must exist and be non-empty.
    /// Xen 4.14+ makes it optional as long as some patching section (funcs or a hook) exists.
    /// </summary>
    public bool RequiresFuncs { get; init; }

    /// <summary>Xen 4.14+: vetoing and action hooks (<c>.livepatch.hooks.{pre,post}{apply,revert}</c>, apply, revert).</summary>
    public bool SupportsActionHooks { get; init; }

    /// <summary>Xen 4.14+: expectations in <c>livepatch_func</c> are checked at APPLY and REPLACE.</summary>
    public bool SupportsExpectations { get; init; }

    /// <summary>Xen 4.17 (CET-IBT): a target starting with ENDBR64 (or its poison) is patched after it.</summary>
    public bool HandlesEndbr { get; init; }

    /// <summary>Xen 4.14+: APPLY may skip the payload-to-payload build-id check (LIVEPATCH_ACTION_APPLY_NODEPS).</summary>
    public bool SupportsNoDeps { get; init; }

    /// <summary>
    /// Newer Xen (0dc1f929e8) places zero-size SHF_ALLOC sections too. Xen 4.17 and the seed ignore them
    /// (<c>livepatch_elf_ignore_section</c>): they get no address, their symbols stay unresolved, relocations
    /// into them are skipped, and an empty <c>.data</c> or <c>.bss</c> does not make a payload unsafe to re-apply.
    /// </summary>
    public bool PlacesEmptySections { get; init; }

    /// <summary>
    /// Xen 4.19+: the second word of <c>xen_sysctl_livepatch_op</c> is <c>flags</c> and accepts
    /// LIVEPATCH_FLAG_FORCE. Earlier (4.17, the seed) it is <c>pad</c> and must be 0.
    /// </summary>
    public bool AcceptsOpFlags { get; init; }

    /// <summary>
    /// Xen 4.17 (and 4.22) set a payload's rc to -EAGAIN before <c>schedule_work</c>, which answers -EBUSY while
    /// another payload's action is pending and leaves that rc in place: the payload reads as "in progress" for good,
    /// and Xen's tool refuses every action on it (reference §7.4, quirk 4). The seed profile gives the payload its
    /// previous rc back when the action could not be scheduled.
    /// </summary>
    public bool KeepsAgainWhenBusy { get; init; }

    /// <summary>
    /// What UPLOAD does with payload signatures when the target sets no policy of its own. Xen 4.17 and the seed's
    /// Xen 4.7 verify nothing (the design's "Signature checking requirements" were never built): none.
    /// </summary>
    public SignaturePolicy SignaturePolicy { get; init; } = SignaturePolicy.None;

    /// <summary>
    /// The order of UPLOAD's steps after the ELF checks (<c>load_payload_data</c>). Xen 4.15 to 4.19 check
    /// <c>.livepatch.xen_depends</c> after <c>prepare_payload</c>; newer Xen checks it first.
    /// </summary>
    public IReadOnlyList<LoadStep> LoadOrder { get; init; } =
    [
        LoadStep.MovePayload, LoadStep.ResolveSymbols, LoadStep.PerformRelocations, LoadStep.CheckSpecialSections,
        LoadStep.CheckPatchingSections, LoadStep.PreparePayload, LoadStep.CheckXenBuildId, LoadStep.BuildSymbolTable,
    ];

    /// <summary>Debian's Xen 4.17.7.</summary>
    public static LivepatchProfile Xen417 { get; } = new()
    {
        Name = "xen-4.17",
        Abi = LivepatchAbi.Xen417,
        RequiresXenDepends = true,
        RequiresFuncs = false,
        SupportsActionHooks = true,
        SupportsExpectations = true,
        HandlesEndbr = true,
        SupportsNoDeps = true,
        KeepsAgainWhenBusy = true,
    };

    /// <summary>The seed design (Xen 4.7, 2016).</summary>
    public static LivepatchProfile Seed2016 { get; } = new()
    {
        Name = "seed-2016",
        Abi = LivepatchAbi.Seed2016,
        RequiresXenDepends = false,
        RequiresFuncs = true,
        SupportsActionHooks = false,
        SupportsExpectations = false,
        HandlesEndbr = false,
        SupportsNoDeps = false,
        KeepsAgainWhenBusy = false,
    };

    /// <summary>Every profile.</summary>
    public static IReadOnlyList<LivepatchProfile> All { get; } = [Xen417, Seed2016];

    /// <summary>Finds a profile by name.</summary>
    public static LivepatchProfile? FromName(string name) => All.FirstOrDefault(p => p.Name == name);
}
