using System.Diagnostics.CodeAnalysis;
using System.Security.Cryptography;
using XenLivepatch.Abi;
using XenLivepatch.Elf;
using XenLivepatch.Hypervisor;

namespace XenLivepatch.Tooling;

/// <summary>
/// <c>xen-livepatch build</c>: links replacement objects (<see cref="ObjectLinker"/>) and adds what makes them a
/// payload for one hypervisor: <c>.livepatch.funcs</c> (with its name strings in <c>.livepatch.strings</c> and
/// absolute relocations for <c>name</c> and <c>new_addr</c>), <c>.livepatch.depends</c>,
/// <c>.livepatch.xen_depends</c>, <c>.modinfo</c> and its own <c>.note.gnu.build-id</c> — what Xen's recipe
/// (xen-livepatch-facts.md §6.1) makes with gcc, objcopy and <c>ld -r</c>. It refuses, before Xen would, what
/// Xen would refuse: functions too small to patch, names the hypervisor does not have, writable code,
/// symbols that clash with the hypervisor's, naming the object at fault. The rules themselves are the core's
/// (<see cref="PayloadRules"/>, the architecture's checks); what build adds is which object breaks them and
/// what to do (<see cref="Advice"/>, by check id). It then runs the result through the livepatch core against
/// the target, so a payload it writes is one the core accepts.
/// </summary>
public static class PayloadBuilder
{
    /// <summary>Where the name strings of <c>.livepatch.funcs</c> go (the name livepatch-build-tools uses).</summary>
    public const string StringsSection = ".livepatch.strings";

    /// <summary>Builds the payload <paramref name="request"/> describes.</summary>
    public static bool TryBuild(PayloadBuildRequest request, [NotNullWhen(true)] out PayloadBuildResult? result, [NotNullWhen(false)] out ToolingProblem? problem)
    {
        ArgumentNullException.ThrowIfNull(request);
        result = null;
        string p = request.Name;
        var target = request.Target;
        var profile = request.Profile;
        var notes = new List<string>();
        if (!LivepatchArch.TryGet(target.Machine, out var arch))
            return Fail(out problem, $"{p}: livepatching {target.Machine} is not supported", "x86-64 and arm64 hypervisors are");
        if (target.BuildId.IsEmpty)
            return Fail(out problem, $"{p}: the hypervisor ({target.Description}) has no build-id, and a payload must name it",
                "give an image linked with --build-id (Xen's xen-syms has one), or --symbols with --build-id");
        if (CheckInputs(request) is { } inputProblem)
            return Fail(out problem, inputProblem);

        // The payload stacked under this one: it must load, and its new symbols count as Xen's do.
        Payload? under = null;
        if (request.DependsOn is { } dependsOn)
        {
            var report = PayloadCheck.Run(dependsOn.Name, dependsOn.Data, target.Create(), profile);
            if (report.Loaded == null)
                return Fail(out problem, $"{p}: --depends-on {dependsOn.Name}: that payload does not load on this hypervisor: {report.Error}",
                    "build it for the same hypervisor first, or give its build-id with --depends");
            under = report.Loaded;
        }

        if (!ObjectLinker.TryLink(request.Objects, target.Machine, out var linked, out problem))
            return false;
        notes.AddRange(linked.Notes);
        var obj = linked.Object;

        if (!FunctionEntries.TryExistingFuncs(p, linked, profile, out var covered, out problem) ||
            !FunctionEntries.TryCollectEntries(request, linked, covered, out var entries, out problem) ||
            !FunctionEntries.TrySizeEntries(request, arch, entries, notes, out problem) ||
            !FunctionEntries.TryExpectations(request, entries, out problem))
        {
            return false;
        }
        if (entries.Count == 0 && obj.FindSection(PayloadSections.Funcs) == null && !HasHooks(obj))
            return Fail(out problem, $"{p}: nothing to patch: no global function of the objects has a hypervisor function's name, and no --replace, --nop or hook was given",
                "name the replacement like the function it replaces (and make it global), or say --replace OLD=NEW");
        if (entries.Count == 0 && obj.FindSection(PayloadSections.Funcs) == null && profile.RequiresFuncs)
            return Fail(out problem, $"{p}: the {profile.Name} profile needs at least one function entry (hooks alone are a Xen 4.14+ payload)",
                "patch a function, or build with --profile xen-4.17");
        if (CheckUndefined(p, linked, target, under) is { } undefinedProblem)
            return Fail(out problem, undefinedProblem);
        if (CheckClashes(p, linked, arch, target, under, entries) is { } clashProblem)
            return Fail(out problem, clashProblem);
        if (CheckHooks(p, obj) is { } hookProblem)
            return Fail(out problem, hookProblem);

        PayloadWriter.AddFuncs(request, arch, linked, entries);
        var depends = request.Depends is { } explicitDepends ? (explicitDepends, "--depends")
            : under != null ? (under.BuildId, request.DependsOn!.Name)
            : (target.BuildId, "the hypervisor");
        PayloadWriter.AddNote(obj, PayloadSections.Depends, depends.Item1.Span);
        if (profile.RequiresXenDepends)
            PayloadWriter.AddNote(obj, PayloadSections.XenDepends, target.BuildId.Span);
        PayloadWriter.AddMetadata(obj, request.Metadata);
        // ld puts the build-id note first; the descriptor is filled once the file's bytes are known.
        var buildIdNote = new ElfObjectSection(PayloadSections.BuildId, ElfSectionType.Note)
        {
            Flags = ElfSectionFlags.Alloc,
            Alignment = 4,
            Data = ElfNote.EncodeGnuBuildId(new byte[SHA1.HashSizeInBytes], ElfEncoding.LittleEndian),
        };
        obj.Sections.Insert(0, buildIdNote);
        linked.Symbols.Symbols.Insert(0, new ElfObjectSymbol("") { Type = ElfSymbolType.Section, Binding = ElfSymbolBinding.Local, Section = buildIdNote });

        byte[] data = obj.Write();
        byte[] buildId = PayloadWriter.StampBuildId(data);

        var check = PayloadCheck.Run(p, data, target.Create(), profile,
            request.DependsOn is { } d ? [d] : null, noDeps: request.Depends != null);
        // A payload the core does not load is not written; one that loads but would not apply as things
        // stand (an expectation that does not hold, a dependency not applied offline) is, with a note.
        if (check.Loaded == null)
            return Fail(out problem, $"{p}: the livepatch core refuses the payload built: {check.Error}",
                Advice(check.Error!.Check) ?? "this is Xen's answer at upload for this hypervisor; fix what it names in the objects or the options");
        if (check.Error is { } applyError)
            notes.Add($"it loads, but APPLY would fail on this hypervisor as it is: {applyError}");
        notes.AddRange(check.Notes);
        result = new PayloadBuildResult
        {
            Data = data,
            BuildId = buildId,
            Functions = entries.Select(e => new BuiltFunction(e.OldName, e.Old.Address, e.OldSize, e.New?.Name, e.NewSize, request.ResolveOldAddresses, e.Expect)).ToList(),
            Depends = depends,
            Notes = notes,
            Check = check,
        };
        return true;
    }

