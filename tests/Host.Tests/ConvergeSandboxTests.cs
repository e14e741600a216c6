using System.Globalization;
using System.Text;
using CsCheck;
using XenLivepatch.Abi;
using XenLivepatch.Control;

namespace XenLivepatch.Host.Tests;

/// <summary>
/// Converge against the sandbox hypervisor with its vCPUs running: random desired sets from random starting
/// states always end in the desired state (loaded, applied, in order, the vCPUs reading the top patch's value),
/// and a second run plans nothing; failures are reported and what does not depend on them is still done.
/// </summary>
[Collection("sandbox")]
public sealed class ConvergeSandboxTests(SandboxFixture sandbox)
{
    // Payloads that apply whatever is below them (with NODEPS where needed), revert without a veto, and can be loaded
    // together (no two define a function of the same name).
    private static readonly string[] s_pool = ["xen_hello_world", "xen_bye_world", "xen_replace_world", "xen_nop", "xen_major_nine", "xen_bye_again"];

    // What the vCPUs read from XENVER_extraversion with each on top (the others patch other functions; the buffer
    // is 16 bytes).
    private static readonly Dictionary<string, string> s_extra = new()
    {
        ["xen_hello_world"] = "Hello World",
        ["xen_bye_world"] = "Bye World!",
        ["xen_replace_world"] = "Hello Again Wor",
        ["xen_bye_again"] = "Bye Again",
    };

    private static int Cases => int.TryParse(Environment.GetEnvironmentVariable("XLP_CONVERGE_CASES"), NumberStyles.None, CultureInfo.InvariantCulture, out int n) ? n : 200;

    private ConvergeReport Converge(LivepatchClient client, DesiredSet set) =>
        Converger.RunAsync(client, set, ConvergeMode.Exact, dryRun: false, sandbox.Runner).GetAwaiter().GetResult();

    [Fact]
    public void Random_sets_from_random_states_end_in_the_desired_state_and_a_second_run_plans_nothing()
    {
        var files = s_pool.ToDictionary(n => n, Payloads.File);
        string xen = Payloads.XenBuildId;
        Gen.Int[0, int.MaxValue].Sample(seed =>
        {
            sandbox.Reset();
            var rng = new Random(seed);
            var log = new StringBuilder($"seed {seed}\nstart:");
            var client = sandbox.Client();
            // A random state: uploads, loads (upload and apply, with or without NODEPS), replaces, reverts and unloads.
            // Each apply is of a payload uploaded just before it, as Xen's load does: Xen does not report the applied
            // order, and converge reads it from the dependencies, ties in upload order.
            int ops = rng.Next(0, 9);
            var core = sandbox.Host.Core;
            for (int i = 0; i < ops; i++)
            {
                string name = s_pool[rng.Next(s_pool.Length)];
                int op = rng.Next(5);
                if (op is 1 or 3 && core.Find(name) is { State: LivepatchState.Checked })
                    core.Action(name, LivepatchAction.Unload);
                switch (op)
                {
                    case 0:
                        core.Upload(name, files[name].Data);
                        log.Append(CultureInfo.InvariantCulture, $" upload {name};");
                        break;
                    case 1:
                        bool nodeps = rng.Next(2) == 0;
                        core.Upload(name, files[name].Data);
                        sandbox.Act(name, LivepatchAction.Apply, nodeps ? LivepatchActionFlags.ApplyNoDeps : LivepatchActionFlags.None);
                        log.Append(CultureInfo.InvariantCulture, $" load {name}{(nodeps ? " --nodeps" : "")};");
                        break;
                    case 2:
                        sandbox.Act(name, LivepatchAction.Revert);
                        log.Append(CultureInfo.InvariantCulture, $" revert {name};");
                        break;
                    case 3:
                        core.Upload(name, files[name].Data);
                        sandbox.Act(name, LivepatchAction.Replace);
                        log.Append(CultureInfo.InvariantCulture, $" upload and replace {name};");
                        break;
                    default:
                        sandbox.Act(name, LivepatchAction.Unload);
                        log.Append(CultureInfo.InvariantCulture, $" unload {name};");
                        break;
                }
            }
            log.Append(CultureInfo.InvariantCulture, $"\nfound: {string.Join(", ", sandbox.Host.Core.Payloads.Select(p => $"{p.Name}:{p.State}"))}\nwanted:");

            // A random desired set, valid for Xen: what depends on another payload comes after it, or is marked nodeps
            // when that one is not in the set.
            var chosen = s_pool.OrderBy(_ => rng.Next()).Take(rng.Next(0, s_pool.Length + 1)).ToList();
            var desired = new List<DesiredPayload>();
            foreach (string name in DesiredSet.DependencyOrder([.. chosen.Select(n => files[n])], (a, b) => chosen.IndexOf(a.Name).CompareTo(chosen.IndexOf(b.Name))).Select(f => f.Name))
            {
                var f = files[name];
                bool nodeps = f.Depends != xen && !desired.Any(d => d.File.BuildId == f.Depends);
                if (nodeps && rng.Next(2) == 0)
                    continue;
                bool replace = desired.Count == 0 && f.Depends == xen && !f.HasVetoingHooks && rng.Next(3) == 0;
                desired.Add(new DesiredPayload(f, replace, nodeps));
                log.Append(CultureInfo.InvariantCulture, $" {name}{(replace ? " replace" : "")}{(nodeps ? " nodeps" : "")};");
            }
            var set = DesiredSet.Of("random", desired);
            Assert.True(set.Check(xen).Count == 0, log + "\n" + string.Join("\n", set.Check(xen)));

            var first = Converge(client, set);
            string outcomes = string.Join("\n", first.Outcomes.Select(o => $"  {o.Step.Verb}: {o.Outcome} {o.Message}"));
            Assert.True(first.Converged, $"{log}\nsteps:\n{outcomes}\ndifferences: {string.Join("; ", first.Differences)}");

            // The hypervisor itself: exactly the desired payloads, applied, in the desired order.
            Assert.Equal(desired.Select(d => d.Name).Order(StringComparer.Ordinal), core.Payloads.Select(p => p.Name).Order(StringComparer.Ordinal));
            Assert.All(core.Payloads, p => Assert.Equal(LivepatchState.Applied, p.State));
            Assert.Equal(desired.Select(d => d.Name), core.Applied.Select(p => p.Name));
            string expected = desired.Select(d => d.Name).LastOrDefault(s_extra.ContainsKey) is { } top ? s_extra[top] : "-sandbox";
            Assert.True(expected == sandbox.Extraversion(), $"{log}\nthe vCPUs read \"{sandbox.Extraversion()}\", not \"{expected}\"");

            var second = Converge(client, set);
            Assert.True(second.Plan is { IsEmpty: true } && second.Outcomes.Count == 0 && second.Converged,
                $"{log}\nthe second run planned: {string.Join(", ", second.Plan?.Steps.Select(s => s.Verb) ?? [])}");
        }, iter: Cases, threads: 1);
    }

