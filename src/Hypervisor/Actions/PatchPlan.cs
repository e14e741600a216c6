using System.Runtime.CompilerServices;
using System.Text;
using XenLivepatch.Abi;

namespace XenLivepatch.Hypervisor;

/// <summary>
/// An APPLY, REVERT or REPLACE as <c>livepatch_do_action</c> runs it, worked out before the CPUs stop (seed
/// design, "Patching": the CPUs are held for the writes only). The plan is a list of steps: revert a payload,
/// check expectations (REPLACE, between its reverts and its apply), apply a payload. <see cref="Run"/> is the
/// pause; <see cref="Commit"/>, after the CPUs are released and before the action completes (its rc is
/// -EAGAIN until then), records what the pause did: the log lines, each function's state, the stack.
/// </summary>
/// <remarks>
/// Nothing changes the old code or the functions' state between the plan and the pause: actions are
/// serialised, only a pause writes text, and a load or unload hook has neither the payload's state nor
/// writable text. So a step that patches (no action hook) knows every write, and for an apply the bytes it
/// covers, before the pause. Only an apply that follows other steps in the same pause (REPLACE) works out
/// its patches as it writes them, as <c>arch_livepatch_apply</c> does, since a revert action hook before it
/// may have changed the code. An action hook (<c>.livepatch.hooks.apply</c>/<c>.revert</c>) replaces the
/// core's writes and sets the functions' state itself.
/// </remarks>
internal sealed class PatchPlan : IDisposable
{
    private const int Stride = 32; // >= Livepatch.OpaqueSize: one patch or saved copy per function

    private enum StepKind { Apply, Revert, Expectations }

    private sealed class Step
    {
        public required StepKind Kind { get; init; }
        public required Payload Payload { get; init; }
        public PatchFunction[] Functions { get; init; } = [];
        // The apply or revert action hook's function, 0 when the core writes the patches.
        public ulong ActionHook { get; init; }
        // apply_payload's load hooks, run before the writes; revert_payload's unload hooks, after them.
        public ulong[] HooksBefore { get; init; } = [];
        public ulong[] HooksAfter { get; init; } = [];
        public TextWrite[] Writes { get; set; } = [];
        // An apply: which functions it patches (not already applied), each one's patch offset, length,
        // the patch and the bytes it covers (Stride bytes each).
        public int[] Pending { get; init; } = [];
        public int[] Offsets { get; init; } = [];
        public int[] Lengths { get; init; } = [];
        public byte[] Patches { get; init; } = [];
        public byte[] Saved { get; init; } = [];
        // An apply that works its patches out in the pause.
        public bool Live { get; init; }
        // What the step logs (Xen prints it from the pause; we print it after). An expectations step adds
        // its lines in the pause, through LogLine (made before the pause).
        public List<string> Lines { get; } = [];
        public Action<string>? LogLine { get; set; }
    }

    private readonly LivepatchCore _core;
    private readonly PayloadRegistry _registry;
    private readonly Payload _payload;
    private readonly LivepatchAction _action;
    private readonly Step[] _steps;
    private readonly int[] _results;
    private readonly IPreparedPatching _prepared;
    // The one step whose writes IPreparedPatching makes in one pass (an apply or revert), or -1.
    private readonly int _preparedStep;
    private int _ran;

    private PatchPlan(LivepatchCore core, PayloadRegistry registry, Payload payload, LivepatchAction action, Step[] steps)
    {
        _core = core;
        _registry = registry;
        _payload = payload;
        _action = action;
        _steps = steps;
        _results = new int[steps.Length];
        _preparedStep = PreparedStep(steps);
        // Whatever makes text writable happens now, before the CPUs stop (no system call in the pause).
        var ranges = new List<(ulong, int)>();
        foreach (var s in steps)
        {
            foreach (var f in s.Functions)
            {
                if (f.OldAddress != 0)
                    ranges.Add((f.OldAddress, 4 + Livepatch.OpaqueSize));
            }
        }
        _prepared = core.Memory.PreparePatching(ranges, _preparedStep >= 0 ? steps[_preparedStep].Writes : []);
    }

