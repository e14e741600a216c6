using System.Globalization;
using XenLivepatch.Abi;
using XenLivepatch.Elf;
using XenLivepatch.Hypervisor;
using XenLivepatch.TestKit;

namespace XenLivepatch.Bench;

/// <summary>
/// UPLOAD throughput: every check, placement, symbol resolution and relocation, then UNLOAD (which only frees),
/// against an offline x86-64 hypervisor; payload bytes per second at the median run.
/// </summary>
internal static class UploadBench
{
    public static void Run(TextWriter o)
    {
        o.WriteLine("UPLOAD (checks + placement + symbols + relocation), offline x86-64 target; MB/s = payload bytes / median time");
        o.WriteLine($"{"payload",-26} {"bytes",9} {"funcs",6} {"p50 µs",10} {"p99 µs",10} {"MB/s p50",9}");
        foreach (int kib in new[] { 4, 16, 64, 256, 1024, 2040 })
            Measure(o, $"{kib} KiB", functions: Math.Max(1, kib / 4), size: kib * 1024);
        Measure(o, "1,000 functions", functions: 1000, size: 0);
    }

    private static void Measure(TextWriter o, string label, int functions, int size)
    {
        byte[] payload = SyntheticPayload.Build(functions, size);
        if (!OfflineHypervisor.TryFromXenSyms(SyntheticPayload.XenSyms(Math.Max(functions, 1000)), SyntheticPayload.BuildId, ElfMachine.X86_64, out var target, out string? why))
            throw new InvalidOperationException(why);
        var core = new LivepatchCore(LivepatchProfile.Xen417, X86_64Arch.Instance, target, target);
        var first = core.Upload("bench", payload);
        if (first != null)
            throw new InvalidOperationException("the benchmark payload does not upload: " + first);
        core.Action("bench", LivepatchAction.Unload);
        var samples = Harness.Sample(() =>
        {
            if (core.Upload("bench", payload) != null)
                throw new InvalidOperationException("upload failed");
            core.Action("bench", LivepatchAction.Unload);
        });
        double p50 = Harness.Percentile(samples, 50);
        double p99 = Harness.Percentile(samples, 99);
        o.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"{label,-26} {payload.Length,9} {functions,6} {p50 * 1e6,10:F1} {p99 * 1e6,10:F1} {payload.Length / p50 / 1e6,9:F0}"));
    }
}
