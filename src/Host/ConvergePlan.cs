namespace XenLivepatch.Host;

/// <summary>What a plan step does.</summary>
public enum StepKind
{
    /// <summary>UPLOAD the payload's file.</summary>
    Upload,
    /// <summary>ACTION APPLY (with NODEPS when <see cref="PlanStep.NoDeps"/>).</summary>
    Apply,
    /// <summary>ACTION REPLACE: revert every applied payload and apply this one, in one pause.</summary>
    Replace,
    /// <summary>ACTION REVERT.</summary>
    Revert,
    /// <summary>ACTION UNLOAD.</summary>
    Unload,
}

/// <summary>One step of a plan.</summary>
/// <param name="Kind">What it does.</param>
/// <param name="Name">The payload it acts on.</param>
/// <param name="Why">Why it is needed, for the operator.</param>
/// <param name="File">The payload's file (uploads, applies).</param>
/// <param name="NoDeps">An apply with LIVEPATCH_ACTION_APPLY_NODEPS.</param>
public sealed record PlanStep(StepKind Kind, string Name, string Why, PayloadFile? File = null, bool NoDeps = false)
{
    /// <summary>The step as the operator reads it: "apply xen_bye_world --nodeps".</summary>
    public string Verb => Kind switch
    {
        StepKind.Apply when NoDeps => $"apply {Name} --nodeps",
        _ => $"{Kind.ToString().ToLowerInvariant()} {Name}",
    };
}

/// <summary>How the desired set is reached.</summary>
public enum ConvergeMode
{
    /// <summary>
    /// <c>converge</c>: the loaded and applied payloads become exactly the desired set, in its order; what is not
    /// wanted is reverted and unloaded.
    /// </summary>
    Exact,
    /// <summary>
    /// <c>apply-installed</c>: every desired payload is applied; what is already applied is left alone, and nothing
    /// else is reverted or unloaded (a REPLACE still reverts what is below it, as REPLACE does).
    /// </summary>
    Additive,
}

/// <summary>A plan: the steps in order, and what the planner noticed (build-ids unknown, conflicts).</summary>
/// <param name="Steps">The steps.</param>
/// <param name="Notes">What the operator should know (a conflict left alone, the build-ids it could not see).</param>
/// <param name="Conflicts">Desired payloads that cannot be reached without undoing what this mode leaves alone.</param>
public sealed record ConvergePlan(IReadOnlyList<PlanStep> Steps, IReadOnlyList<string> Notes, IReadOnlyList<string> Conflicts)
{
    /// <summary>True when nothing needs to be done.</summary>
    public bool IsEmpty => Steps.Count == 0;
}

/// <summary>
/// Works out the steps that take a hypervisor from <see cref="HostState"/> to a <see cref="DesiredSet"/>, within
/// Xen's rules (seed design "Patching"; reference §4.2): only the top of the applied stack may be reverted; an
/// apply checks the payload's dependency against the top of the stack unless NODEPS; a payload reverted with
/// .data cannot be applied again (so a desired payload found loaded but not applied is unloaded and uploaded
/// anew); REPLACE reverts the whole stack and applies in one pause (so a set whose first payload is marked replace
/// moves from one stack to the next without a moment unpatched).
/// </summary>
public static class ConvergePlanner
{
    /// <summary>The plan from <paramref name="state"/> to <paramref name="desired"/> in <paramref name="mode"/>.</summary>
    public static ConvergePlan Plan(DesiredSet desired, HostState state, ConvergeMode mode)
    {
        ArgumentNullException.ThrowIfNull(desired);
        ArgumentNullException.ThrowIfNull(state);
        var notes = new List<string>();
        if (!state.BuildIdsKnown && state.Loaded.Count > 0)
            notes.Add($"the loaded payloads' build-ids are unknown ({state.DumpProblem ?? "no 'x' dump"}): they are told apart by name only");
        return mode == ConvergeMode.Exact ? Exact(desired, state, notes) : Additive(desired, state, notes);
    }

    private static bool Matches(LoadedPayload loaded, DesiredPayload desired) =>
        loaded.Name == desired.Name && (loaded.BuildId == null || loaded.BuildId == desired.File.BuildId);

