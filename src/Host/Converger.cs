using XenLivepatch.Control;
using XenLivepatch.Signing;

namespace XenLivepatch.Host;

/// <summary>What one converge (or apply-installed) did, from the state it found to the state it left.</summary>
/// <param name="Desired">The desired set.</param>
/// <param name="Mode">Exact (converge) or additive (apply-installed).</param>
/// <param name="DryRun">True when only the plan was made.</param>
/// <param name="Problems">Why the set cannot be applied as it is (nothing was done), or empty.</param>
/// <param name="Before">The state found (null when it could not be read).</param>
/// <param name="Plan">The plan (null when nothing was planned).</param>
/// <param name="Outcomes">What each step did (empty for a dry run).</param>
/// <param name="After">The state left (the state found, for a dry run).</param>
/// <param name="Differences">How the state left differs from the desired one (empty: converged).</param>
/// <param name="Failure">The control library call that failed outright (the list could not be read), or null.</param>
public sealed record ConvergeReport(DesiredSet Desired, ConvergeMode Mode, bool DryRun, IReadOnlyList<string> Problems, HostState? Before,
    ConvergePlan? Plan, IReadOnlyList<StepOutcome> Outcomes, HostState? After, IReadOnlyList<string> Differences, LivepatchResult? Failure)
{
    /// <summary>True when a step changed the hypervisor.</summary>
    public bool Changed => Outcomes.Any(o => o.Done);

    /// <summary>True when the state left is the desired one and nothing failed.</summary>
    public bool Converged => Problems.Count == 0 && Failure == null && Differences.Count == 0 && Outcomes.All(o => o.Done);
}

/// <summary>
/// Reads the host's state, plans the way to a desired set, carries the plan out and reads the state again, all
/// through the control library: what <c>converge</c> and <c>apply-installed</c> run.
/// </summary>
public static class Converger
{
    /// <summary>
    /// Converges the hypervisor behind <paramref name="client"/> to <paramref name="desired"/>; a payload that
    /// <paramref name="trust"/> refuses (default: none checked) is a problem, and nothing is done.
    /// </summary>
    public static async Task<ConvergeReport> RunAsync(LivepatchClient client, DesiredSet desired, ConvergeMode mode, bool dryRun,
        ConvergeRunner runner, PayloadTrust? trust = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(client);
        ArgumentNullException.ThrowIfNull(desired);
        ArgumentNullException.ThrowIfNull(runner);
        var (before, failure) = await HostState.ReadAsync(client, withBuildIds: true, cancellationToken).ConfigureAwait(false);
        if (before == null)
            return new ConvergeReport(desired, mode, dryRun, [], null, null, [], null, [], failure);
        var problems = desired.Check(before.XenBuildId).Concat(PayloadFileTrust.Refusals(desired.Payloads.Select(p => p.File), trust ?? PayloadTrust.None)).ToList();
        if (problems.Count > 0)
            return new ConvergeReport(desired, mode, dryRun, problems, before, null, [], before, ConvergeRunner.Differences(desired, before, mode), null);
        var plan = ConvergePlanner.Plan(desired, before, mode);
        if (dryRun || plan.IsEmpty)
            return new ConvergeReport(desired, mode, dryRun, [], before, plan, [], before, ConvergeRunner.Differences(desired, before, mode), null);
        var outcomes = await runner.RunAsync(client, plan, cancellationToken).ConfigureAwait(false);
        var (after, afterFailure) = await HostState.ReadAsync(client, withBuildIds: true, cancellationToken).ConfigureAwait(false);
        return new ConvergeReport(desired, mode, dryRun, [], before, plan, outcomes, after,
            after == null ? ["the state could not be read after the changes"] : ConvergeRunner.Differences(desired, after, mode),
            after == null ? afterFailure : null);
    }
}