    // The step whose writes IPreparedPatching can make in one pass: the only one that writes, when its writes
    // are known before the pause.
    private static int PreparedStep(Step[] steps)
    {
        int found = -1;
        for (int i = 0; i < steps.Length; i++)
        {
            if (steps[i].Kind == StepKind.Expectations || steps[i].ActionHook != 0)
                continue;
            if (found >= 0 || steps[i].Live)
                return -1;
            found = i;
        }
        return found;
    }

    /// <summary>
    /// Plans <paramref name="action"/> of <paramref name="payload"/> (called with the registry's lock held,
    /// once ACTION's checks have passed).
    /// </summary>
    public static PatchPlan Create(LivepatchCore core, PayloadRegistry registry, Payload payload, LivepatchAction action)
    {
        var steps = new List<Step>();
        if (action == LivepatchAction.Replace)
        {
            for (int i = registry.Applied.Count - 1; i >= 0; i--)
                steps.Add(PlanRevert(core, registry.Applied[i]));
            bool reverts = steps.Count > 0;
            if (core.Profile.SupportsExpectations)
            {
                var expectations = new Step { Kind = StepKind.Expectations, Payload = payload };
                expectations.LogLine = expectations.Lines.Add;
                steps.Add(expectations);
            }
            steps.Add(PlanApply(core, payload, live: reverts));
        }
        else
        {
            steps.Add(action == LivepatchAction.Revert ? PlanRevert(core, payload) : PlanApply(core, payload, live: false));
        }
        return new PatchPlan(core, registry, payload, action, [.. steps]);
    }

    // revert_payload, or the revert action hook that replaces it.
    private static Step PlanRevert(LivepatchCore core, Payload p)
    {
        var functions = p.Functions.ToArray();
        if (Hook.Enabled(core.Memory, p.Hooks.Revert, out ulong hook))
        {
            var hooked = new Step { Kind = StepKind.Revert, Payload = p, Functions = functions, ActionHook = hook };
            hooked.Lines.Add($"{p.Name}: Calling revert action hook function");
            return hooked;
        }
        var undo = new List<TextWrite>();
        var lines = new List<string> { $"{p.Name}: Reverting" };
        foreach (var f in functions)
        {
            // arch_livepatch_revert: the saved bytes go back.
            if (f.OldAddress == 0 || f.Applied == LivepatchFuncState.NotApplied)
                lines.Add($"{p.Name}: {f.Name} has not been applied before");
            else if (f.SavedLength > 0)
                undo.Add(new TextWrite(f.OldAddress + (ulong)f.PatchOffset, f.SavedBytes.AsMemory(0, f.SavedLength).ToArray()));
        }
        var step = new Step { Kind = StepKind.Revert, Payload = p, Functions = functions, Writes = [.. undo], HooksAfter = [.. p.Hooks.Unload] };
        step.Lines.AddRange(lines);
        return step;
    }

