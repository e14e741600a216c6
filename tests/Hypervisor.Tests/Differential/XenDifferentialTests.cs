using System.Text;
using XenLivepatch.TestKit;

namespace XenLivepatch.Hypervisor.Tests;

/// <summary>
/// The differential against real Xen. A corpus of payloads mutated from one hello-world payload built for the
/// hypervisor goes through the real hypervisor under QEMU, step by step, and through our core with the same
/// hypervisor's symbols and build-id; every step's outcome (exit code and errno) must be the same. Two real
/// hypervisors: Debian's Xen 4.17.7 driven by Debian's own tool, and upstream Xen 4.22.0 built here driven by our
/// NativeAOT CLI (Debian's 4.17 tool cannot talk to it). Each corpus, its steps and Xen's outcomes are kept in
/// tests/Data/xen-VERSION/differential, so the comparison with each profile runs on every test run; the QEMU tests
/// run the corpus through the real hypervisor again (XLP_RECORD=1 rewrites the kept files from that run).
/// </summary>
public class XenDifferentialTests
{
    public static TheoryData<string> Profiles() => [LivepatchProfile.Xen417.Name, LivepatchProfile.Xen422.Name];

    private static string DataDir(LivepatchProfile profile) => Repo.Path("tests", "Data", profile.Name, "differential");

    /// <summary>The steps through our core in <paramref name="profile"/> for a hypervisor of <paramref name="arch"/> with these symbols and build-id.</summary>
    internal static List<string> RunOurs(LivepatchProfile profile, LivepatchArch arch, ulong? payloadArea, string xensyms, string buildIdHex, List<Step> steps, Func<string, byte[]> file)
    {
        Assert.True(OfflineHypervisor.TryFromXenSyms(xensyms, Convert.FromHexString(buildIdHex), arch.Machine, out var target, out string? why, payloadArea), why);
        var core = new LivepatchCore(profile, arch, target, target);
        return steps.Select(s => ToolEmulation.Run(core, s, file)).ToList();
    }

    /// <summary>
    /// The dom0 script: every step of steps.txt with <paramref name="tool"/> (Xen's, or our CLI where Xen's cannot talk
    /// to the hypervisor), its exit code and the errno of its "Error N:" line ("-" when it prints none) to
    /// out/results, one line a step.
    /// </summary>
    internal static string Script(string tool) => $$"""
        i=0
        : > out/results
        while read -r op name file; do
          i=$((i + 1))
          if [ "$op" = upload ]; then
            {{tool}} upload "$name" "corpus/$file" > /tmp/o 2> /tmp/e
          else
            {{tool}} "$op" "$name" > /tmp/o 2> /tmp/e
          fi
          rc=$?
          err=$(sed -n 's/^Error \([0-9]*\):.*/\1/p' /tmp/e | tail -n 1)
          echo "$rc ${err:--}" >> out/results
        done < steps.txt
        """;

    /// <summary>The dom0 script with Xen's own tool.</summary>
    internal static string DomScript => Script("xen-livepatch");

    /// <summary>Writes the corpus and its steps under <paramref name="directory"/> (corpus/, steps.txt).</summary>
    internal static void WriteCorpus(string directory, List<(string File, byte[] Data)> files, List<Step> steps)
    {
        Directory.CreateDirectory(Path.Combine(directory, "corpus"));
        foreach (var (name, data) in files)
            File.WriteAllBytes(Path.Combine(directory, "corpus", name), data);
        File.WriteAllLines(Path.Combine(directory, "steps.txt"), steps.Select(s => s.ToString()));
    }

    /// <summary>The kept corpus in <paramref name="directory"/>: its steps, Xen's outcomes, and a reader of its files.</summary>
    internal static (List<Step> Steps, List<string> Xen, Func<string, byte[]> File) ReadKept(string directory) =>
        (File.ReadAllLines(Path.Combine(directory, "steps.txt")).Where(l => l.Length > 0).Select(Step.Parse).ToList(),
         File.ReadAllLines(Path.Combine(directory, "xen-results.txt")).Where(l => l.Length > 0).ToList(),
         f => File.ReadAllBytes(Path.Combine(directory, "corpus", f)));

    internal static void AssertSame(List<Step> steps, List<string> xen, List<string> ours, string hypervisor = "Xen's")
    {
        Assert.Equal(steps.Count, xen.Count);
        var diffs = new StringBuilder();
        for (int i = 0; i < steps.Count; i++)
        {
            if (xen[i] != ours[i])
                diffs.AppendLine($"  step {i + 1} '{steps[i]}': Xen {xen[i]}, ours {ours[i]}");
        }
        Assert.True(diffs.Length == 0, $"outcomes differ from {hypervisor} (exit errno):\n" + diffs);
    }

