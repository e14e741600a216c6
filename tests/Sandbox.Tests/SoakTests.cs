using XenLivepatch.Abi;

namespace XenLivepatch.Sandbox.Tests;

/// <summary>
/// Two vCPUs read the patched function continuously while APPLY, REVERT and REPLACE cycle: every value
/// they ever read is the original or one of the replacements, and nothing crashes. XLP_SOAK sets the number
/// of actions (default 1,200: a few seconds).
/// </summary>
[Collection("sandbox")]
public class SoakTests
{
    private static int Actions => int.TryParse(Environment.GetEnvironmentVariable("XLP_SOAK"), out int n) ? n : 1200;

    [Fact]
    public void Vcpus_only_ever_see_the_old_or_a_new_function()
    {
        using var host = SandboxArtifacts.Boot();
        var d = new Driver(host);
        Assert.Null(d.Upload("a", "xen_replace_world"));
        Assert.Null(d.Upload("b", "xen_expectations"));
        int done = 0;
        var pattern = new (string Name, LivepatchAction Action, LivepatchState After)[]
        {
            ("a", LivepatchAction.Apply, LivepatchState.Applied),
            ("a", LivepatchAction.Revert, LivepatchState.Checked),
            ("b", LivepatchAction.Replace, LivepatchState.Applied),
            ("a", LivepatchAction.Replace, LivepatchState.Applied),
            ("a", LivepatchAction.Revert, LivepatchState.Checked),
        };
        while (done < Actions)
        {
            foreach (var (name, action, after) in pattern)
            {
                var r = d.Act(name, action);
                Assert.Equal((0, (int?)0, (LivepatchState?)after), r);
                done++;
            }
        }
        Assert.True(host.WaitForEntries(100, TimeSpan.FromSeconds(10)));
        var seen = host.Vcpus.Stats.SelectMany(s => s.ExtraVersions.Keys).ToHashSet();
        Assert.Subset(new HashSet<string> { "-sandbox", "Hello Again Wor", "Hello World" }, seen);
        Assert.True(seen.Count >= 2, "the vCPUs saw a single value: they did not run during the soak");
        Assert.All(host.Vcpus.Stats, s => Assert.True(s.Iterations > done, $"vCPU {s.Index} made only {s.Iterations} entries during {done} actions"));
        Assert.Equal(done, host.Vcpus.Timings.Count(t => t.Rc == 0));
        Assert.Equal(0, host.Bugs);
    }
}
