using XenLivepatch.Abi;

namespace XenLivepatch.Hypervisor;

/// <summary>
/// <c>schedule_work</c> and what follows it: one action at a time, planned (<see cref="PatchPlan"/>) and handed
/// to the CPUs, which run it quiesced; then its record, its post hook and its log line, and the core is idle
/// again. <see cref="WaitIdle"/> lets a caller block until then instead of polling GET.
/// </summary>
internal sealed class ActionScheduler(LivepatchCore core, PayloadRegistry registry)
{
    private Payload? _work;
    // Set while no action is pending. Waiters block on the monitor and never spin: beside spinning vCPUs on
    // few cores, a spinning waiter takes the core a vCPU needs to reach its safe point.
    private readonly object _idleGate = new();
    private bool _idle = true;

    /// <summary>The payload whose action is scheduled or running, or null (read with the registry's lock held).</summary>
    public Payload? Work => _work;

    /// <summary>
    /// Schedules <paramref name="cmd"/> of <paramref name="p"/>, whose rc is already -EAGAIN (called with the
    /// registry's lock held). Returns 0, or -EBUSY while another action is pending (what becomes of the payload's rc
    /// then is the profile's: <see cref="LivepatchProfile.KeepsAgainWhenBusy"/>).
    /// </summary>
    public int Schedule(Payload p, LivepatchAction cmd, uint timeoutNs)
    {
        if (_work != null)
            return LivepatchCheck.ActionPending.Rc();
        _work = p;
        CompileThePause();
        var plan = PatchPlan.Create(core, registry, p, cmd);
        SetIdle(false);
        ulong timeout = timeoutNs == 0 ? Livepatch.DefaultTimeoutNs : timeoutNs;
        core.Cpus.Schedule(plan.Run, timeout, completed: rc =>
        {
            plan.Dispose();
            if (rc == 0)
                plan.Commit();
            Completed(p, cmd, rc);
            SetIdle(true);
        }, prepare: plan.Warm);
        return 0;
    }

    // The methods the pause runs, compiled before the first rendezvous (a no-op where code is compiled ahead
    // of time); left to the JIT, they would be compiled inside the first pause, with the other CPUs held.
    private static void CompileThePause()
    {
        PauseCode.Prepare(typeof(PatchPlan));
        PauseCode.Prepare(typeof(PatchStep));
        PauseCode.Prepare(typeof(Hook));
        PauseCode.Prepare(typeof(ActionChecks));
    }

    // After the pause (or its timeout), on the CPU that ran it: the post hook sees the rc; then the log line.
    private void Completed(Payload p, LivepatchAction cmd, int rendezvous)
    {
        lock (registry.Lock)
        {
            _work = null;
            if (rendezvous != 0)
            {
                // Timed out: nothing was written, state unchanged, the post hooks are skipped.
                p.Rc = rendezvous;
                core.Info(Refuse.QuiesceTimeout(p.Name).Message);
                return;
            }
        }
        ulong post = cmd == LivepatchAction.Revert ? p.Hooks.PostRevert : p.Hooks.PostApply;
        if (Hook.Enabled(core.Memory, post, out ulong fn))
            core.Hooks.CallVoid(fn, p);
        core.Info($"{p.Name} finished {cmd.ToString().ToUpperInvariant()} with rc={p.Rc}");
    }

    /// <summary>Blocks (without spinning) until no action is pending, or the timeout passes; true when idle.</summary>
    public bool WaitIdle(TimeSpan timeout)
    {
        long until = timeout == Timeout.InfiniteTimeSpan ? long.MaxValue : Environment.TickCount64 + (long)timeout.TotalMilliseconds;
        lock (_idleGate)
        {
            while (!_idle)
            {
                long left = until - Environment.TickCount64;
                if (left <= 0)
                    return false;
                Monitor.Wait(_idleGate, (int)Math.Min(left, int.MaxValue));
            }
            return true;
        }
    }

    private void SetIdle(bool idle)
    {
        lock (_idleGate)
        {
            _idle = idle;
            if (idle)
                Monitor.PulseAll(_idleGate);
        }
    }
}
