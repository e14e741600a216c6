using XenLivepatch.Abi;
using XenLivepatch.TestKit;
using XenLivepatch.Tooling;

namespace XenLivepatch.Sandbox.Tests;

/// <summary>
/// From a source patch to a running sandbox: each sample patch of src/Sandbox/patches goes through
/// <c>build-source</c> (the image's sources, the build the running image came from as the base), the payload is
/// applied while the vCPUs run, and the change is seen: by the vCPUs (the version string) or through the image's
/// query hypercall (a static function's logic, new functions and variables, a static local that keeps its
/// value, hooks). The kinds a live patch cannot carry are refused with their reason.
/// </summary>
[Collection("sandbox")]
public class SourcePatchTests
{
    private const long QueryClamp = 0, QueryServed = 2, QueryTwice = 4, QueryLastClamped = 5;
    private const long HypercallQuery = 3;
    private const long ENOSYS = -38;

    private static SourceBuildResult BuildSource(params string[] patches)
    {
        string output = Path.Combine(Repo.TempDirectory("sandbox-source"), "p.livepatch");
        var request = new SourceBuildRequest
        {
            Tree = Repo.Path("src", "Sandbox", "image"),
            Patches = [.. patches.Select(p => Repo.Path("src", "Sandbox", "patches", p + ".patch"))],
            Output = output,
            BaseBuild = Path.Combine(SandboxArtifacts.Folder, "build"),
            Jobs = 2,
        };
        var progress = new StringWriter();
        var r = SourceBuild.Run(request, progress);
        Assert.True(r.Outcome != SourceBuildOutcome.Built || File.Exists(output), progress.ToString());
        return r;
    }

    private static byte[] Payload(params string[] patches)
    {
        var r = BuildSource(patches);
        Assert.True(r.Outcome == SourceBuildOutcome.Built, $"{r.Outcome}: {r.Problem}");
        return r.Payload!.Data;
    }

    private static unsafe long Query(SandboxHost host, long cmd, long arg = 0)
    {
        var hypercall = (delegate* unmanaged<ulong, long, long, long, long>)host.Image.Address("hypercall");
        return hypercall((ulong)HypercallQuery, cmd, arg, 0);
    }

    private static unsafe long Warnings(SandboxHost host) => Volatile.Read(ref *(long*)host.Memory.Pointer(host.Image.Address("sandbox_warnings")));

    private static void Apply(Driver d, string name, byte[] payload)
    {
        Assert.Null(d.Host.Core.Upload(name, payload));
        Assert.Equal((0, 0, LivepatchState.Applied), d.Act(name, LivepatchAction.Apply));
    }

    private static void Revert(Driver d, string name) => Assert.Equal((0, 0, LivepatchState.Checked), d.Act(name, LivepatchAction.Revert));

    [Fact]
    public void A_string_change_is_seen_by_the_running_vcpus()
    {
        byte[] payload = Payload("extra-version");
        using var host = SandboxArtifacts.Boot();
        var d = new Driver(host);
        Assert.Equal("-sandbox", d.Seen());
        Apply(d, "extra_version", payload);
        Assert.Equal("-patched", d.Seen());
        Revert(d, "extra_version");
        Assert.Equal("-sandbox", d.Seen());
        Assert.Equal(0, host.Bugs);
    }

    [Fact]
    public void Logic_in_a_static_function_changes_and_its_warn_still_fires()
    {
        byte[] payload = Payload("clamp-fix");
        using var host = SandboxArtifacts.Boot();
        var d = new Driver(host);
        // limits[0] is 10: 10 is let through, 11 is clamped (a WARN).
        Assert.Equal(10, Query(host, QueryClamp, 10));
        long warned = Warnings(host);
        Assert.Equal(10, Query(host, QueryClamp, 11));
        Assert.Equal(warned + 1, Warnings(host));
        Apply(d, "clamp_fix", payload);
        Assert.Equal(9, Query(host, QueryClamp, 10));
        Assert.Equal(warned + 2, Warnings(host));
        Assert.Equal(5, Query(host, QueryClamp, 5));
        Revert(d, "clamp_fix");
        Assert.Equal(10, Query(host, QueryClamp, 10));
    }