    // apply_payload, or the apply action hook that replaces it.
    private static Step PlanApply(LivepatchCore core, Payload p, bool live)
    {
        var functions = p.Functions.ToArray();
        if (Hook.Enabled(core.Memory, p.Hooks.Apply, out ulong hook))
        {
            var hooked = new Step { Kind = StepKind.Apply, Payload = p, Functions = functions, ActionHook = hook };
            hooked.Lines.Add($"{p.Name}: Calling apply action hook function");
            return hooked;
        }
        var pending = new List<int>();
        var lines = new List<string> { $"{p.Name}: Applying {functions.Length} functions" };
        for (int i = 0; i < functions.Length; i++)
        {
            if (functions[i].Applied == LivepatchFuncState.Applied)
                lines.Add($"{p.Name}: {functions[i].Name} has been already applied before");
            else
                pending.Add(i);
        }
        if (p.Metadata.Length > 0)
        {
            lines.Add("module metadata:");
            foreach (string s in Encoding.Latin1.GetString(p.Metadata.Span).Split('\0', StringSplitOptions.RemoveEmptyEntries))
                lines.Add("  " + s);
        }
        var step = new Step
        {
            Kind = StepKind.Apply, Payload = p, Functions = functions, HooksBefore = [.. p.Hooks.Load], Live = live, Pending = [.. pending],
            Offsets = new int[functions.Length], Lengths = new int[functions.Length],
            Patches = new byte[functions.Length * Stride], Saved = new byte[functions.Length * Stride],
        };
        step.Lines.AddRange(lines);
        if (live)
            return step;
        var writes = new List<TextWrite>(pending.Count);
        foreach (int i in pending)
        {
            WorkOutPatch(core, step, i);
            if (step.Lengths[i] > 0)
                writes.Add(new TextWrite(functions[i].OldAddress + (ulong)step.Offsets[i], step.Patches.AsMemory(i * Stride, step.Lengths[i])));
        }
        step.Writes = [.. writes];
        return step;
    }

    // arch_livepatch_apply's first half: where the patch goes (after an ENDBR64 the profile skips), its
    // instructions, and the bytes it will cover.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    [RunsInPause]
    private static void WorkOutPatch(LivepatchCore core, Step step, int i)
    {
        var f = step.Functions[i];
        int offset = 0;
        if (core.Profile.HandlesEndbr)
        {
            Span<byte> head = stackalloc byte[4];
            if (core.Memory.Read(f.OldAddress, head) == MemoryReadStatus.Ok && core.Arch.StartsWithEndbr(head))
                offset = 4;
        }
        int length = Math.Min(core.Arch.PatchLength(f.Entry, offset), Livepatch.OpaqueSize);
        step.Offsets[i] = offset;
        step.Lengths[i] = length;
        if (length == 0)
            return;
        ulong place = f.OldAddress + (ulong)offset;
        core.Arch.EncodePatch(f.Entry, place, step.Patches.AsSpan(i * Stride, length));
        core.Memory.Read(place, step.Saved.AsSpan(i * Stride, length));
    }

    /// <summary>
    /// Before the pause, on the CPU that will run it: what <see cref="Run"/> reads, into that CPU's caches:
    /// the hooks' slots and the first line of each hook's code, the writes' table and the lines they land on.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    [RunsInPause]
    public void Warm()
    {
        Span<byte> code = stackalloc byte[1];
        foreach (var step in _steps)
        {
            if (step.ActionHook != 0)
                _core.Memory.Read(step.ActionHook, code);
            WarmHooks(step.HooksBefore, code);
            WarmHooks(step.HooksAfter, code);
        }
        _prepared.Warm();
    }

    private void WarmHooks(ulong[] slots, Span<byte> code)
    {
        for (int i = 0; i < slots.Length; i++)
        {
            if (Hook.Enabled(_core.Memory, slots[i], out ulong fn))
                _core.Memory.Read(fn, code);
        }
    }

