using XenLivepatch.Abi;
using XenLivepatch.Signing;

namespace XenLivepatch.Hypervisor;

/// <summary>
/// Which hypervisor's rules the core follows: one property per difference, read where the difference is.
/// <see cref="Xen417"/> is what Debian's Xen 4.17.7 does and <see cref="Xen422"/> what upstream Xen 4.22.0 does (both
/// our oracles, checked under QEMU); <see cref="Seed2016"/> follows the seed design document (payload version 1, no
/// <c>.livepatch.xen_depends</c>, <c>.livepatch.funcs</c> required, load/unload hooks only).
/// </summary>
public sealed record LivepatchProfile
{
    /// <summary>"xen-4.17", "xen-4.22" or "seed-2016".</summary>
    public required string Name { get; init; }

    /// <summary>The sysctl dialect: layout and interface version (Xen 4.21+: 0x16, with LIST's sizes as inputs).</summary>
    public required LivepatchAbi Abi { get; init; }

    /// <summary><c>LIVEPATCH_PAYLOAD_VERSION</c>: the version every <c>livepatch_func</c> must carry.</summary>
    public byte PayloadVersion => Abi.PayloadVersion;

    /// <summary>Size of one <c>livepatch_func</c> (64 or 104).</summary>
    public int FuncSize => LivepatchFunc.SizeOf(PayloadVersion);

    /// <summary>Xen 4.15+: <c>.livepatch.xen_depends</c> must exist and equal the hypervisor's build-id (a step of <see cref="LoadOrder"/>).</summary>
    public bool RequiresXenDepends => LoadOrder.Contains(LoadStep.CheckXenBuildId) || LoadOrder.Contains(LoadStep.CheckXenBuildIdFirst);

    /// <summary>
    /// <c>check_special_sections</c>: the sections that must exist and not be empty. The seed design wants
    /// <c>.livepatch.funcs</c> there; Xen 4.15 to 4.19 add <c>.livepatch.xen_depends</c>, which Xen 4.20+ checks in
    /// <c>check_xen_buildid</c> instead.
    /// </summary>
    public required IReadOnlyList<string> SpecialSections { get; init; }

    /// <summary>
    /// The seed design: <c>.livepatch.funcs</c> is one of the special sections that must exist and be non-empty.
    /// Xen 4.14+ makes it optional as long as some patching section (funcs or a hook) exists.
    /// </summary>
    public bool RequiresFuncs => SpecialSections.Contains(PayloadSections.Funcs);

    /// <summary>Xen 4.14+: vetoing and action hooks (<c>.livepatch.hooks.{pre,post}{apply,revert}</c>, apply, revert).</summary>
    public bool SupportsActionHooks { get; init; }

    /// <summary>Xen 4.14+: expectations in <c>livepatch_func</c> are checked at APPLY and REPLACE.</summary>
    public bool SupportsExpectations { get; init; }

    /// <summary>Xen 4.17 (CET-IBT): a target starting with ENDBR64 (or its poison) is patched after it.</summary>
    public bool HandlesEndbr { get; init; }

    /// <summary>Xen 4.14+: APPLY may skip the payload-to-payload build-id check (LIVEPATCH_ACTION_APPLY_NODEPS).</summary>
    public bool SupportsNoDeps { get; init; }

    /// <summary>
    /// Xen 4.17 and later (0dc1f929e8; 4.17.3's <c>livepatch_elf_ignore_section</c> looks at SHF_ALLOC alone) place
    /// zero-size SHF_ALLOC sections too, so that symbols in them resolve and relocations into them work; an empty RW
    /// section does not count against re-applying. The seed's Xen 4.7 ignores them: they get no address, their
    /// symbols stay unresolved and relocations into them are refused.
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
    /// The steps of <see cref="LoadOrder"/> that an upload with LIVEPATCH_FLAG_FORCE skips (only where
    /// <see cref="AcceptsOpFlags"/>). Xen 4.22.0 defines the flag ("skip some checks") and makes no check depend on
    /// it: the set is empty, and a forced upload is checked like any other.
    /// </summary>
    public IReadOnlySet<LoadStep> ForceSkips { get; init; } = new HashSet<LoadStep>();

    /// <summary>
    /// Xen 4.20+ (<c>parse_buildid</c>): <c>prepare_payload</c> returns what <c>xen_build_id_check</c> answers for
    /// <c>.note.gnu.build-id</c> and <c>.livepatch.depends</c>, so a note that is not a GNU build-id gets ENODATA;
    /// earlier Xen turns every failure into EINVAL.
    /// </summary>
    public bool NoteErrnoPassesThrough { get; init; }

