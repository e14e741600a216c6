using System.Diagnostics;
using System.Globalization;
using XenLivepatch.Elf;
using XenLivepatch.TestKit;
using XenLivepatch.Tooling;
using XenLivepatch.Tooling.Diffing;
using XenLivepatch.Tooling.Sources;

namespace XenLivepatch.Bench;

/// <summary>
/// Live patches from source on Xen 4.17 (XSA-449: one function of drivers/passthrough/pci.c): <c>diff</c> of the
/// object (goal 100 ms) and the largest objects against themselves; <c>build-source</c> with the base build given
/// (the base build itself excluded; goal 60 s on 2 cores). The trees come from tests/xen-source/trees.sh (built once,
/// minutes, kept in artifacts/xen-4.17).
/// </summary>
internal static class SourceBench
{
    public static void Diff(TextWriter o)
    {
        var (tree, work, patch) = Prepare(o);
        string[] objects = ["xen/drivers/passthrough/pci.o"];
        o.WriteLine("diff of one Xen 4.17 object (in-process: read both, analyse, compare, write; p50 / p99 ms)");
        o.WriteLine($"{"object",-44} {"bytes",9} {"p50 ms",8} {"p99 ms",8}  result");
        foreach (string rel in objects)
            Measure(o, rel, Path.Combine(tree, rel), Path.Combine(work, "patched", rel), [patch]);
        // The largest objects of the tree, each against itself: every function compared.
        var largest = Directory.EnumerateFiles(Path.Combine(tree, "xen"), "*.o", new EnumerationOptions { RecurseSubdirectories = true, AttributesToSkip = FileAttributes.ReparsePoint })
            .Where(f => !Path.GetFileName(f).StartsWith("built_in", StringComparison.Ordinal) && Path.GetFileName(f) != "prelink.o" && !Path.GetFileName(f).StartsWith('.'))
            .OrderByDescending(f => new FileInfo(f).Length).Take(3);
        foreach (string f in largest)
            Measure(o, Path.GetRelativePath(tree, f) + " (itself)", f, f, []);
    }

    private static void Measure(TextWriter o, string label, string a, string b, IReadOnlyList<SourcePatch> patches)
    {
        DiffResult? last = null;
        var samples = Harness.Sample(() =>
        {
            var x = new DiffInput("a.o", ElfFile.Read(File.ReadAllBytes(a)));
            var y = new DiffInput("b.o", ElfFile.Read(File.ReadAllBytes(b)));
            last = ObjectDiff.Run(x, y, patches);
        }, minRuns: 20, minSeconds: 2);
        string result = last!.Outcome == DiffOutcome.Changed ? $"{last.Changed.Count} changed, {last.Output!.Length} bytes written" : last.Outcome.ToString();
        o.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"{label,-44} {new FileInfo(b).Length,9} {Harness.Percentile(samples, 50) * 1e3,8:F1} {Harness.Percentile(samples, 99) * 1e3,8:F1}  {result}"));
    }

    public static void BuildSource(TextWriter o, int runs)
    {
        var (tree, _, _) = Prepare(o);
        o.WriteLine($"build-source of XSA-449 (one function) on tree-001, --base-build given, -j{Environment.ProcessorCount}; seconds per step");
        var totals = new List<double>();
        for (int i = 0; i < runs; i++)
        {
            string output = Path.Combine(Path.GetTempPath(), $"xlp-bench-{Environment.ProcessId}.livepatch");
            var clock = Stopwatch.StartNew();
            var r = SourceBuild.Run(new SourceBuildRequest
            {
                Tree = tree,
                BaseBuild = tree,
                Patches = [Patch449()],
                Output = output,
                Jobs = Environment.ProcessorCount,
            }, TextWriter.Null);
            double total = clock.Elapsed.TotalSeconds;
            File.Delete(output);
            if (r.Outcome != SourceBuildOutcome.Built)
                throw new InvalidOperationException($"build-source failed: {r.Problem}");
            totals.Add(total);
            o.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"  run {i + 1}: {total,6:F1} s total   {string.Join("   ", r.Timings.Select(t => $"{t.Step} {t.Seconds:F1}"))}   (copies and output the rest)"));
        }
        totals.Sort();
        o.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  median {totals[totals.Count / 2]:F1} s (goal 60 s on 2 cores)"));
    }

    private static string Patch449() => XenTrees.Advisories().First(a => a.Name == "XSA-449").Patches.Single();

    // tree-001 (the base of XSA-449), and once the patched tree (kept for the diff's pair).
    private static (string Tree, string Work, SourcePatch Patch) Prepare(TextWriter o)
    {
        string tree = XenTrees.Ensure(1, o);
        string work = Path.Combine(XenTrees.CacheDirectory, "bench-xsa-449");
        if (!File.Exists(Path.Combine(work, "patched", "xen", "drivers", "passthrough", "pci.o")))
        {
            if (Directory.Exists(work))
                Directory.Delete(work, recursive: true);
            o.WriteLine("building the patched tree once (kept in " + work + ") ...");
            var r = SourceBuild.Run(new SourceBuildRequest
            {
                Tree = tree,
                BaseBuild = tree,
                Patches = [Patch449()],
                Output = Path.Combine(Path.GetTempPath(), $"xlp-bench-{Environment.ProcessId}.livepatch"),
                Keep = work,
                Jobs = Environment.ProcessorCount,
            }, TextWriter.Null);
            if (r.Outcome != SourceBuildOutcome.Built)
                throw new InvalidOperationException($"build-source failed: {r.Problem}");
        }
        return SourcePatch.TryRead(Patch449(), out var p, out string? error) ? (tree, work, p) : throw new InvalidOperationException(error);
    }
}