    /// <summary>
    /// The pause (<c>livepatch_do_action</c>): each step in turn, until one fails. For a plain apply or revert
    /// this is the load hooks, one pass of writes and the unload hooks: no lock, no allocation, no system call.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    [RunsInPause]
    public void Run()
    {
        var steps = _steps;
        for (int i = 0; i < steps.Length; i++)
        {
            int rc = RunStep(i, steps[i]);
            _results[i] = rc;
            _ran = i + 1;
            if (rc != 0)
                break;
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    [RunsInPause]
    private int RunStep(int index, Step step)
    {
        if (step.Kind == StepKind.Expectations)
            return ActionChecks.Expectations(_core, step.Payload, step.LogLine!) is { } refused ? refused.Rc : 0;
        if (step.ActionHook != 0)
            return _core.Hooks.CallInt(step.ActionHook, step.Payload);
        RunHooks(step.HooksBefore);
        if (index == _preparedStep)
            _prepared.WriteAll();
        else
            WriteEach(step);
        RunHooks(step.HooksAfter);
        return 0;
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    [RunsInPause]
    private void RunHooks(ulong[] slots)
    {
        for (int i = 0; i < slots.Length; i++)
        {
            if (Hook.Enabled(_core.Memory, slots[i], out ulong fn))
                _core.Hooks.CallVoid(fn, null);
        }
    }

    // The writes of a step that is not the plan's only one, through IHypervisorMemory.WriteText.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    [RunsInPause]
    private void WriteEach(Step step)
    {
        if (!step.Live)
        {
            foreach (var w in step.Writes)
                _core.Memory.WriteText(w.Address, w.Bytes.Span);
            return;
        }
        foreach (int i in step.Pending)
        {
            WorkOutPatch(_core, step, i);
            if (step.Lengths[i] > 0)
                _core.Memory.WriteText(step.Functions[i].OldAddress + (ulong)step.Offsets[i], step.Patches.AsSpan(i * Stride, step.Lengths[i]));
        }
    }

    /// <summary>
    /// After the pause made the plan's writes (the rendezvous succeeded): logs what the steps that ran log,
    /// records each function's state and the stack, and sets the rc of the payloads involved.
    /// </summary>
    public void Commit()
    {
        int rc = 0;
        for (int i = 0; i < _ran; i++)
        {
            var step = _steps[i];
            int result = _results[i];
            foreach (string line in step.Lines)
                _core.Info(line);
            switch (step.Kind)
            {
                case StepKind.Expectations:
                    if (result != 0)
                        _core.Info($"{_payload.Name}: SYSTEM MIGHT BE INSECURE: Replace action has been aborted after reverting ALL payloads!");
                    rc = result;
                    break;
                case StepKind.Apply:
                    CommitApply(step, result);
                    rc = result;
                    break;
                default:
                    CommitRevert(step, result);
                    if (_action == LivepatchAction.Replace)
                    {
                        step.Payload.Rc = result;
                        rc = result != 0 ? LivepatchCheck.ReplaceRevertFailed.Rc() : 0;
                    }
                    else
                    {
                        rc = result;
                    }
                    break;
            }
        }
        _payload.Rc = rc;
    }

    private void CommitApply(Step step, int result)
    {
        if (step.ActionHook == 0)
        {
            foreach (int i in step.Pending)
            {
                var f = step.Functions[i];
                f.PatchOffset = step.Offsets[i];
                f.SavedLength = step.Lengths[i];
                step.Saved.AsSpan(i * Stride, f.SavedLength).CopyTo(f.SavedBytes);
                f.Applied = LivepatchFuncState.Applied;
            }
        }
        ThrowIfInconsistent(step, result != 0 ? LivepatchFuncState.NotApplied : LivepatchFuncState.Applied, "applied");
        if (result == 0)
        {
            lock (_registry.Lock)
                _registry.MarkApplied(step.Payload);
        }
    }

    private void CommitRevert(Step step, int result)
    {
        if (step.ActionHook == 0)
        {
            foreach (var f in step.Functions)
            {
                if (f.OldAddress != 0)
                    f.Applied = LivepatchFuncState.NotApplied;
            }
        }
        ThrowIfInconsistent(step, result != 0 ? LivepatchFuncState.Applied : LivepatchFuncState.NotApplied, "reverted");
        if (result == 0)
        {
            lock (_registry.Lock)
                _registry.MarkReverted(step.Payload);
        }
    }

    // was_action_consistent: Xen panics here; a partially (un)patched payload is a bug we cannot recover from.
    private static void ThrowIfInconsistent(Step step, LivepatchFuncState expected, string verb)
    {
        foreach (var f in step.Functions)
        {
            if (f.Applied != expected)
                throw new InvalidOperationException($"livepatch: partially {verb} payload '{step.Payload.Name}'!");
        }
    }

    /// <summary>Undoes what made text writable (after the CPUs run again).</summary>
    public void Dispose() => _prepared.Dispose();
}
