using System.Globalization;
using System.Text;
using System.Text.Json;
using XenLivepatch.TestKit;

namespace XenLivepatch.Cli.Tests;

/// <summary>
/// Real Xen, real advisories. For an advisory of the 4.17.3..4.17.4 series, the hypervisor as it stands before its
/// first commit is built (tests/xen-source/trees.sh, kept in artifacts/xen-4.17), <c>build-source</c> makes a live
/// patch from its commits (the tree before the first to the tree after the last), and, when it makes one, that
/// hypervisor boots under QEMU where Debian's <c>xen-livepatch</c> uploads, applies, reverts and unloads it with
/// dom0 alive. When the tool makes none, its reason is recorded: a change it refuses (named), or nothing to patch.
/// Every payload it builds must apply: one Xen refuses, or one that crashes Xen, fails the test.
/// Each advisory's row goes to artifacts/xen-4.17/advisories/XSA-N.md (the README's table).
/// CI runs XSA-449 (a payload, applied and reverted) and XSA-450 (nothing to patch in this configuration);
/// <c>XLP_XEN_ADVISORIES=all</c> runs every advisory (about an hour on 2 cores), or a list: <c>XSA-452,XSA-456</c>.
/// </summary>
public class XenAdvisoryTests
{
    private static readonly string[] s_ci = ["XSA-449", "XSA-450"];

