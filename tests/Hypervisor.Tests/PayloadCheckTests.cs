using System.Globalization;
using XenLivepatch.Abi;
using XenLivepatch.TestKit;

namespace XenLivepatch.Hypervisor.Tests;

/// <summary>The apply-time checks of an offline check: expectations against the image's code bytes.</summary>
public class PayloadCheckTests
{
    private static string Expecting(TestImage image, byte[] bytes)
    {
        string list = string.Join(",", bytes.Select(b => "0x" + b.ToString("x2", CultureInfo.InvariantCulture)));
        return LivepatchFixtures.BuildPayload(image, "xen_expectations", ["expectations.c"], "--cflags", $"-DEXPECT_LEN={bytes.Length} -DEXPECT_BYTES={list}");
    }

    [Fact]
    public void Expectations_that_match_the_old_code_pass()
    {
        var image = LivepatchFixtures.Image();
        byte[] real = image.Bytes(image.Address("xen_extra_version"), 8);
        var report = PayloadCheck.Run("xen_expectations", File.ReadAllBytes(Expecting(image, real)), Targets.Offline(image), LivepatchProfile.Xen417);
        Assert.True(report.Accepted, report.Error?.ToString());
        Assert.True(Assert.Single(report.Loaded!.Functions).Entry.Expect.Enabled);
    }

    [Fact]
    public void Expectations_that_do_not_match_fail_at_apply_with_EINVAL()
    {
        var image = LivepatchFixtures.Image();
        var report = PayloadCheck.Run("xen_expectations_fail", File.ReadAllBytes(Expecting(image, [0xde, 0xad, 0xc0, 0xde, 0xba, 0xbe])), Targets.Offline(image), LivepatchProfile.Xen417);
        Assert.Equal(("apply", XenErrno.EINVAL), (report.Stage, report.Error?.Errno));
        Assert.Contains("expectation failed: expected:deadc0debabe", report.Error!.Message, StringComparison.Ordinal);
        Assert.Contains(report.Log, l => l.Contains("Verifying enabled expectations", StringComparison.Ordinal));
    }

    [Fact]
    public void Without_code_bytes_expectations_are_noted_as_unchecked()
    {
        var image = LivepatchFixtures.Image();
        string listing = string.Join("\n", new[] { "xen_extra_version", "xen_minor_version", "hv_function" }.Select(n => $"{image.Address(n):x} T {n}"));
        Assert.True(OfflineHypervisor.TryFromXenSyms(listing, image.BuildId, Elf.ElfMachine.X86_64, out var target, out _));
        var report = PayloadCheck.Run("xen_expectations_fail", File.ReadAllBytes(Expecting(image, [0xde, 0xad])), target, LivepatchProfile.Xen417);
        Assert.True(report.Accepted);
        Assert.Contains(report.Notes, n => n.StartsWith("expectations not checked", StringComparison.Ordinal));
    }

    [Fact]
    public void Applied_payloads_patch_the_offline_image_so_later_expectations_see_the_jump()
    {
        var image = LivepatchFixtures.Image();
        byte[] real = image.Bytes(image.Address("xen_extra_version"), 8);
        string hello = LivepatchFixtures.BuildPayload(image, "xen_hello_world", ["hello_world.c"]);
        string expecting = Expecting(image, real);
        // After hello_world is applied underneath, xen_extra_version starts with its jump: the expectation fails.
        var report = PayloadCheck.Run("xen_expectations", File.ReadAllBytes(expecting), Targets.Offline(image), LivepatchProfile.Xen417,
            [new StackedPayload("xen_hello_world", File.ReadAllBytes(hello))], noDeps: true);
        Assert.Equal(("apply", XenErrno.EINVAL), (report.Stage, report.Error?.Errno));
        Assert.Contains("actual:e9", report.Error!.Message, StringComparison.Ordinal);
    }
}
