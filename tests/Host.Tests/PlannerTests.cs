using XenLivepatch.Abi;

namespace XenLivepatch.Host.Tests;

/// <summary>The converge planner on states described by hand: the steps Xen's rules call for, in order.</summary>
public class PlannerTests
{
    private static DesiredPayload D(string sample, bool replace = false, bool nodeps = false) => new(Payloads.File(sample), replace, nodeps);

    private static LoadedPayload L(string sample, bool applied, string? name = null)
    {
        var f = Payloads.File(sample);
        return new LoadedPayload(name ?? f.Name, applied ? LivepatchState.Applied : LivepatchState.Checked, 0, f.BuildId, f.Depends, []);
    }

    private static IEnumerable<string> Steps(ConvergePlan plan) => plan.Steps.Select(s => s.Verb);

    private static ConvergePlan Plan(ConvergeMode mode, DesiredPayload[] desired, params LoadedPayload[] loaded) =>
        ConvergePlanner.Plan(DesiredSet.Of("test", desired), HostState.Of(Payloads.XenBuildId, loaded), mode);

    [Fact]
    public void From_nothing_it_uploads_and_applies_in_order_with_nodeps_where_the_dependency_is_below_but_not_on_top()
    {
        var plan = Plan(ConvergeMode.Exact, [D("xen_hello_world"), D("xen_nop"), D("xen_bye_world")]);
        Assert.Equal(["upload xen_hello_world", "apply xen_hello_world", "upload xen_nop", "apply xen_nop --nodeps", "upload xen_bye_world", "apply xen_bye_world --nodeps"], Steps(plan));
    }

    [Fact]
    public void The_desired_state_plans_nothing()
    {
        Assert.True(Plan(ConvergeMode.Exact, [D("xen_hello_world"), D("xen_bye_world")], L("xen_hello_world", true), L("xen_bye_world", true)).IsEmpty);
        Assert.True(Plan(ConvergeMode.Exact, []).IsEmpty);
    }

    [Fact]
    public void What_is_not_wanted_comes_off_top_first_and_what_is_kept_below_stays()
    {
        var plan = Plan(ConvergeMode.Exact, [D("xen_hello_world")], L("xen_hello_world", true), L("xen_bye_world", true), L("xen_nop", false));
        Assert.Equal(["revert xen_bye_world", "unload xen_bye_world", "unload xen_nop"], Steps(plan));
    }

    [Fact]
    public void A_payload_out_of_place_comes_off_with_what_is_above_it_and_a_reverted_one_is_uploaded_anew()
    {
        // Wanted: nop, then hello. Applied: hello, nop (the wrong way round).
        var plan = Plan(ConvergeMode.Exact, [D("xen_nop"), D("xen_hello_world")], L("xen_hello_world", true), L("xen_nop", true));
        Assert.Equal(["revert xen_nop", "revert xen_hello_world", "unload xen_hello_world", "unload xen_nop",
            "upload xen_nop", "apply xen_nop", "upload xen_hello_world", "apply xen_hello_world --nodeps"], Steps(plan));
        Assert.Equal("out of place in the desired order", plan.Steps[1].Why);
    }

    [Fact]
    public void A_replace_set_takes_the_place_of_the_stack_in_one_pause_then_unloads_the_rest()
    {
        var plan = Plan(ConvergeMode.Exact, [D("xen_replace_world", replace: true), D("xen_nop")], L("xen_hello_world", true), L("xen_bye_world", true));
        Assert.Equal(["upload xen_replace_world", "replace xen_replace_world", "unload xen_hello_world", "unload xen_bye_world", "upload xen_nop", "apply xen_nop --nodeps"], Steps(plan));
        Assert.Equal("replaces xen_hello_world, xen_bye_world in one pause", plan.Steps[1].Why);
    }

    [Fact]
    public void A_loaded_payload_with_the_desired_name_but_another_build_id_is_taken_off_and_uploaded_anew()
    {
        var plan = Plan(ConvergeMode.Exact, [D("xen_hello_world")], L("xen_nop", true, name: "xen_hello_world"));
        Assert.Equal(["revert xen_hello_world", "unload xen_hello_world", "upload xen_hello_world", "apply xen_hello_world"], Steps(plan));
        Assert.Equal("differs from the desired file", plan.Steps[0].Why);
    }

    [Fact]
    public void Additive_mode_leaves_other_payloads_alone_and_reports_a_conflict_instead_of_reverting_it()
    {
        // Another file applied under xen_hello_world's name: it stays, and xen_bye_world (built on the installed one) is not applied.
        var plan = Plan(ConvergeMode.Additive, [D("xen_hello_world"), D("xen_bye_world"), D("xen_action_hooks")], L("xen_nop", true, name: "xen_hello_world"));
        Assert.Equal(["upload xen_action_hooks", "apply xen_action_hooks --nodeps"], Steps(plan));
        Assert.Equal(2, plan.Conflicts.Count);
        Assert.StartsWith("xen_hello_world is applied but is not the installed file", plan.Conflicts[0], StringComparison.Ordinal);
        Assert.Equal("xen_bye_world depends on xen_hello_world, which is left alone: not applied", plan.Conflicts[1]);

        plan = Plan(ConvergeMode.Additive, [D("xen_hello_world"), D("xen_bye_world")], L("xen_hello_world", false));
        Assert.Equal(["unload xen_hello_world", "upload xen_hello_world", "apply xen_hello_world", "upload xen_bye_world", "apply xen_bye_world"], Steps(plan));
    }

    [Fact]
    public void Without_the_payloads_build_ids_it_goes_by_name_and_says_so()
    {
        var loaded = new LoadedPayload("xen_hello_world", LivepatchState.Applied, 0, null, null, []);
        var plan = ConvergePlanner.Plan(DesiredSet.Of("test", [D("xen_hello_world")]), HostState.Of(Payloads.XenBuildId, [loaded], buildIdsKnown: false), ConvergeMode.Exact);
        Assert.True(plan.IsEmpty);
        Assert.StartsWith("the loaded payloads' build-ids are unknown", Assert.Single(plan.Notes), StringComparison.Ordinal);
    }
}
