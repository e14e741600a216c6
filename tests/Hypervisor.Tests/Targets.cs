using XenLivepatch.TestKit;

namespace XenLivepatch.Hypervisor.Tests;

/// <summary>Cores over fresh offline targets built from the test hypervisor images.</summary>
internal static class Targets
{
    public static OfflineHypervisor Offline(TestImage image)
    {
        Assert.True(OfflineHypervisor.TryFromImage(image.File, out var target, out var error), error);
        return target;
    }

    public static (LivepatchCore Core, OfflineHypervisor Target) Core(string arch = "x86_64", LivepatchProfile? profile = null)
    {
        var image = LivepatchFixtures.Image(arch);
        var target = Offline(image);
        var core = new LivepatchCore(profile ?? LivepatchProfile.Xen417, LivepatchArch.Get(target.Machine), target, target);
        return (core, target);
    }

    /// <summary>Everything a rejected upload must leave unchanged.</summary>
    public static object Snapshot(LivepatchCore core, OfflineHypervisor target, uint versionBump = 0) =>
        (core.Version + versionBump, string.Join(",", core.Payloads.Select(p => p.Name + ":" + p.State)), target.Allocations.Count);
}
