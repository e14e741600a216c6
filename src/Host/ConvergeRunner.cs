using XenLivepatch.Abi;
using XenLivepatch.Control;

namespace XenLivepatch.Host;

/// <summary>What became of one step.</summary>
/// <param name="Step">The step.</param>
/// <param name="Outcome">"done", "failed" or "skipped".</param>
/// <param name="Errno">Xen's errno when it failed (0 otherwise).</param>
/// <param name="Message">Why it failed or was skipped, or null.</param>
public sealed record StepOutcome(PlanStep Step, string Outcome, int Errno, string? Message)
{
    /// <summary>True when the step was carried out.</summary>
    public bool Done => Outcome == "done";
}

/// <summary>
/// Carries out a <see cref="ConvergePlan"/> through the control library: each upload, apply, replace, revert and
/// unload as Xen's tool makes it, waiting for each action's outcome (GET until its rc is no longer -EAGAIN) and
/// trying again, up to <see cref="Attempts"/> times, when the rendezvous timed out or another action was running
/// (-EBUSY, -EAGAIN). A failure does not stop the run: what does not depend on the failed payload is still done;
/// what does is skipped and says why. Reverts that find another payload on top (-EBUSY) are tried again after the
/// others of the same run, so an applied stack whose order was guessed wrong still comes down.
/// </summary>
public sealed class ConvergeRunner
{
    /// <summary>The action timeout passed to Xen (ns); Xen's tool passes 30 ms.</summary>
    public uint TimeoutNs { get; init; } = LivepatchClient.ToolTimeoutNs;

    /// <summary>How often an action is tried when Xen answers -EBUSY or -EAGAIN.</summary>
    public int Attempts { get; init; } = 3;