    private static ConvergePlan Exact(DesiredSet desired, HostState state, List<string> notes)
    {
        var d = desired.Payloads;
        var s = state.AppliedStack;
        int k = 0;
        while (k < s.Count && k < d.Count && Matches(s[k], d[k]))
            k++;
        var steps = new List<PlanStep>();
        var desiredNames = d.Select(p => p.Name).ToHashSet(StringComparer.Ordinal);
        var staying = s.Take(k).Select(p => p.Name).ToHashSet(StringComparer.Ordinal);

        var first = d.Count > 0 ? d[0] : null;
        var firstLoaded = first == null ? null : state.Find(first.Name);
        bool replace = first is { Replace: true } && k == 0 && s.Count > 0 && firstLoaded is not { IsApplied: true }
            && !state.Loaded.Any(l => l.Name != first.Name && l.BuildId == first.File.BuildId);
        int from = k;
        if (replace)
        {
            if (firstLoaded != null)
                steps.Add(new PlanStep(StepKind.Unload, first!.Name, "loaded but not applied: uploaded anew (a reverted payload may not apply again)"));
            steps.Add(new PlanStep(StepKind.Upload, first!.Name, "wanted, not loaded", first.File));
            steps.Add(new PlanStep(StepKind.Replace, first.Name,
                $"replaces {string.Join(", ", s.Select(p => p.Name))} in one pause", first.File));
            foreach (var l in state.Loaded.Where(l => l.Name != first.Name))
                steps.Add(new PlanStep(StepKind.Unload, l.Name, desiredNames.Contains(l.Name) ? "reverted by the REPLACE: uploaded anew" : "not wanted"));
            staying = [first.Name];
            from = 1;
        }
        else
        {
            for (int i = s.Count - 1; i >= k; i--)
                steps.Add(new PlanStep(StepKind.Revert, s[i].Name, WhyRevert(s[i], i, k, d)));
            foreach (var l in state.Loaded.Where(l => !staying.Contains(l.Name)))
                steps.Add(new PlanStep(StepKind.Unload, l.Name, !desiredNames.Contains(l.Name) ? "not wanted"
                    : l.IsApplied ? "reverted above: uploaded anew"
                    : l.BuildId != null && l.BuildId != d.First(p => p.Name == l.Name).File.BuildId ? "differs from the desired file: uploaded anew"
                    : "loaded but not applied: uploaded anew (a reverted payload may not apply again)"));
        }
        var below = new List<string>();
        foreach (var p in d.Take(from))
            below.Add(p.File.BuildId);
        for (int j = from; j < d.Count; j++)
        {
            var p = d[j];
            steps.Add(new PlanStep(StepKind.Upload, p.Name, "wanted, not loaded", p.File));
            steps.Add(ApplyStep(p, j == 0 && p.Replace, state.XenBuildId, below));
            below.Add(p.File.BuildId);
        }
        return new ConvergePlan(steps, notes, []);
    }

    private static string WhyRevert(LoadedPayload p, int at, int k, IReadOnlyList<DesiredPayload> d)
    {
        var wanted = d.FirstOrDefault(x => x.Name == p.Name);
        if (wanted == null)
            return "not wanted";
        if (p.BuildId != null && p.BuildId != wanted.File.BuildId)
            return "differs from the desired file";
        return at == k ? "out of place in the desired order" : "above a payload that must come off";
    }

    // An apply of p over the payloads whose build-ids are below (bottom first): plain when p depends on the top
    // (the hypervisor when nothing is below), NODEPS when it depends on something further down or is marked so.
    private static PlanStep ApplyStep(DesiredPayload p, bool replace, string? xen, IReadOnlyList<string?> below)
    {
        if (replace)
            return new PlanStep(StepKind.Replace, p.Name, "marked replace", p.File);
        string? top = below.Count == 0 ? xen : below[^1];
        if (top != null && p.File.Depends == top)
            return new PlanStep(StepKind.Apply, p.Name, "wanted", p.File);
        if (p.NoDeps)
            return new PlanStep(StepKind.Apply, p.Name, "wanted; marked nodeps", p.File, NoDeps: true);
        if ((xen != null && p.File.Depends == xen) || below.Contains(p.File.Depends))
            return new PlanStep(StepKind.Apply, p.Name, "wanted; what it depends on is below, not on top", p.File, NoDeps: true);
        return new PlanStep(StepKind.Apply, p.Name, "wanted", p.File);
    }

    private static ConvergePlan Additive(DesiredSet desired, HostState state, List<string> notes)
    {
        var steps = new List<PlanStep>();
        var conflicts = new List<string>();
        var below = state.AppliedStack.Select(p => p.BuildId).ToList();
        // Build-ids of desired payloads that cannot be applied here: what depends on them cannot be either.
        var blocked = new HashSet<string>(StringComparer.Ordinal);
        foreach (var p in desired.Payloads)
        {
            var loaded = state.Find(p.Name);
            if (loaded is { IsApplied: true })
            {
                if (loaded.BuildId != null && loaded.BuildId != p.File.BuildId)
                {
                    conflicts.Add($"{p.Name} is applied but is not the installed file (build-id {loaded.BuildId}, installed {p.File.BuildId}): " +
                        "left alone; revert and unload it, or use 'xen-livepatch converge'");
                    blocked.Add(p.File.BuildId);
                }
                continue;
            }
            if (!p.NoDeps && blocked.Contains(p.File.Depends))
            {
                conflicts.Add($"{p.Name} depends on {desired.Payloads.First(q => q.File.BuildId == p.File.Depends).Name}, which is left alone: not applied");
                blocked.Add(p.File.BuildId);
                continue;
            }
            if (loaded != null)
                steps.Add(new PlanStep(StepKind.Unload, p.Name, "loaded but not applied: uploaded anew (a reverted payload may not apply again)"));
            steps.Add(new PlanStep(StepKind.Upload, p.Name, "installed, not loaded", p.File));
            var apply = ApplyStep(p, p.Replace, state.XenBuildId, below);
            steps.Add(apply);
            if (p.Replace)
                below.Clear();
            below.Add(p.File.BuildId);
        }
        return new ConvergePlan(steps, notes, conflicts);
    }
}
