using System.Diagnostics;
using System.Globalization;
using System.Text.RegularExpressions;

namespace XenLivepatch.TestKit;

/// <summary>A Xen Security Advisory of the 4.17.3..4.17.4 series: its commits (1-based positions in the series).</summary>
/// <param name="Name">"XSA-449".</param>
/// <param name="First">Its first commit's position.</param>
/// <param name="Last">Its last commit's position.</param>
/// <param name="Patches">The series' patches from its first to its last commit (with the commits between).</param>
public sealed record XenAdvisory(string Name, int First, int Last, IReadOnlyList<string> Patches)
{
    /// <summary>The tree the advisory's live patch is for: 4.17.3 and the commits before its first.</summary>
    public int Base => First - 1;

    public override string ToString() => Name;
}

/// <summary>
/// Xen 4.17 trees built for the advisory tests and benchmarks (tests/xen-source/trees.sh): tree-NNN is 4.17.3 with
/// the first NNN commits of the stable series, built with defconfig and fixed stamps, kept in
/// <see cref="CacheDirectory"/> ($XLP_XEN_CACHE, default artifacts/xen-4.17). The first build takes minutes
/// (2 on an idle 2-core machine); later trees are incremental.
/// </summary>
public static partial class XenTrees
{
    public static string CacheDirectory =>
        Environment.GetEnvironmentVariable("XLP_XEN_CACHE") is { Length: > 0 } c ? c : Repo.Path("artifacts", "xen-4.17");

    public static string Tree(int commits) => Path.Combine(CacheDirectory, $"tree-{commits:000}");

    /// <summary>Builds the trees that are missing (and waits for another process building them). Throws with the log's end on failure.</summary>
    public static string Ensure(int commits, TextWriter? progress = null)
    {
        string tree = Tree(commits);
        if (File.Exists(Path.Combine(tree, "READY")))
            return tree;
        var psi = new ProcessStartInfo("bash") { RedirectStandardError = true, RedirectStandardOutput = true, UseShellExecute = false };
        foreach (string a in (string[])[Repo.Path("tests", "xen-source", "trees.sh"), CacheDirectory, commits.ToString(CultureInfo.InvariantCulture)])
            psi.ArgumentList.Add(a);
        if (XenSource.Root is { } src)
            psi.Environment["XLP_XEN_SRC"] = src;
        using var p = Process.Start(psi)!;
        p.ErrorDataReceived += (_, e) => { if (e.Data != null) progress?.WriteLine(e.Data); };
        p.BeginErrorReadLine();
        string stdout = p.StandardOutput.ReadToEnd();
        if (!p.WaitForExit(TimeSpan.FromHours(2)))
        {
            p.Kill(entireProcessTree: true);
            throw new TimeoutException($"tests/xen-source/trees.sh {commits} took more than two hours");
        }
        if (p.ExitCode != 0)
            throw new InvalidOperationException($"tests/xen-source/trees.sh {commits} failed ({p.ExitCode}): {stdout}");
        return tree;
    }

    [GeneratedRegex(@"^(\d+)-xsa-(\d+)-")]
    private static partial Regex AdvisoryPatch();

    /// <summary>The advisories of the series, in the order of their first commits.</summary>
    public static IReadOnlyList<XenAdvisory> Advisories()
    {
        var series = XenSource.Series();
        var byName = new Dictionary<string, (int First, int Last)>(StringComparer.Ordinal);
        foreach (string file in series)
        {
            var m = AdvisoryPatch().Match(Path.GetFileName(file));
            if (!m.Success)
                continue;
            int at = int.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture);
            string name = "XSA-" + m.Groups[2].Value;
            byName[name] = byName.TryGetValue(name, out var r) ? (Math.Min(r.First, at), Math.Max(r.Last, at)) : (at, at);
        }
        return byName.OrderBy(kv => kv.Value.First)
            .Select(kv => new XenAdvisory(kv.Key, kv.Value.First, kv.Value.Last, series[(kv.Value.First - 1)..kv.Value.Last]))
            .ToList();
    }
}
