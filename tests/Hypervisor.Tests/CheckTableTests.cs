using System.Reflection;
using XenLivepatch.Abi;

namespace XenLivepatch.Hypervisor.Tests;

/// <summary>The check table (tools/Gen/Tables/livepatch-checks.tbl) as the code sees it.</summary>
public class CheckTableTests
{
    private const BindingFlags Any = BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.Instance | BindingFlags.Static | BindingFlags.DeclaredOnly;

    [Fact]
    public void Every_check_points_at_a_method_that_exists()
    {
        var types = typeof(LivepatchCore).Assembly.GetTypes().ToLookup(t => t.Name);
        var missing = new List<string>();
        foreach (var check in LivepatchChecks.All)
        {
            foreach (string place in check.GetCode().Split(", "))
            {
                string[] parts = place.Split('.');
                bool found = parts.Length == 2 && types[parts[0]].Any(t => t.GetMembers(Any).Any(m => m.Name == parts[1]));
                if (!found)
                    missing.Add($"{check}: {place}");
            }
        }
        Assert.True(missing.Count == 0, "the table's code column names nothing for:\n" + string.Join("\n", missing));
    }

    [Fact]
    public void A_refusal_carries_its_check_its_errno_and_a_message_that_names_the_payload()
    {
        var error = Refuse.FuncsSize("xen_hello_world", 105, 104);
        Assert.Equal((LivepatchCheck.FuncsSize, XenErrno.EINVAL, -22), (error.Check, error.Errno, error.Rc));
        Assert.Equal("xen_hello_world: wrong size 105 of .livepatch.funcs (must be a multiple of 104)", error.Message);
        Assert.Equal("error 22 (EINVAL): xen_hello_world: wrong size 105 of .livepatch.funcs (must be a multiple of 104)", error.ToString());
        // A hook's veto carries the hook's value.
        var veto = Refuse.PreApplyHookVeto("p", (XenErrno)1);
        Assert.Equal((null, -1, "p: the pre-apply hook vetoed the apply (EPERM)"), (veto.Check.GetErrno(), veto.Rc, veto.Message));
    }

    [Fact]
    public void Ids_are_unique_and_grouped_by_stage()
    {
        Assert.Equal(LivepatchChecks.All.Count, LivepatchChecks.All.Select(c => (int)c).Distinct().Count());
        // The hundreds of an id are its stage's: a stage's ids are contiguous in the table.
        foreach (var stage in LivepatchChecks.All.GroupBy(c => c.GetStage()))
            Assert.Single(stage.Select(c => (int)c / 100).Distinct());
    }
}