    private static bool Fail(out ToolingProblem problem, string message, string advice)
    {
        problem = new ToolingProblem(message, advice);
        return false;
    }

    private static bool Fail(out ToolingProblem problem, ToolingProblem found)
    {
        problem = found;
        return false;
    }

    /// <summary>What to do when the core refuses with <paramref name="check"/>, or null where there is no more to say than its message.</summary>
    public static string? Advice(LivepatchCheck check) => check switch
    {
        LivepatchCheck.SectionWritableCode =>
            "keep code in read-only text and data in non-executable sections: look for a section attribute or an assembler .section with \"awx\" flags",
        LivepatchCheck.HookSize => "keep one such hook across all the objects",
        LivepatchCheck.HooksSize => "declare hooks with the payload header's macros",
        LivepatchCheck.SymbolDuplicate => "rename them (a prefix per payload), or, for a function that replaces its namesake, make it global or name it in --replace",
        LivepatchCheck.SymbolUnknown => "define it in the objects, or check the name against the hypervisor's symbols (static ones go by file#name)",
        LivepatchCheck.SymbolCommon => "compile with -fno-common",
        LivepatchCheck.X86NopTooLarge or LivepatchCheck.X86NopLongerThanFunction or LivepatchCheck.Arm64NopSize => NopAdvice,
        LivepatchCheck.XenBuildIdMismatch or LivepatchCheck.XenBuildIdMismatchFirst or LivepatchCheck.DependsMismatch => "build against the hypervisor that runs (its xen-syms, or its symbols and build-id)",
        _ => null,
    };

    internal const string NopAdvice = "NOP out whole instructions: at most 31 bytes (a multiple of 4 on arm64), and no more than the function has";

    // "(Xen: EINVAL)": the errno a check answers, for messages that name the object rather than the payload.
    internal static string Errno(LivepatchCheck check) => check.GetErrno()?.ToString() ?? "an error";

    // What Xen refuses in any object, named with the object: writable code (move_payload), and the
    // dependency notes that build writes itself.
    private static ToolingProblem? CheckInputs(PayloadBuildRequest request)
    {
        foreach (var input in request.Objects)
        {
            var f = input.File;
            for (int i = 1; i < f.SectionCount; i++)
            {
                var sh = f.SectionHeaders[i];
                string name = f.TryGetSectionName(i, out string? n, out _) ? n : $"[{i}]";
                if ((sh.Flags & ElfSectionFlags.Alloc) != 0 && PayloadRules.RegionOf(sh.Flags) == PayloadRegion.WritableCode)
                {
                    const LivepatchCheck check = LivepatchCheck.SectionWritableCode;
                    return new ToolingProblem($"{request.Name}: section {name} of {input.Name} is both writable and executable; Xen refuses such a payload ({Errno(check)})",
                        Advice(check)!);
                }
                if (name is PayloadSections.Depends or PayloadSections.XenDepends)
                {
                    return new ToolingProblem($"{request.Name}: {input.Name} has its own {name} section",
                        "leave it out of the objects: build writes it (the hypervisor's build-id, or --depends / --depends-on)");
                }
            }
        }
        return null;
    }

