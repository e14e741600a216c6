using XenLivepatch.TestKit;

namespace XenLivepatch.Cli.Tests;

/// <summary>The payloads the CLI tests load, built once per test process for the x86-64 test image.</summary>
internal static class Payloads
{
    private static readonly Lazy<(string Hello, string Bye, string Data, string Nop)> s_built = new(() =>
    {
        var image = LivepatchFixtures.Image();
        string hello = LivepatchFixtures.BuildPayload(image, "xen_hello_world", ["hello_world.c"], "--modinfo", "LIVEPATCH_RULEZ");
        string bye = LivepatchFixtures.BuildPayload(image, "xen_bye_world", ["bye_world.c"], "--depends-on", hello);
        // A payload with writable data: Xen will not re-apply it after a revert.
        string withData = LivepatchFixtures.BuildPayload(image, "xen_counter", [LivepatchFixtures.SourceFile(CounterSource)]);
        string nop = LivepatchFixtures.BuildPayload(image, "xen_nop", ["nop.c"]);
        return (hello, bye, withData, nop);
    });

    /// <summary>The source of xen_counter (tests/Data/payloads/livepatch.h, Xen's recipe).</summary>
    internal const string CounterSource = """
        #include "livepatch.h"
        static const char counter_patch_this_fnc[] = "xen_extra_version";
        __attribute__((used, section(".modinfo"))) static const char counter_modinfo[] = "A=1\0B=2";
        int counter_calls = 1;
        const char *xen_extra_version(void)
        {
            counter_calls++;
            return "Counted";
        }
        LIVEPATCH_FUNC(livepatch_counter) = {
            .version = LIVEPATCH_PAYLOAD_VERSION,
            .name = counter_patch_this_fnc,
            .new_addr = xen_extra_version,
            .new_size = SZ_xen_extra_version,
            .old_size = 8,
        };
        """;

    /// <summary>xen_hello_world.livepatch: patches xen_extra_version, metadata LIVEPATCH_RULEZ.</summary>
    public static string Hello => s_built.Value.Hello;

    /// <summary>xen_bye_world.livepatch: depends on xen_hello_world's build-id.</summary>
    public static string Bye => s_built.Value.Bye;

    /// <summary>xen_counter.livepatch: has .data (cannot be re-applied after a revert); metadata "A=1\0B=2\0".</summary>
    public static string WithData => s_built.Value.Data;

    /// <summary>xen_nop.livepatch: NOPs xen_minor_version.</summary>
    public static string Nop => s_built.Value.Nop;
}
