using System.Text;
using XenLivepatch.Elf;
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

    private static List<string> RunOurs(LivepatchProfile profile, string xensyms, string buildIdHex, List<Step> steps, Func<string, byte[]> file)
    {
        Assert.True(OfflineHypervisor.TryFromXenSyms(xensyms, Convert.FromHexString(buildIdHex), ElfMachine.X86_64, out var target, out string? why), why);
        var core = new LivepatchCore(profile, X86_64Arch.Instance, target, target);
        return steps.Select(s => ToolEmulation.Run(core, s, file)).ToList();
    }

    private static void AssertSame(LivepatchProfile profile, List<Step> steps, List<string> xen, List<string> ours)
    {
        Assert.Equal(steps.Count, xen.Count);
        var diffs = new StringBuilder();
        for (int i = 0; i < steps.Count; i++)
        {
            if (xen[i] != ours[i])
                diffs.AppendLine($"  step {i + 1} '{steps[i]}': Xen {xen[i]}, ours {ours[i]}");
        }
        Assert.True(diffs.Length == 0, $"outcomes differ from {profile.Name}'s (exit errno):\n" + diffs);
    }

    [Theory, MemberData(nameof(Profiles))]
    public void Every_step_of_the_kept_corpus_ends_as_it_did_on_xen(string profileName)
    {
        var profile = LivepatchProfile.FromName(profileName)!;
        string dir = DataDir(profile);
        var steps = File.ReadAllLines(Path.Combine(dir, "steps.txt")).Where(l => l.Length > 0).Select(Step.Parse).ToList();
        var xen = File.ReadAllLines(Path.Combine(dir, "xen-results.txt")).Where(l => l.Length > 0).ToList();
        string xensyms = File.ReadAllText(Path.Combine(dir, "xensyms"));
        string buildId = File.ReadAllText(Path.Combine(dir, "build-id")).Trim();
        var ours = RunOurs(profile, xensyms, buildId, steps, f => File.ReadAllBytes(Path.Combine(dir, "corpus", f)));
        AssertSame(profile, steps, xen, ours);
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
        var steps = File.ReadAllLines(Path.Combine(dir, "steps.txt")).Where(l => l.Length > 0).Select(Step.Parse).ToList();
        var xen = File.ReadAllLines(Path.Combine(dir, "xen-results.txt")).Where(l => l.Length > 0).ToList();
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
        // One CPU: on a busy host Xen's 30 ms rendezvous times out with two.
        RunOnXen(LivepatchProfile.Xen422, work, "./xen-livepatch", ["--xen", xen.Image, "--smp", "1"]);
    }

    private static void RunOnXen(LivepatchProfile profile, string work, string tool, IReadOnlyList<string> options)
    {
        byte[] hello = File.ReadAllBytes(Path.Combine(work, "xen_hello_world.livepatch"));
        var (files, steps) = UploadCorpus.Generate(hello, profile);
        string input = Path.Combine(work, "in");
        Directory.CreateDirectory(Path.Combine(input, "corpus"));
        foreach (var (name, data) in files)
            File.WriteAllBytes(Path.Combine(input, "corpus", name), data);
        File.WriteAllLines(Path.Combine(input, "steps.txt"), steps.Select(s => s.ToString()));
        string script = $$"""
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
        var result = XenQemu.Run(input, script, TimeSpan.FromMinutes(10), options);
        var xen = result.File("results").Split('\n', StringSplitOptions.RemoveEmptyEntries).ToList();
        var ours = RunOurs(profile, result.XenSyms, result.BuildId, steps, f => files.Single(x => x.File == f).Data);

        string dataDir = DataDir(profile);
        if (Environment.GetEnvironmentVariable("XLP_RECORD") == "1")
        {
            if (Directory.Exists(dataDir))
                Directory.Delete(dataDir, recursive: true);
            Directory.CreateDirectory(Path.Combine(dataDir, "corpus"));
            foreach (var (name, data) in files)
                File.WriteAllBytes(Path.Combine(dataDir, "corpus", name), data);
            File.WriteAllLines(Path.Combine(dataDir, "steps.txt"), steps.Select(s => s.ToString()));
            File.WriteAllLines(Path.Combine(dataDir, "xen-results.txt"), xen);
            File.WriteAllText(Path.Combine(dataDir, "xensyms"), result.XenSyms);
            File.WriteAllText(Path.Combine(dataDir, "build-id"), result.BuildId + "\n");
        }
        Assert.False(result.SerialLog.Contains("FATAL PAGE FAULT", StringComparison.Ordinal), "the corpus crashed Xen");
        Assert.Equal(steps.Count, xen.Count);
        AssertSame(profile, steps, xen, ours);
    }
}