    private static bool HasHooks(ElfObject obj) => PayloadRules.SingleHookSections.Concat(PayloadRules.MultiHookSections).Any(h => obj.FindSection(h) != null);

    private static bool IsUndefined(ElfObjectSymbol s) =>
        s.Section == null && s.SpecialSection == ElfSpecialSection.Undefined && s.Name.Length > 0 && s.Type is not (ElfSymbolType.Section or ElfSymbolType.File);

    // livepatch_elf_resolve_symbols: an undefined symbol must be the hypervisor's or a loaded payload's new one (ENOENT).
    private static ToolingProblem? CheckUndefined(string p, LinkedObject linked, OfflineTarget target, Payload? under)
    {
        var unknown = linked.Symbols.Symbols
            .Where(s => IsUndefined(s) && !target.Symbols.TryGet(s.Name, out _) && under?.Symbols.Any(u => u.IsNew && u.Name == s.Name) != true)
            .Select(s => $"{s.Name} (used by {linked.OriginOf(s)})").ToList();
        if (unknown.Count == 0)
            return null;
        string who = under != null ? $"neither the hypervisor nor {under.Name} defines" : "the hypervisor does not define";
        // gcc refers to it for GOT-relative accesses to default-visibility globals in -fpic code.
        string advice = unknown.Exists(u => u.StartsWith("_GLOBAL_OFFSET_TABLE_ ", StringComparison.Ordinal))
            ? "compile with -fvisibility=hidden (as Xen does) or without -fpic: Xen has no GOT for a payload"
            : Advice(LivepatchCheck.SymbolUnknown)!;
        return new ToolingProblem($"{p}: unknown symbol{(unknown.Count > 1 ? "s" : "")}: {string.Join(", ", unknown)}; {who} {(unknown.Count > 1 ? "them" : "it")} (Xen: {Errno(LivepatchCheck.SymbolUnknown)})", advice);
    }

    // build_symbol_table: every symbol the payload exports must be new to the hypervisor and to loaded
    // payloads (EEXIST), except one at a function's new_addr, which overrides the function it replaces.
    private static ToolingProblem? CheckClashes(string p, LinkedObject linked, LivepatchArch arch, OfflineTarget target, Payload? under, List<FunctionEntry> entries)
    {
        var overriding = entries.Where(e => e.New != null).Select(e => (e.New!.Section, e.New.Value)).ToHashSet();
        var clashes = new List<string>();
        foreach (var s in linked.Symbols.Symbols)
        {
            if (s.Section == null || s.Type is ElfSymbolType.Section or ElfSymbolType.File ||
                !PayloadRules.IsExported(s.Name, s.Section.Flags, arch) || overriding.Contains((s.Section, s.Value)))
            {
                continue;
            }
            string kind = s.IsLocal ? "static " : "";
            if (target.Symbols.TryGet(s.Name, out _))
                clashes.Add($"{kind}{s.Name} in {linked.OriginOf(s)} (the hypervisor has {s.Name})");
            else if (under?.Symbols.Any(u => u.IsNew && u.Name == s.Name) == true)
                clashes.Add($"{kind}{s.Name} in {linked.OriginOf(s)} ({under.Name} has {s.Name})");
        }
        if (clashes.Count == 0)
            return null;
        return new ToolingProblem($"{p}: symbol{(clashes.Count > 1 ? "s" : "")} that Xen would refuse as duplicate ({Errno(LivepatchCheck.SymbolDuplicate)}): {string.Join("; ", clashes)}",
            Advice(LivepatchCheck.SymbolDuplicate)!);
    }

    // prepare_payload's hook sizes, over the hook sections the objects brought (one of each after linking).
    private static ToolingProblem? CheckHooks(string p, ElfObject obj)
    {
        foreach (string name in PayloadRules.SingleHookSections.Concat(PayloadRules.MultiHookSections))
        {
            if (obj.FindSection(name) is not { } s || PayloadRules.HookSizeRefusal(name, s.Size) is not { } check)
                continue;
            string what = check == LivepatchCheck.HookSize
                ? $"{s.Size} bytes; Xen takes exactly one 8-byte hook pointer there"
                : $"{s.Size} bytes, not a whole number of 8-byte hook pointers";
            return new ToolingProblem($"{p}: {name} holds {what} ({Errno(check)})", Advice(check)!);
        }
        return null;
    }
}
