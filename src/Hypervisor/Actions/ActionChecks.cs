using System.Runtime.CompilerServices;
using XenLivepatch.Abi;

namespace XenLivepatch.Hypervisor;

/// <summary>
/// What <c>livepatch_action</c> checks before it schedules an action (xen/common/livepatch.c), for a payload
/// in the state the action needs: the revert stack, the vetoing pre-hooks, the build-id dependency and the
/// expectations. ACTION and <c>xen-livepatch check</c> both go through here. Called with the registry's lock
/// held; what Xen logs goes to the core's log.
/// </summary>
internal sealed class ActionChecks(LivepatchCore core, PayloadRegistry registry)
{
    /// <summary>UNLOAD: only a CHECKED payload.</summary>
    public static LivepatchError? Unload(Payload p) =>
        p.State != LivepatchState.Checked ? Refuse.UnloadNotChecked(p.Name) : null;

    /// <summary>REVERT of an APPLIED payload: it is the top of the stack, and its pre-revert hook agrees.</summary>
    public LivepatchError? Revert(Payload p)
    {
        var top = registry.Top;
        if (top != p)
        {
            var refused = Refuse.RevertNotTop(p.Name, top?.Name ?? "none");
            core.Info(refused.Message);
            return refused;
        }
        return PreHook(p, p.Hooks.PreRevert, LivepatchCheck.PreRevertHookVeto);
    }

    /// <summary>
    /// APPLY of a CHECKED payload: not reverted with data, its build-id dependency (unless NODEPS where the
    /// profile has it), its expectations (Xen 4.14+), and its pre-apply hook.
    /// </summary>
    public LivepatchError? Apply(Payload p, LivepatchActionFlags flags)
    {
        if (p.Reverted && !p.SafeToReapply)
        {
            var refused = Refuse.ReappliedWithData(p.Name);
            core.Info(refused.Message);
            return refused;
        }
        if (!core.Profile.SupportsNoDeps || (flags & LivepatchActionFlags.ApplyNoDeps) == 0)
        {
            if (BuildIdDependency(p, againstHypervisor: false) is { } dependency)
                return dependency;
        }
        if (core.Profile.SupportsExpectations && Expectations(core, p, core.Info) is { } expectation)
            return expectation;
        return PreHook(p, p.Hooks.PreApply, LivepatchCheck.PreApplyHookVeto);
    }

    /// <summary>REPLACE of a CHECKED payload: it depends on the hypervisor, and no payload involved has vetoing hooks.</summary>
    public LivepatchError? Replace(Payload p)
    {
        if (BuildIdDependency(p, againstHypervisor: true) is { } dependency)
            return dependency;
        if (p.HasVetoingHooks || registry.Applied.Any(a => a.HasVetoingHooks))
            return Refuse.ReplaceWithVetoingHooks(p.Name);
        return null;
    }

    // A vetoing hook (pre-apply, pre-revert): its non-zero result refuses the action.
    private LivepatchError? PreHook(Payload p, ulong slot, LivepatchCheck check)
    {
        if (!Hook.Enabled(core.Memory, slot, out ulong function))
            return null;
        int rc = core.Hooks.CallInt(function, p);
        if (rc == 0)
            return null;
        var errno = (XenErrno)(-rc);
        return check == LivepatchCheck.PreApplyHookVeto ? Refuse.PreApplyHookVeto(p.Name, errno) : Refuse.PreRevertHookVeto(p.Name, errno);
    }

    /// <summary>
    /// <c>build_id_dep</c>: <c>.livepatch.depends</c> must equal the build-id of the top applied payload, or the
    /// hypervisor's when nothing is applied (or always, for REPLACE).
    /// </summary>
    public LivepatchError? BuildIdDependency(Payload p, bool againstHypervisor)
    {
        var top = againstHypervisor ? null : registry.Top;
        if (top == null && core.Symbols.BuildId.IsEmpty)
            return Refuse.DependsNoHypervisorBuildId(p.Name);
        var id = top?.BuildId ?? core.Symbols.BuildId;
        if (p.Depends.Span.SequenceEqual(id.Span))
            return null;
        core.Info($"{p.Name}: check against {top?.Name ?? "hypervisor"} build-id failed");
        string against = top != null ? $"the top applied payload {top.Name} ({Hex(top.BuildId)})" : $"the hypervisor ({Hex(core.Symbols.BuildId)})";
        return Refuse.DependsMismatch(p.Name, against, Hex(p.Depends));
    }

    private static string Hex(ReadOnlyMemory<byte> b) => Convert.ToHexStringLower(b.Span);

    /// <summary>
    /// <c>livepatch_check_expectations</c>: every enabled expectation must match the old function's first
    /// bytes. On a target without code bytes the comparison cannot be made and passes. Runs in the pause for
    /// REPLACE (after every payload is reverted), so it logs to <paramref name="log"/>.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    [RunsInPause]
    public static LivepatchError? Expectations(LivepatchCore core, Payload p, Action<string> log)
    {
        log($"{p.Name}: Verifying enabled expectations for all functions");
        foreach (var f in p.Functions)
        {
            var e = f.Entry.Expect;
            if (!e.Enabled)
                continue;
            string name = f.Name.Length > 0 ? f.Name : "unknown";
            LivepatchError? error = null;
            if (f.OldAddress == 0)
                error = Refuse.ExpectationNoOldAddr(p.Name, name);
            else if (e.Length > LivepatchExpectation.DataSize)
                error = Refuse.ExpectationTooLong(p.Name, name, e.Length, LivepatchExpectation.DataSize);
            else if (e.Reserved != 0)
                error = Refuse.ExpectationReserved(p.Name, name);
            else if (f.Entry.OldSize < e.Length)
                error = Refuse.ExpectationLongerThanFunction(p.Name, name, e.Length, f.Entry.OldSize);
            else
            {
                var actual = new byte[e.Length];
                var status = core.Memory.Read(f.OldAddress, actual);
                var expected = e.Data.Span[..e.Length];
                if (status == MemoryReadStatus.Ok && !actual.AsSpan().SequenceEqual(expected))
                {
                    string want = Convert.ToHexStringLower(expected), got = Convert.ToHexStringLower(actual);
                    log($"{name}: expectation failed: expected:{want}, actual:{got}");
                    error = Refuse.ExpectationMismatch(p.Name, name, want, got);
                }
                else if (status == MemoryReadStatus.Unmapped)
                {
                    error = Refuse.ExpectationNotMapped(p.Name, name, f.OldAddress);
                }
            }
            if (error != null)
            {
                log($"{p.Name}: expectations of {name} failed (rc={error.Rc}), aborting!");
                return error;
            }
        }
        return null;
    }
}