    public static TheoryData<string> Selected()
    {
        string? knob = Environment.GetEnvironmentVariable("XLP_XEN_ADVISORIES");
        var names = knob switch
        {
            null or "" => s_ci,
            "all" => XenTrees.Advisories().Select(a => a.Name).ToArray(),
            _ => knob.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries),
        };
        var data = new TheoryData<string>();
        foreach (string n in names)
            data.Add(n.ToUpperInvariant());
        return data;
    }

    // In dom0: Debian's tool, each step's output and exit code, then dom0 shows it is alive.
    private const string Script = """
        step() { name=$1; shift; "$@" > out/$name 2>&1; echo "rc=$?" >> out/$name; }
        step upload xen-livepatch upload PAYLOAD PAYLOAD.livepatch
        step apply xen-livepatch apply PAYLOAD
        step list xen-livepatch list
        step revert xen-livepatch revert PAYLOAD
        step unload xen-livepatch unload PAYLOAD
        step after xen-livepatch list
        cat /sys/hypervisor/version/extra > out/alive
        """;

    [Theory]
    [MemberData(nameof(Selected))]
    public void An_advisorys_live_patch_applies_and_reverts_on_real_xen_or_the_tool_says_why_not(string advisory)
    {
        var a = XenTrees.Advisories().SingleOrDefault(x => x.Name == advisory);
        Assert.True(a != null, $"{advisory} is not an advisory of the series ({string.Join(", ", XenTrees.Advisories())})");
        string tree = XenTrees.Ensure(a.Base);
        string name = a.Name.Replace("-", "", StringComparison.Ordinal).ToLowerInvariant();
        string files = Repo.TempDirectory("advisory-" + name);
        string output = Path.Combine(files, name + ".livepatch");
        var run = CliRun.Ours(["build-source", "--src", tree, "--base-build", tree, .. a.Patches.SelectMany(p => new[] { "--patch", p }),
            "-o", output, "--name", name, "--json", "-j" + Environment.ProcessorCount.ToString(CultureInfo.InvariantCulture)]);
        using var report = JsonDocument.Parse(run.Stdout);
        var root = report.RootElement;
        string commits = a.First == a.Last ? $"{a.First:000}" : $"{a.First:000}..{a.Last:000}";
        string objects = string.Join(", ", root.GetProperty("objects").EnumerateArray()
            .Where(o => o.TryGetProperty("outcome", out var oc) && oc.GetString() != "nothing_to_patch")
            .Select(o => o.GetProperty("path").GetString()));

        if (run.ExitCode != 0)
        {
            // No payload: it must be the tool's considered answer, never a failure of the build or of the tool.
            Assert.True(run.ExitCode is 65 or 83, $"build-source exited {run.ExitCode}:\n{run.Stderr}");
            Assert.False(File.Exists(output));
            string why = run.ExitCode == 83 ? "nothing to patch: no function's code changes in this configuration" : "refused: " + Refusals(root);
            Record(a, commits, tree, $"not built: {why}", "-", "-");
            return;
        }

        var functions = root.GetProperty("payload").GetProperty("functions").EnumerateArray().Select(f => f.GetProperty("name").GetString()!).ToList();
        Assert.NotEmpty(functions);
        var booted = XenQemu.Run(files, Script.Replace("PAYLOAD", name, StringComparison.Ordinal), TimeSpan.FromMinutes(10),
            ["--xen", Path.Combine(tree, "xen", "xen"), "--smp", "1"]);
        // The hypervisor that ran is the base build the payload was made for.
        Assert.True(Elf.ElfFile.Read(File.ReadAllBytes(Path.Combine(tree, "xen", "xen-syms"))).TryGetGnuBuildId(out var id, out _));
        Assert.Equal(Convert.ToHexStringLower(id.Span), booted.BuildId);
        string Step(string s) => booted.File(s);
        Assert.Equal($"Uploading {name}.livepatch... completed\nrc=0\n", Step("upload"));
        Assert.Equal($"Applying {name}... completed\nrc=0\n", Step("apply"));
        Assert.Contains($"{name}", Step("list"), StringComparison.Ordinal);
        Assert.Contains("APPLIED", Step("list"), StringComparison.Ordinal);
        Assert.Equal($"Reverting {name}... completed\nrc=0\n", Step("revert"));
        Assert.Equal($"Unloading {name}... completed\nrc=0\n", Step("unload"));
        Assert.Equal("Nothing to list\nrc=0\n", Step("after"));
        Assert.NotEmpty(Step("alive").Trim());
        Assert.Contains($"livepatch: {name} finished APPLY with rc=0", booted.SerialLog, StringComparison.Ordinal);
        Assert.Contains($"livepatch: {name} finished REVERT with rc=0", booted.SerialLog, StringComparison.Ordinal);
        Record(a, commits, tree, $"built: {functions.Count} function{(functions.Count == 1 ? "" : "s")} ({string.Join(", ", functions.Take(6))}{(functions.Count > 6 ? ", ..." : "")}) from {objects}",
            "applied", "reverted");
    }

    // The refusals by kind (the reason up to its first colon), each with the symbols (or sections) it names.
    private static string Refusals(JsonElement root)
    {
        var byKind = new SortedDictionary<string, List<string>>(StringComparer.Ordinal);
        foreach (var o in root.GetProperty("objects").EnumerateArray())
        {
            if (!o.TryGetProperty("refused", out var refused))
                continue;
            string file = Path.GetFileNameWithoutExtension(o.GetProperty("path").GetString()!);
            foreach (var r in refused.EnumerateArray())
            {
                string reason = r.GetProperty("reason").GetString()!;
                int colon = reason.IndexOf(':', StringComparison.Ordinal);
                string kind = colon > 0 ? reason[..colon] : reason;
                int paren = kind.IndexOf(" (", StringComparison.Ordinal);
                if (paren > 0)
                    kind = kind[..paren];
                string what = r.GetProperty("symbol").GetString() ?? $"{file} {r.GetProperty("section").GetString()}";
                if (!byKind.TryGetValue(kind, out var list))
                    byKind[kind] = list = [];
                list.Add(what);
            }
        }
        if (byKind.Count == 0)
            return root.GetProperty("problem").GetProperty("message").GetString()!;
        return string.Join("; ", byKind.Select(kv =>
            $"{kv.Key} ({string.Join(", ", kv.Value.Take(3))}{(kv.Value.Count > 3 ? $", {kv.Value.Count - 3} more" : "")})"));
    }

    private static void Record(XenAdvisory a, string commits, string tree, string built, string applied, string reverted)
    {
        string dir = Path.Combine(XenTrees.CacheDirectory, "advisories");
        Directory.CreateDirectory(dir);
        string row = $"| {a.Name} | {commits} | {Path.GetFileName(tree)} | {built} | {applied} | {reverted} |\n";
        File.WriteAllText(Path.Combine(dir, a.Name + ".md"), row, new UTF8Encoding(false));
    }
}
