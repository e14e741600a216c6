using System.Diagnostics.CodeAnalysis;
using XenLivepatch.Abi;
using XenLivepatch.Elf;
using XenLivepatch.Hypervisor;

namespace XenLivepatch.Tooling;

/// <summary>One function a payload patches: the hypervisor function, its replacement or NOP, its sizes and expectation.</summary>
internal sealed class FunctionEntry
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

/// <summary>
/// The functions a payload patches, as <c>build</c> collects them from the objects and the options: which
/// hypervisor function each replaces (by name, --replace, --nop), its sizes as the architecture's checks want
/// them, and its expectation.
/// </summary>
internal static class FunctionEntries
{
    // Entries the objects bring in their own .livepatch.funcs are kept (ld -r would); the functions they
    // point new_addr at are not matched again by name.
    public static bool TryExistingFuncs(string p, LinkedObject linked, LivepatchProfile profile, out HashSet<ElfObjectSymbol> covered, [NotNullWhen(false)] out ToolingProblem? problem)
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

    public static bool IsFunction(ElfObjectSymbol s) => s.Type is ElfSymbolType.Func or ElfSymbolType.GnuIFunc && s.Section != null;

    public static bool TryCollectEntries(PayloadBuildRequest request, LinkedObject linked, HashSet<ElfObjectSymbol> covered, out List<FunctionEntry> entries, [NotNullWhen(false)] out ToolingProblem? problem)
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
            entries.Add(new FunctionEntry { OldName = r.Old, Old = old, New = candidates[0] });
        }
        var named = new HashSet<string>(request.Replace.Select(r => r.New), StringComparer.Ordinal);
        foreach (var s in symbols)
        {
            // By default a global function named like a hypervisor function replaces it.
            if (!IsFunction(s) || s.IsLocal || named.Contains(s.Name) || covered.Contains(s))
                continue;
            if (table.TryGet(s.Name, out var old) && old.IsFunction)
                entries.Add(new FunctionEntry { OldName = s.Name, Old = old, New = s });
        }
        foreach (var n in request.Nops)
        {
            if (!TryOld($"--nop {n.Function}", n.Function, out var old, out problem))
                return false;
            entries.Add(new FunctionEntry { OldName = n.Function, Old = old, Nop = n });
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

    public static bool TrySizeEntries(PayloadBuildRequest request, LivepatchArch arch, List<FunctionEntry> entries, List<string> notes, [NotNullWhen(false)] out ToolingProblem? problem)
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
            bool endbr = e.New != null && arch.PatchOffset(request.Profile, head) != 0;
            var f = new LivepatchFunc { NewAddr = e.New != null ? 1UL : 0, NewSize = e.NewSize, OldSize = e.OldSize, Version = request.Profile.PayloadVersion };
            if (arch.VerifyFunc(p, f, endbr) is { } refused)
            {
                string size = $"{e.OldName} is {e.OldSize} byte{(e.OldSize == 1 ? "" : "s")} in the hypervisor";
                return e.New != null
                    ? Fail(out problem, $"{p}: {size}, too small to patch: a jump needs {arch.JumpSize + (endbr ? 4 : 0)} bytes{(endbr ? " after its ENDBR64" : "")} (Xen: {refused.Name})",
                        $"patch the functions that call {e.OldName} instead{(request.OldSizes.ContainsKey(e.OldName) ? ", or correct --old-size" : "")}")
                    : Fail(out problem, $"{p}: --nop {e.Nop!.Function}: {refused.Detail} (Xen: {refused.Name})", PayloadBuilder.Advice(refused.Check) ?? PayloadBuilder.NopAdvice);
            }
            if (e.New != null && head == null && target.Machine == ElfMachine.X86_64 && request.Profile.HandlesEndbr && e.OldSize < arch.JumpSize + 4)
                notes.Add($"{e.OldName} is {e.OldSize} bytes: if it starts with ENDBR64 (a CET-IBT build), Xen needs 9 and will refuse it (EINVAL); give the image with --target to know");
        }
        return true;
    }

    public static bool TryExpectations(PayloadBuildRequest request, List<FunctionEntry> entries, [NotNullWhen(false)] out ToolingProblem? problem)
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
                return Fail(out problem, $"{p}: --expect {x.Function}: {bytes.Length} bytes, more than the function's {e.OldSize} (Xen: {PayloadBuilder.Errno(LivepatchCheck.ExpectationLongerThanFunction)} at apply)", "expect no more bytes than the function has");
            e.Expect = new LivepatchExpectation(true, (byte)bytes.Length, 0, bytes);
        }
        return true;
    }

    private static bool Fail(out ToolingProblem problem, string message, string advice)
    {
        problem = new ToolingProblem(message, advice);
        return false;
    }
}
