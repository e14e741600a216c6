using System.Runtime.CompilerServices;
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
    private readonly LivepatchCore _core;
    private readonly PayloadRegistry _registry;
    private readonly Payload _payload;
    private readonly LivepatchAction _action;
    private readonly PatchStep[] _steps;
    private readonly int[] _results;
    private readonly IPreparedPatching _prepared;
    // The one step whose writes IPreparedPatching makes in one pass (an apply or revert), or -1.
    private readonly int _preparedStep;
    private int _ran;

    private PatchPlan(LivepatchCore core, PayloadRegistry registry, Payload payload, LivepatchAction action, PatchStep[] steps)
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
    private static int PreparedStep(PatchStep[] steps)
    {
        int found = -1;
        for (int i = 0; i < steps.Length; i++)
        {
            if (steps[i].Kind == PatchStep.Kinds.Expectations || steps[i].ActionHook != 0)
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
        var steps = new List<PatchStep>();
        if (action == LivepatchAction.Replace)
        {
            for (int i = registry.Applied.Count - 1; i >= 0; i--)
                steps.Add(PatchStep.Revert(core, registry.Applied[i]));
            bool reverts = steps.Count > 0;
            if (core.Profile.SupportsExpectations)
                steps.Add(PatchStep.Expectations(payload));
            steps.Add(PatchStep.Apply(core, payload, live: reverts));
        }
        else
        {
            steps.Add(action == LivepatchAction.Revert ? PatchStep.Revert(core, payload) : PatchStep.Apply(core, payload, live: false));
        }
        return new PatchPlan(core, registry, payload, action, [.. steps]);
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

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    [RunsInPause]
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
    private int RunStep(int index, PatchStep step)
    {
        if (step.Kind == PatchStep.Kinds.Expectations)
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
    private void WriteEach(PatchStep step)
    {
        if (!step.Live)
        {
            foreach (var w in step.Writes)
                _core.Memory.WriteText(w.Address, w.Bytes.Span);
            return;
        }
        foreach (int i in step.Pending)
        {
            step.WorkOutPatch(_core, i);
            if (step.Length(i) > 0)
                _core.Memory.WriteText(step.Functions[i].OldAddress + (ulong)step.Offset(i), step.Patch(i));
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
                case PatchStep.Kinds.Expectations:
                    if (result != 0)
                        _core.Info($"{_payload.Name}: SYSTEM MIGHT BE INSECURE: Replace action has been aborted after reverting ALL payloads!");
                    rc = result;
                    break;
                case PatchStep.Kinds.Apply:
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

    private void CommitApply(PatchStep step, int result)
    {
        if (step.ActionHook == 0)
        {
            foreach (int i in step.Pending)
            {
                var f = step.Functions[i];
                f.PatchOffset = step.Offset(i);
                f.SavedLength = step.Length(i);
                step.SavedBytes(i).CopyTo(f.SavedBytes);
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

    private void CommitRevert(PatchStep step, int result)
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
    private static void ThrowIfInconsistent(PatchStep step, LivepatchFuncState expected, string verb)
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