    /// <summary>How long one action may take before it counts as failed.</summary>
    public TimeSpan ActionDeadline { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>Told each step as it starts and ends ("applying xen_hello_world ... done").</summary>
    public Action<string>? Progress { get; init; }

    /// <summary>Runs <paramref name="plan"/>; the outcomes are in plan order.</summary>
    public async Task<IReadOnlyList<StepOutcome>> RunAsync(LivepatchClient client, ConvergePlan plan, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(client);
        ArgumentNullException.ThrowIfNull(plan);
        var outcomes = new StepOutcome?[plan.Steps.Count];
        var failed = new HashSet<string>(StringComparer.Ordinal);
        var failedIds = new HashSet<string>(StringComparer.Ordinal);
        string? stuck = null;
        for (int i = 0; i < plan.Steps.Count; i++)
        {
            var step = plan.Steps[i];
            if (step.Kind == StepKind.Revert)
            {
                // The run of reverts, brought down together.
                int end = i;
                while (end < plan.Steps.Count && plan.Steps[end].Kind == StepKind.Revert)
                    end++;
                await RevertAllAsync(client, plan.Steps, i, end, outcomes, cancellationToken).ConfigureAwait(false);
                for (int j = i; j < end; j++)
                {
                    if (!outcomes[j]!.Done)
                    {
                        failed.Add(plan.Steps[j].Name);
                        stuck ??= plan.Steps[j].Name;
                    }
                }
                i = end - 1;
                continue;
            }
            string? skip = SkipReason(step, failed, failedIds, stuck);
            StepOutcome outcome;
            if (skip != null)
            {
                outcome = new StepOutcome(step, "skipped", 0, skip);
                Progress?.Invoke($"{step.Verb}: skipped ({skip})");
            }
            else
            {
                Progress?.Invoke($"{step.Verb} ...");
                outcome = await RunStepAsync(client, step, cancellationToken).ConfigureAwait(false);
                Progress?.Invoke($"{step.Verb}: {outcome.Outcome}{(outcome.Message != null ? $" ({outcome.Message})" : "")}");
            }
            outcomes[i] = outcome;
            if (!outcome.Done)
            {
                failed.Add(step.Name);
                if (step.File != null)
                    failedIds.Add(step.File.BuildId);
            }
        }
        return [.. outcomes.Select(o => o!)];
    }

    private static string? SkipReason(PlanStep step, HashSet<string> failed, HashSet<string> failedIds, string? stuck)
    {
        switch (step.Kind)
        {
            case StepKind.Unload:
                return failed.Contains(step.Name) ? $"{step.Name} is still applied: its revert failed" : null;
            case StepKind.Upload:
                return failed.Contains(step.Name) ? $"{step.Name} could not be unloaded first" : null;
            default:
                if (failed.Contains(step.Name))
                    return $"{step.Name} was not uploaded";
                if (stuck != null)
                    return $"the applied stack could not be brought down: {stuck} is still applied";
                if (step.File != null && failedIds.Contains(step.File.Depends))
                    return "what it depends on did not apply";
                return null;
        }
    }

    private async Task<StepOutcome> RunStepAsync(LivepatchClient client, PlanStep step, CancellationToken cancellationToken)
    {
        switch (step.Kind)
        {
            case StepKind.Upload:
            {
                var r = await client.UploadAsync(step.Name, step.File!.Data, cancellationToken: cancellationToken).ConfigureAwait(false);
                return r.Succeeded ? new StepOutcome(step, "done", 0, null) : Failed(step, r.Errno, null);
            }
            case StepKind.Unload:
            {
                var r = await client.UnloadAsync(step.Name, TimeoutNs, cancellationToken).ConfigureAwait(false);
                return r.Succeeded ? new StepOutcome(step, "done", 0, null) : Failed(step, r.Errno, null);
            }
            case StepKind.Apply:
                return await ActionAsync(client, step, LivepatchAction.Apply, LivepatchState.Applied,
                    step.NoDeps ? LivepatchActionFlags.ApplyNoDeps : LivepatchActionFlags.None, cancellationToken).ConfigureAwait(false);
            case StepKind.Replace:
                return await ActionAsync(client, step, LivepatchAction.Replace, LivepatchState.Applied, LivepatchActionFlags.None, cancellationToken).ConfigureAwait(false);
            default:
                return await ActionAsync(client, step, LivepatchAction.Revert, LivepatchState.Checked, LivepatchActionFlags.None, cancellationToken).ConfigureAwait(false);
        }
    }

    private static StepOutcome Failed(PlanStep step, int errno, string? message) =>
        new(step, "failed", errno, message ?? $"{XenErrors.Name(errno)}: {XenErrors.Message(errno)}");

    // One action, waited for; -EBUSY or -EAGAIN (the hypercall's, or the action's after a rendezvous timeout) tried
    // again. A synchronous -EBUSY on the last attempt is answered as it is (for a revert: not the top of the stack).
    private async Task<StepOutcome> ActionAsync(LivepatchClient client, PlanStep step, LivepatchAction action, LivepatchState expected,
        LivepatchActionFlags flags, CancellationToken cancellationToken)
    {
        int errno = 0;
        for (int attempt = 1; attempt <= Attempts; attempt++)
        {
            var r = await client.ActionAsync(step.Name, action, TimeoutNs, flags, cancellationToken).ConfigureAwait(false);
            if (r.Rc is -(int)XenErrno.EBUSY or -(int)XenErrno.EAGAIN)
            {
                errno = r.Errno;
                if (attempt < Attempts)
                    await Task.Delay(TimeSpan.FromMilliseconds(20 * attempt), cancellationToken).ConfigureAwait(false);
                continue;
            }
            if (!r.Succeeded)
                return Failed(step, r.Errno, null);
            var get = await client.WaitAsync(step.Name, TimeSpan.FromMilliseconds(2), ActionDeadline, cancellationToken).ConfigureAwait(false);
            if (get.InProgress)
                return Failed(step, (int)XenErrno.EAGAIN, $"still in progress after {ActionDeadline.TotalSeconds:0} s");
            if (!get.Result.Succeeded)
                return Failed(step, get.Result.Errno, null);
            if (get.Status.Rc == -(int)XenErrno.EBUSY)
            {
                // The rendezvous timed out; the state is unchanged.
                errno = (int)XenErrno.EBUSY;
                continue;
            }
            if (get.Status.Rc < 0)
                return Failed(step, -get.Status.Rc, null);
            if (get.State == expected)
                return new StepOutcome(step, "done", 0, null);
            return Failed(step, (int)XenErrno.EINVAL, $"it ended {get.State?.ToString().ToUpperInvariant() ?? "in an unknown state"}, not {expected.ToString().ToUpperInvariant()}");
        }
        return Failed(step, errno, errno == (int)XenErrno.EBUSY && action == LivepatchAction.Revert
            ? "another payload is on top of it, or the CPUs could not be stopped in time (EBUSY)"
            : null);
    }

    // Reverts steps[from..to), each when it is the top: one that finds another on top (-EBUSY) waits for the next
    // pass; passes go on while one of them makes progress.
    private async Task RevertAllAsync(LivepatchClient client, IReadOnlyList<PlanStep> steps, int from, int to, StepOutcome?[] outcomes, CancellationToken cancellationToken)
    {
        var pending = Enumerable.Range(from, to - from).ToList();
        bool progress = true;
        while (pending.Count > 0 && progress)
        {
            progress = false;
            foreach (int i in pending.ToList())
            {
                var step = steps[i];
                Progress?.Invoke($"{step.Verb} ...");
                var once = new ConvergeRunner { TimeoutNs = TimeoutNs, Attempts = 1, ActionDeadline = ActionDeadline };
                var outcome = await once.ActionAsync(client, step, LivepatchAction.Revert, LivepatchState.Checked, LivepatchActionFlags.None, cancellationToken).ConfigureAwait(false);
                if (outcome.Done)
                {
                    outcomes[i] = outcome;
                    pending.Remove(i);
                    progress = true;
                    Progress?.Invoke($"{step.Verb}: done");
                }
                else
                {
                    outcomes[i] = outcome;
                    Progress?.Invoke($"{step.Verb}: not yet ({outcome.Message})");
                }
            }
        }
        // What is left failed its last attempt; retry those that failed with EBUSY as a whole action would.
        foreach (int i in pending)
        {
            if (outcomes[i]!.Errno == (int)XenErrno.EBUSY)
                outcomes[i] = await ActionAsync(client, steps[i], LivepatchAction.Revert, LivepatchState.Checked, LivepatchActionFlags.None, cancellationToken).ConfigureAwait(false);
            Progress?.Invoke($"{steps[i].Verb}: {outcomes[i]!.Outcome} ({outcomes[i]!.Message})");
        }
    }

    /// <summary>
    /// How <paramref name="state"/> differs from <paramref name="desired"/> in <paramref name="mode"/>: empty when it
    /// is the desired state (Exact: the loaded payloads are the desired ones, all applied, in its order, with its
    /// build-ids when known; Additive: every desired payload applied).
    /// </summary>
    public static IReadOnlyList<string> Differences(DesiredSet desired, HostState state, ConvergeMode mode)
    {
        ArgumentNullException.ThrowIfNull(desired);
        ArgumentNullException.ThrowIfNull(state);
        var diff = new List<string>();
        foreach (var p in desired.Payloads)
        {
            var l = state.Find(p.Name);
            if (l == null)
                diff.Add($"{p.Name} is not loaded");
            else if (!l.IsApplied)
                diff.Add($"{p.Name} is loaded but not applied");
            else if (l.BuildId != null && l.BuildId != p.File.BuildId)
                diff.Add($"{p.Name} is not the desired file (build-id {l.BuildId})");
        }
        if (mode == ConvergeMode.Exact)
        {
            var names = desired.Payloads.Select(p => p.Name).ToHashSet(StringComparer.Ordinal);
            foreach (var l in state.Loaded.Where(l => !names.Contains(l.Name)))
                diff.Add($"{l.Name} is loaded but not wanted");
            if (diff.Count == 0)
            {
                var order = state.AppliedStack.Select(p => p.Name).ToList();
                var want = desired.Payloads.Select(p => p.Name).ToList();
                if (!order.SequenceEqual(want, StringComparer.Ordinal))
                    diff.Add($"the applied order is {string.Join(", ", order)}, not {string.Join(", ", want)}");
            }
        }
        return diff;
    }
}