    [Fact]
    public void A_vetoed_revert_is_reported_what_is_above_it_waits_and_the_next_run_finishes()
    {
        sandbox.Reset();
        var client = sandbox.Client();
        Assert.Null(sandbox.Host.Core.Upload("xen_prepost_hooks", Payloads.File("xen_prepost_hooks").Data));
        Assert.Equal(0, sandbox.Act("xen_prepost_hooks", LivepatchAction.Apply));
        var set = DesiredSet.Of("test", [new DesiredPayload(Payloads.File("xen_nop"))]);

        var first = Converge(client, set);
        Assert.False(first.Converged);
        var revert = first.Outcomes.Single(o => o.Step.Kind == StepKind.Revert);
        Assert.Equal(("failed", (int)XenErrno.EPERM), (revert.Outcome, revert.Errno));
        Assert.Equal("skipped", first.Outcomes.Single(o => o.Step.Kind == StepKind.Unload).Outcome);
        var apply = first.Outcomes.Single(o => o.Step.Kind == StepKind.Apply);
        Assert.Equal(("skipped", "the applied stack could not be brought down: xen_prepost_hooks is still applied"), (apply.Outcome, apply.Message));
        Assert.Contains("xen_prepost_hooks is loaded but not wanted", first.Differences);

        // Its second pre-revert hook agrees.
        var second = Converge(client, set);
        Assert.True(second.Converged, string.Join("; ", second.Differences));
        Assert.Equal(["xen_nop"], sandbox.Host.Core.Applied.Select(p => p.Name));
    }

    [Fact]
    public void A_payload_that_fails_to_apply_is_reported_and_those_that_do_not_depend_on_it_are_still_applied()
    {
        sandbox.Reset();
        var client = sandbox.Client();
        var set = DesiredSet.Of("test",
        [
            new DesiredPayload(Payloads.File("xen_expectations_fail")),
            new DesiredPayload(Payloads.File("xen_hello_world")),
            new DesiredPayload(Payloads.File("xen_bye_world")),
        ]);
        var report = Converge(client, set);
        Assert.False(report.Converged);
        var failed = Assert.Single(report.Outcomes, o => o.Outcome != "done");
        Assert.Equal(("apply xen_expectations_fail", (int)XenErrno.EINVAL), (failed.Step.Verb, failed.Errno));
        Assert.Equal(["xen_hello_world", "xen_bye_world"], sandbox.Host.Core.Applied.Select(p => p.Name));
        Assert.Equal("Bye World!", sandbox.Extraversion());
        Assert.Equal(["xen_expectations_fail is loaded but not applied"], report.Differences);
    }

    [Fact]
    public async Task A_dry_run_plans_and_changes_nothing()
    {
        sandbox.Reset();
        var client = sandbox.Client();
        Assert.Null(sandbox.Host.Core.Upload("xen_nop", Payloads.File("xen_nop").Data));
        var set = DesiredSet.Of("test", [new DesiredPayload(Payloads.File("xen_replace_world"), Replace: true)]);
        var report = await Converger.RunAsync(client, set, ConvergeMode.Exact, dryRun: true, sandbox.Runner);
        Assert.Equal(["unload xen_nop", "upload xen_replace_world", "replace xen_replace_world"], report.Plan!.Steps.Select(s => s.Verb));
        Assert.Empty(report.Outcomes);
        Assert.Equal(["xen_nop"], sandbox.Host.Core.Payloads.Select(p => p.Name));
    }
}