    [Fact]
    public void A_new_function_is_called_by_the_changed_one()
    {
        byte[] payload = Payload("new-function");
        using var host = SandboxArtifacts.Boot();
        var d = new Driver(host);
        Assert.Equal(ENOSYS, Query(host, QueryTwice, 3));
        Apply(d, "new_function", payload);
        Assert.Equal(6, Query(host, QueryTwice, 3));
        Assert.Equal(160, Query(host, QueryTwice, 1000)); // clamped to limits[7] = 80 first
        Revert(d, "new_function");
        Assert.Equal(ENOSYS, Query(host, QueryTwice, 3));
    }

    [Fact]
    public void A_new_variable_lives_in_the_payload()
    {
        byte[] payload = Payload("new-variable");
        using var host = SandboxArtifacts.Boot();
        var d = new Driver(host);
        Apply(d, "new_variable", payload);
        Assert.Equal(0, Query(host, QueryLastClamped));
        Assert.Equal(10, Query(host, QueryClamp, 123));
        Assert.Equal(123, Query(host, QueryLastClamped));
    }

    [Fact]
    public void A_static_local_keeps_the_running_hypervisors_value()
    {
        byte[] payload = Payload("static-local");
        using var host = SandboxArtifacts.Boot();
        var d = new Driver(host);
        for (int i = 0; i < 4; i++)
            Query(host, QueryClamp, 1);
        long before = Query(host, QueryServed);
        Assert.True(before >= 5);
        Apply(d, "static_local", payload);
        // The payload counts ten at a time, on from the original's count: the variable is the hypervisor's.
        Assert.Equal(before + 10, Query(host, QueryServed));
        Revert(d, "static_local");
        Assert.Equal(before + 11, Query(host, QueryServed));
    }

    [Fact]
    public void Two_files_patched_at_once()
    {
        byte[] payload = Payload("two-files");
        using var host = SandboxArtifacts.Boot();
        var d = new Driver(host);
        Apply(d, "two_files", payload);
        Assert.Equal("-two-files", d.Seen());
        Assert.Equal(9, Query(host, QueryClamp, 10));
        Revert(d, "two_files");
        Assert.Equal("-sandbox", d.Seen());
    }

    [Fact]
    public void Hooks_declared_by_the_patch_run_at_apply_and_revert()
    {
        byte[] payload = Payload("hooks");
        using var host = SandboxArtifacts.Boot();
        var d = new Driver(host);
        Apply(d, "hooks", payload);
        Assert.True(SmokeTests.SpinUntil(() => host.HookLog.Contains("limits: live patch applied")), string.Join("\n", host.HookLog));
        Revert(d, "hooks");
        Assert.True(SmokeTests.SpinUntil(() => host.HookLog.Contains("limits: live patch reverted")), string.Join("\n", host.HookLog));
    }

    [Fact]
    public void Moved_line_numbers_are_nothing_to_patch()
    {
        var r = BuildSource("lines-only");
        Assert.Equal(SourceBuildOutcome.NothingToPatch, r.Outcome);
        var limits = Assert.Single(r.Objects);
        Assert.Equal("limits.o", limits.Path);
        Assert.Contains(limits.Diff!.Notes, n => n.Contains("bug frames", StringComparison.Ordinal));
    }

    [Theory]
    [InlineData("init-code", ".init.text", "sandbox_setup_limits", "changed __init code")]
    [InlineData("init-data", ".init.data", "boot_scale", "changed __init data")]
    [InlineData("threshold", ".data.read_mostly", "sandbox_threshold", "changed initial data of an existing variable")]
    public void What_a_live_patch_cannot_carry_is_refused_with_its_reason(string patch, string section, string symbol, string reason)
    {
        var r = BuildSource(patch);
        Assert.Equal(SourceBuildOutcome.Refused, r.Outcome);
        var refusal = Assert.Single(Assert.Single(r.Objects).Diff!.Refusals);
        Assert.Equal((section, symbol), (refusal.Section, refusal.Symbol));
        Assert.StartsWith(reason, refusal.Reason, StringComparison.Ordinal);
        Assert.Contains(reason, r.Problem!.Message, StringComparison.Ordinal);
    }
}