    /// <summary>
    /// x86 with CONFIG_ALTERNATIVE_CALL (Xen 4.21+): <c>prepare_payload</c> checks <c>.alt_call_sites</c> and turns each
    /// site's indirect call into a direct one (<c>livepatch_apply_alt_calls</c>). Earlier Xen ignores the section.
    /// </summary>
    public bool AppliesAltCalls { get; init; }

    /// <summary>
    /// x86 <c>NCAPINTS</c>: the CPU feature words <c>apply_alternatives</c> knows; an alternative naming a feature
    /// beyond them is refused (Xen 4.19+ with ERANGE; Xen 4.17 BUG()s, and we refuse it the same way). Null where
    /// the number is not known (the seed's Xen 4.7): no range is checked.
    /// </summary>
    public int? X86FeatureWords { get; init; }

    /// <summary>
    /// The order of UPLOAD's steps after the ELF checks (<c>load_payload_data</c>). Xen 4.15 to 4.19 check
    /// <c>.livepatch.xen_depends</c> after <c>prepare_payload</c> (<see cref="LoadStep.CheckXenBuildId"/>); Xen 4.20+
    /// first, before anything is allocated (<see cref="LoadStep.CheckXenBuildIdFirst"/>); the seed has no such step.
    /// </summary>
    public required IReadOnlyList<LoadStep> LoadOrder { get; init; }

    /// <summary>Debian's Xen 4.17.7.</summary>
    public static LivepatchProfile Xen417 { get; } = new()
    {
        Name = "xen-4.17",
        Abi = LivepatchAbi.Xen417,
        SpecialSections = [PayloadSections.Depends, PayloadSections.XenDepends, PayloadSections.BuildId],
        SupportsActionHooks = true,
        SupportsExpectations = true,
        HandlesEndbr = true,
        SupportsNoDeps = true,
        PlacesEmptySections = true,
        KeepsAgainWhenBusy = true,
        X86FeatureWords = 19,
        LoadOrder =
        [
            LoadStep.MovePayload, LoadStep.ResolveSymbols, LoadStep.PerformRelocations, LoadStep.CheckSpecialSections,
            LoadStep.CheckPatchingSections, LoadStep.PreparePayload, LoadStep.CheckXenBuildId, LoadStep.BuildSymbolTable,
        ],
    };

    /// <summary>Upstream Xen 4.22.0: what it does differently from 4.17.7 is each property set here that <see cref="Xen417"/> does not.</summary>
    public static LivepatchProfile Xen422 { get; } = Xen417 with
    {
        Name = "xen-4.22",
        Abi = LivepatchAbi.Xen421,
        SpecialSections = [PayloadSections.Depends, PayloadSections.BuildId],
        AcceptsOpFlags = true,
        NoteErrnoPassesThrough = true,
        AppliesAltCalls = true,
        X86FeatureWords = 22,
        LoadOrder =
        [
            LoadStep.CheckXenBuildIdFirst, LoadStep.MovePayload, LoadStep.ResolveSymbols, LoadStep.PerformRelocations,
            LoadStep.CheckSpecialSections, LoadStep.CheckPatchingSections, LoadStep.PreparePayload, LoadStep.BuildSymbolTable,
        ],
    };

    /// <summary>The seed design (Xen 4.7, 2016).</summary>
    public static LivepatchProfile Seed2016 { get; } = new()
    {
        Name = "seed-2016",
        Abi = LivepatchAbi.Seed2016,
        SpecialSections = [PayloadSections.Funcs, PayloadSections.Depends, PayloadSections.BuildId],
        SupportsActionHooks = false,
        SupportsExpectations = false,
        HandlesEndbr = false,
        SupportsNoDeps = false,
        KeepsAgainWhenBusy = false,
        LoadOrder =
        [
            LoadStep.MovePayload, LoadStep.ResolveSymbols, LoadStep.PerformRelocations, LoadStep.CheckSpecialSections,
            LoadStep.PreparePayload, LoadStep.BuildSymbolTable,
        ],
    };

    /// <summary>Every profile.</summary>
    public static IReadOnlyList<LivepatchProfile> All { get; } = [Xen417, Xen422, Seed2016];

    /// <summary>The profiles' names, for help and errors: "xen-4.17, xen-4.22 or seed-2016".</summary>
    public static string Names => string.Join(", ", All.Take(All.Count - 1).Select(p => p.Name)) + " or " + All[^1].Name;

    /// <summary>Finds a profile by name.</summary>
    public static LivepatchProfile? FromName(string name) => All.FirstOrDefault(p => p.Name == name);
}
