using System.Diagnostics.CodeAnalysis;
using System.Security.Cryptography;
using System.Text;
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

    private sealed class Entry
    {
        public required string OldName { get; init; }
        public required HypervisorSymbol Old { get; init; }
        public ElfObjectSymbol? New { get; init; }
        public NopRequest? Nop { get; init; }
        public uint OldSize { get; set; }
        public uint NewSize { get; set; }
        public LivepatchExpectation Expect { get; set; }
        public string Describe => New == null ? $"NOP over {OldName}" : New.Name == OldName ? OldName : $"{OldName} (by {New.Name})";
    }

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

        if (!TryExistingFuncs(p, linked, profile, out var covered, out problem) ||
            !TryCollectEntries(request, linked, covered, out var entries, out problem) ||
            !TrySizeEntries(request, arch, entries, notes, out problem) ||
            !TryExpectations(request, entries, out problem))
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

        AddFuncs(request, arch, linked, entries);
        var depends = request.Depends is { } explicitDepends ? (explicitDepends, "--depends")
            : under != null ? (under.BuildId, request.DependsOn!.Name)
            : (target.BuildId, "the hypervisor");
        AddNote(obj, PayloadSections.Depends, depends.Item1.Span);
        if (profile.RequiresXenDepends)
            AddNote(obj, PayloadSections.XenDepends, target.BuildId.Span);
        AddMetadata(obj, request.Metadata);
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
        byte[] buildId = StampBuildId(data);

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
        LivepatchCheck.XenBuildIdMismatch or LivepatchCheck.DependsMismatch => "build against the hypervisor that runs (its xen-syms, or its symbols and build-id)",
        _ => null,
    };

    private const string NopAdvice = "NOP out whole instructions: at most 31 bytes (a multiple of 4 on arm64), and no more than the function has";

    // "(Xen: EINVAL)": the errno a check answers, for messages that name the object rather than the payload.
    private static string Errno(LivepatchCheck check) => check.GetErrno()?.ToString() ?? "an error";

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

    // Entries the objects bring in their own .livepatch.funcs are kept (ld -r would); the functions they
    // point new_addr at are not matched again by name.
    private static bool TryExistingFuncs(string p, LinkedObject linked, LivepatchProfile profile, out HashSet<ElfObjectSymbol> covered, [NotNullWhen(false)] out ToolingProblem? problem)
    {
        covered = new HashSet<ElfObjectSymbol>(ReferenceEqualityComparer.Instance);
        problem = null;
        var funcs = linked.Object.FindSection(PayloadSections.Funcs);
        if (funcs == null)
            return true;
        int size = profile.FuncSize;
        var bytes = funcs.Data.Span;
        if (bytes.Length % size != 0)
            return Fail(out problem, $"{p}: the objects' {PayloadSections.Funcs} is {bytes.Length} bytes, not a multiple of the {size}-byte version {profile.PayloadVersion} entry of the {profile.Name} profile",
                "build those objects for this profile (or leave their function entries out and let build write them)");
        for (int at = 0; at < bytes.Length; at += size)
        {
            byte version = bytes[at + LivepatchFunc.FieldLocations.Version];
            if (version != profile.PayloadVersion)
                return Fail(out problem, $"{p}: an entry of the objects' {PayloadSections.Funcs} has version {version}; the {profile.Name} profile takes version {profile.PayloadVersion}",
                    "rebuild those objects for this profile, or pick the matching --profile");
        }
        var rel = linked.Object.Sections.OfType<ElfRelocationSection>().FirstOrDefault(r => ReferenceEquals(r.Target, funcs));
        foreach (var e in rel?.Entries ?? [])
        {
            if ((int)(e.Offset % (ulong)size) == LivepatchFunc.FieldLocations.NewAddr && e.Symbol is { Type: ElfSymbolType.Func } s)
                covered.Add(s);
        }
        return true;
    }

    private static bool IsFunction(ElfObjectSymbol s) => s.Type is ElfSymbolType.Func or ElfSymbolType.GnuIFunc && s.Section != null;

    private static bool TryCollectEntries(PayloadBuildRequest request, LinkedObject linked, HashSet<ElfObjectSymbol> covered, out List<Entry> entries, [NotNullWhen(false)] out ToolingProblem? problem)
    {
        string p = request.Name;
        var table = request.Target.Symbols;
        entries = [];
        problem = null;
        var symbols = linked.Symbols.Symbols;

        bool TryOld(string option, string name, out HypervisorSymbol old, [NotNullWhen(false)] out ToolingProblem? why)
        {
            why = null;
            if (!table.TryGet(name, out old))
            {
                why = new ToolingProblem($"{p}: {option}: the hypervisor has no symbol {name}", Suggest(table, name));
                return false;
            }
            if (!old.IsFunction)
            {
                why = new ToolingProblem($"{p}: {option}: {name} is not a function in the hypervisor", "livepatching replaces functions; name one from its text");
                return false;
            }
            return true;
        }

        foreach (var r in request.Replace)
        {
            string option = $"--replace {r.Old}={r.New}";
            if (!TryOld(option, r.Old, out var old, out problem))
                return false;
            var candidates = symbols.Where(s => IsFunction(s) && s.Name == r.New).ToList();
            var globals = candidates.Where(s => !s.IsLocal).ToList();
            if (globals.Count > 0)
                candidates = globals;
            if (candidates.Count == 0)
                return Fail(out problem, $"{p}: {option}: no object defines a function {r.New}",
                    "the replacement must be a function (STT_FUNC) in one of the objects given");
            if (candidates.Count > 1)
                return Fail(out problem, $"{p}: {option}: {r.New} is a static function in several objects ({string.Join(", ", candidates.Select(linked.OriginOf))})",
                    "give the replacement a name no other object uses");
            entries.Add(new Entry { OldName = r.Old, Old = old, New = candidates[0] });
        }
        var named = new HashSet<string>(request.Replace.Select(r => r.New), StringComparer.Ordinal);
        foreach (var s in symbols)
        {
            // By default a global function named like a hypervisor function replaces it.
            if (!IsFunction(s) || s.IsLocal || named.Contains(s.Name) || covered.Contains(s))
                continue;
            if (table.TryGet(s.Name, out var old) && old.IsFunction)
                entries.Add(new Entry { OldName = s.Name, Old = old, New = s });
        }
        foreach (var n in request.Nops)
        {
            if (!TryOld($"--nop {n.Function}", n.Function, out var old, out problem))
                return false;
            entries.Add(new Entry { OldName = n.Function, Old = old, Nop = n });
        }
        var twice = entries.GroupBy(e => e.Old.Address).FirstOrDefault(g => g.Count() > 1);
        if (twice != null)
            return Fail(out problem, $"{p}: {twice.First().OldName} would be patched twice ({string.Join(", ", twice.Select(e => e.Describe))})",
                "keep one: a global function of that name replaces it by default, so drop the --replace or --nop for it, or rename the function");
        foreach (string f in request.OldSizes.Keys)
        {
            if (!entries.Exists(e => e.OldName == f))
                return Fail(out problem, $"{p}: --old-size {f}: the payload does not patch {f}", "give --old-size for functions the payload patches");
        }
        return true;
    }

    // A hint for a name the hypervisor does not have: local functions go by file#name in Xen's table.
    private static string Suggest(HypervisorSymbolTable table, string name)
    {
        var local = table.Symbols.Where(s => s.Name.EndsWith("#" + name, StringComparison.Ordinal)).Select(s => s.Name).Take(3).ToList();
        return local.Count > 0
            ? $"a static function goes by file#name in Xen's symbol table: did you mean {string.Join(" or ", local)}?"
            : "check the name against the hypervisor's symbols (/proc/xen/xensyms or nm xen-syms); static functions go by file#name";
    }

    private static bool TrySizeEntries(PayloadBuildRequest request, LivepatchArch arch, List<Entry> entries, List<string> notes, [NotNullWhen(false)] out ToolingProblem? problem)
    {
        string p = request.Name;
        var target = request.Target;
        problem = null;
        foreach (var e in entries)
        {
            ulong oldSize = request.OldSizes.TryGetValue(e.OldName, out uint given) ? given : target.Symbols.SizeOf(e.Old);
            if (oldSize == 0)
                return Fail(out problem, $"{p}: the size of {e.OldName} is unknown (the hypervisor's listing has no sizes and no symbol follows it)",
                    $"give it: --old-size {e.OldName}=N");
            if (oldSize > uint.MaxValue)
                return Fail(out problem, $"{p}: {e.OldName} is {oldSize} bytes, more than old_size can hold", $"give a smaller --old-size {e.OldName}=N");
            e.OldSize = (uint)oldSize;
            if (e.Nop is { } nop)
            {
                long length = nop.FromEnd ? (long)oldSize - nop.Length : nop.Length;
                if (length <= 0)
                    return Fail(out problem, $"{p}: --nop {nop.Function}:{(nop.FromEnd ? "-" : "")}{nop.Length} leaves nothing to NOP out of its {oldSize} bytes", "give a length between 1 and the function's size");
                e.NewSize = (uint)length;
            }
            else
            {
                e.NewSize = (uint)Math.Min(e.New!.Size, uint.MaxValue);
                if (e.NewSize == 0)
                    notes.Add($"{e.New.Name} has no size in its object (an assembler function without .size): new_size is 0");
            }
            byte[]? head = target.ReadCode(e.Old.Address, 4);
            bool endbr = e.New != null && request.Profile.HandlesEndbr && head != null && arch.StartsWithEndbr(head);
            var f = new LivepatchFunc { NewAddr = e.New != null ? 1UL : 0, NewSize = e.NewSize, OldSize = e.OldSize, Version = request.Profile.PayloadVersion };
            if (arch.VerifyFunc(p, f, endbr) is { } refused)
            {
                string size = $"{e.OldName} is {e.OldSize} byte{(e.OldSize == 1 ? "" : "s")} in the hypervisor";
                return e.New != null
                    ? Fail(out problem, $"{p}: {size}, too small to patch: a jump needs {arch.JumpSize + (endbr ? 4 : 0)} bytes{(endbr ? " after its ENDBR64" : "")} (Xen: {refused.Name})",
                        $"patch the functions that call {e.OldName} instead{(request.OldSizes.ContainsKey(e.OldName) ? ", or correct --old-size" : "")}")
                    : Fail(out problem, $"{p}: --nop {e.Nop!.Function}: {refused.Detail} (Xen: {refused.Name})", Advice(refused.Check) ?? NopAdvice);
            }
            if (e.New != null && head == null && target.Machine == ElfMachine.X86_64 && request.Profile.HandlesEndbr && e.OldSize < arch.JumpSize + 4)
                notes.Add($"{e.OldName} is {e.OldSize} bytes: if it starts with ENDBR64 (a CET-IBT build), Xen needs 9 and will refuse it (EINVAL); give the image with --target to know");
        }
        return true;
    }

    private static bool TryExpectations(PayloadBuildRequest request, List<Entry> entries, [NotNullWhen(false)] out ToolingProblem? problem)
    {
        string p = request.Name;
        problem = null;
        foreach (var x in request.Expect)
        {
            var e = entries.Find(e => e.OldName == x.Function);
            if (e == null)
                return Fail(out problem, $"{p}: --expect {x.Function}: the payload does not patch {x.Function}", "give --expect for functions the payload patches");
            if (!request.Profile.SupportsExpectations)
                return Fail(out problem, $"{p}: --expect {x.Function}: the {request.Profile.Name} profile has no expectations (version 1 functions)", "build with --profile xen-4.17");
            byte[]? bytes = x.Bytes ?? request.Target.ReadCode(e.Old.Address, x.Length);
            if (bytes == null)
                return Fail(out problem, $"{p}: --expect {x.Function}:{x.Length}: the hypervisor was given without its code bytes",
                    $"give the image with --target, or the bytes themselves: --expect {x.Function}=HEX");
            if (bytes.Length is 0 or > LivepatchExpectation.DataSize)
                return Fail(out problem, $"{p}: --expect {x.Function}: {bytes.Length} bytes; an expectation holds 1 to {LivepatchExpectation.DataSize}", "give fewer bytes");
            if ((uint)bytes.Length > e.OldSize)
                return Fail(out problem, $"{p}: --expect {x.Function}: {bytes.Length} bytes, more than the function's {e.OldSize} (Xen: {Errno(LivepatchCheck.ExpectationLongerThanFunction)} at apply)", "expect no more bytes than the function has");
            e.Expect = new LivepatchExpectation(true, (byte)bytes.Length, 0, bytes);
        }
        return true;
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
    private static ToolingProblem? CheckClashes(string p, LinkedObject linked, LivepatchArch arch, OfflineTarget target, Payload? under, List<Entry> entries)
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

    private static ElfObjectSection GetOrAddSection(ElfObject obj, string name, ulong alignment)
    {
        var s = obj.FindSection(name);
        if (s != null)
        {
            s.Alignment = Math.Max(s.Alignment, alignment);
            return s;
        }
        s = new ElfObjectSection(name, ElfSectionType.ProgBits) { Flags = ElfSectionFlags.Alloc, Alignment = alignment, Data = Array.Empty<byte>() };
        // Before the symbol table, so that tables stay last.
        obj.Sections.Insert(obj.Sections.FindIndex(x => x is ElfSymbolTableSection), s);
        return s;
    }

    private static ElfObjectSymbol SectionSymbol(LinkedObject linked, ElfObjectSection section)
    {
        var existing = linked.Symbols.Symbols.Find(s => s.Type == ElfSymbolType.Section && ReferenceEquals(s.Section, section));
        return existing ?? linked.Symbols.Add(new ElfObjectSymbol("") { Type = ElfSymbolType.Section, Binding = ElfSymbolBinding.Local, Section = section });
    }

    private static void AddFuncs(PayloadBuildRequest request, LivepatchArch arch, LinkedObject linked, List<Entry> entries)
    {
        if (entries.Count == 0)
            return;
        var obj = linked.Object;
        int size = request.Profile.FuncSize;
        var strings = GetOrAddSection(obj, StringsSection, 1);
        var names = new MemoryStream();
        names.Write(strings.Data.Span);
        var funcs = GetOrAddSection(obj, PayloadSections.Funcs, 8);
        // Read-only, as Xen's recipe makes it (objcopy --set-section-flags .livepatch.funcs=alloc,readonly).
        funcs.Flags = ElfSectionFlags.Alloc;
        int start = funcs.Data.Length;
        var table = new byte[start + entries.Count * size];
        funcs.Data.Span.CopyTo(table);
        var rela = obj.GetOrAddRelocations(funcs, rela: true);
        if (obj.Sections.IndexOf(rela) != obj.Sections.IndexOf(funcs) + 1)
        {
            obj.Sections.Remove(rela);
            obj.Sections.Insert(obj.Sections.IndexOf(funcs) + 1, rela);
        }
        uint absolute = arch.Machine == ElfMachine.AArch64 ? (uint)AArch64RelocationType.R_AARCH64_ABS64 : (uint)X86_64RelocationType.R_X86_64_64;
        var stringsSymbol = SectionSymbol(linked, strings);
        for (int k = 0; k < entries.Count; k++)
        {
            var e = entries[k];
            int at = start + k * size;
            long nameAt = names.Length;
            names.Write(Encoding.Latin1.GetBytes(e.OldName + "\0"));
            new LivepatchFunc
            {
                OldAddr = request.ResolveOldAddresses ? e.Old.Address : 0,
                NewSize = e.NewSize,
                OldSize = e.OldSize,
                Version = request.Profile.PayloadVersion,
                Expect = e.Expect,
            }.Write(table.AsSpan(at), request.Profile.PayloadVersion);
            rela.Entries.Add(new ElfObjectRelocation((ulong)(at + LivepatchFunc.FieldLocations.Name), absolute, stringsSymbol, nameAt));
            if (e.New != null)
                rela.Entries.Add(new ElfObjectRelocation((ulong)(at + LivepatchFunc.FieldLocations.NewAddr), absolute, e.New, 0));
        }
        funcs.Data = table;
        strings.Data = names.ToArray();
    }

    private static void AddNote(ElfObject obj, string name, ReadOnlySpan<byte> buildId)
    {
        var s = GetOrAddSection(obj, name, 4);
        s.Data = ElfNote.EncodeGnuBuildId(buildId, ElfEncoding.LittleEndian);
    }

    private static void AddMetadata(ElfObject obj, IReadOnlyList<string> metadata)
    {
        if (metadata.Count == 0)
            return;
        var s = GetOrAddSection(obj, PayloadSections.ModInfo, 1);
        var bytes = new MemoryStream();
        bytes.Write(s.Data.Span);
        foreach (string m in metadata)
            bytes.Write(Encoding.UTF8.GetBytes(m + "\0"));
        s.Data = bytes.ToArray();
    }

    /// <summary>
    /// Fills the build-id note's descriptor with the SHA-1 of the whole file taken while the descriptor is
    /// zero, as <c>ld --build-id=sha1</c> computes it over its output, and returns it.
    /// </summary>
    private static byte[] StampBuildId(byte[] data)
    {
        var file = ElfFile.Read(data);
        var sh = file.GetSectionHeader(file.FindSection(PayloadSections.BuildId));
        // { namesz, descsz, type } then "GNU\0": the descriptor starts 16 bytes in.
        int at = (int)sh.Offset + ElfNote.HeaderSize + 4;
        // Not for security: the build-id is an identity that must be what ld computes (--build-id=sha1).
#pragma warning disable CA5350
        byte[] id = SHA1.HashData(data);
#pragma warning restore CA5350
        id.CopyTo(data, at);
        return id;
    }
}