    [Theory, MemberData(nameof(Profiles))]
    public void Every_step_of_the_kept_corpus_ends_as_it_did_on_xen(string profileName)
    {
        var profile = LivepatchProfile.FromName(profileName)!;
        string dir = DataDir(profile);
        var (steps, xen, file) = ReadKept(dir);
        string xensyms = File.ReadAllText(Path.Combine(dir, "xensyms"));
        string buildId = File.ReadAllText(Path.Combine(dir, "build-id")).Trim();
        var ours = RunOurs(profile, X86_64Arch.Instance, null, xensyms, buildId, steps, file);
        AssertSame(steps, xen, ours, $"real {profile.Name}'s");
        Assert.True(steps.Count >= 100, $"the corpus has {steps.Count} steps");
    }

    [Fact]
    public void The_kept_corpora_show_where_the_versions_differ()
    {
        // The same mutation, two answers: each profile's own, recorded from its real hypervisor.
        var (x417, x422) = (Results(LivepatchProfile.Xen417), Results(LivepatchProfile.Xen422));
        Assert.Equal(("1 22", "1 61"), (x417["upload buildid_type4"], x422["upload buildid_type4"]));
        Assert.Equal(("1 22", "1 61"), (x417["upload depends_bad_owner"], x422["upload depends_bad_owner"]));
        Assert.Equal(("1 2", "1 22"), (x417["upload order_xen_depends_then_symbol"], x422["upload order_xen_depends_then_symbol"]));
        Assert.Equal(("1 95", "1 22"), (x417["upload order_no_xen_depends_exec_write"], x422["upload order_no_xen_depends_exec_write"]));
        Assert.Equal(("0 -", "1 22"), (x417["upload alt_call_sites_5"], x422["upload alt_call_sites_5"]));
        Assert.Equal("0 -", x422["upload xen_depends_not_alloc"]);
    }

    // Each upload step's outcome by its step text (the first upload of each name).
    private static Dictionary<string, string> Results(LivepatchProfile profile)
    {
        string dir = DataDir(profile);
        var (steps, xen, _) = ReadKept(dir);
        var results = new Dictionary<string, string>();
        for (int i = 0; i < steps.Count; i++)
            results.TryAdd($"{steps[i].Op} {steps[i].Name}", xen[i]);
        return results;
    }

    [Fact]
    public void The_corpus_goes_through_debians_xen_under_qemu_as_through_our_core()
    {
        XenQemu.EnsureFetched();
        string work = Repo.TempDirectory("differential");
        Tool.Run("bash", Repo.Path("tests", "qemu", "build-hello-payload.sh"), work).EnsureSuccess();
        RunOnXen(LivepatchProfile.Xen417, work, "xen-livepatch", []);
    }

    [UpstreamXenFact(UpstreamXen.Xen422)]
    public void The_corpus_goes_through_xen_422_under_qemu_with_our_cli_as_through_our_core()
    {
        string ours = Repo.Path("artifacts", "publish", "xen-livepatch", "xen-livepatch");
        Assert.True(File.Exists(ours), $"our NativeAOT CLI is missing at {ours}: run ./build.sh");
        var xen = UpstreamXen.Get(UpstreamXen.Xen422);
        XenQemu.EnsureFetched();
        string work = Repo.TempDirectory("differential-422");
        XenQemu.BuildHello(work, xen.Syms);
        Directory.CreateDirectory(Path.Combine(work, "in"));
        File.Copy(ours, Path.Combine(work, "in", "xen-livepatch"));
        RunOnXen(LivepatchProfile.Xen422, work, "./xen-livepatch", ["--xen", xen.Image]);
    }

    private static void RunOnXen(LivepatchProfile profile, string work, string tool, IReadOnlyList<string> options)
    {
        byte[] hello = File.ReadAllBytes(Path.Combine(work, "xen_hello_world.livepatch"));
        var (files, steps) = UploadCorpus.Generate(hello, profile);
        string input = Path.Combine(work, "in");
        WriteCorpus(input, files, steps);
        // One CPU: Xen's 30 ms rendezvous cannot time out (EBUSY) while the emulating host is busy.
        var result = XenQemu.Run(input, Script(tool), TimeSpan.FromMinutes(8), [.. options, "--smp", "1"]);
        var xen = result.File("results").Split('\n', StringSplitOptions.RemoveEmptyEntries).ToList();
        var ours = RunOurs(profile, X86_64Arch.Instance, null, result.XenSyms, result.BuildId, steps, f => files.Single(x => x.File == f).Data);

        string dataDir = DataDir(profile);
        if (Environment.GetEnvironmentVariable("XLP_RECORD") == "1")
        {
            if (Directory.Exists(dataDir))
                Directory.Delete(dataDir, recursive: true);
            WriteCorpus(dataDir, files, steps);
            File.WriteAllLines(Path.Combine(dataDir, "xen-results.txt"), xen);
            File.WriteAllText(Path.Combine(dataDir, "xensyms"), result.XenSyms);
            File.WriteAllText(Path.Combine(dataDir, "build-id"), result.BuildId + "\n");
        }
        Assert.False(result.SerialLog.Contains("FATAL PAGE FAULT", StringComparison.Ordinal), "the corpus crashed Xen");
        Assert.Equal(steps.Count, xen.Count);
        AssertSame(steps, xen, ours, $"real {profile.Name}'s");
    }
}
