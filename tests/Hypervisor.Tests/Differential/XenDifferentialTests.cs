using System.Text;
using XenLivepatch.Elf;
using XenLivepatch.TestKit;

namespace XenLivepatch.Hypervisor.Tests;

/// <summary>
/// The differential against real Xen. A corpus of payloads mutated from one hello-world payload (built for
/// Debian's Xen 4.17.7) goes through Debian's own hypervisor and tool under QEMU, step by step, and
/// through our core with the same hypervisor's symbols and build-id; every step's outcome (exit code and
/// errno) must be the same. The corpus, the steps and Xen's outcomes are kept in
/// tests/Data/xen-4.17/differential, so the comparison runs on every test run; the QEMU test runs the
/// corpus through the real hypervisor again (XLP_RECORD=1 rewrites the kept files from that run).
/// </summary>
public class XenDifferentialTests
{
    private static string DataDir => Repo.Path("tests", "Data", "xen-4.17", "differential");

    private static List<string> RunOurs(string xensyms, string buildIdHex, List<Step> steps, Func<string, byte[]> file)
    {
        Assert.True(OfflineHypervisor.TryFromXenSyms(xensyms, Convert.FromHexString(buildIdHex), ElfMachine.X86_64, out var target, out string? why), why);
        var core = new LivepatchCore(LivepatchProfile.Xen417, X86_64Arch.Instance, target, target);
        return steps.Select(s => ToolEmulation.Run(core, s, file)).ToList();
    }

    private static void AssertSame(List<Step> steps, List<string> xen, List<string> ours)
    {
        Assert.Equal(steps.Count, xen.Count);
        var diffs = new StringBuilder();
        for (int i = 0; i < steps.Count; i++)
        {
            if (xen[i] != ours[i])
                diffs.AppendLine($"  step {i + 1} '{steps[i]}': Xen {xen[i]}, ours {ours[i]}");
        }
        Assert.True(diffs.Length == 0, "outcomes differ from Xen's (exit errno):\n" + diffs);
    }

    [Fact]
    public void Every_step_of_the_kept_corpus_ends_as_it_did_on_xen()
    {
        var steps = File.ReadAllLines(Path.Combine(DataDir, "steps.txt")).Where(l => l.Length > 0).Select(Step.Parse).ToList();
        var xen = File.ReadAllLines(Path.Combine(DataDir, "xen-results.txt")).Where(l => l.Length > 0).ToList();
        string xensyms = File.ReadAllText(Path.Combine(DataDir, "xensyms"));
        string buildId = File.ReadAllText(Path.Combine(DataDir, "build-id")).Trim();
        var ours = RunOurs(xensyms, buildId, steps, f => File.ReadAllBytes(Path.Combine(DataDir, "corpus", f)));
        AssertSame(steps, xen, ours);
        Assert.True(steps.Count >= 100, $"the corpus has {steps.Count} steps");
    }

    [Fact]
    public void The_corpus_goes_through_debians_xen_under_qemu_as_through_our_core()
    {
        XenQemu.EnsureFetched();
        string work = Repo.TempDirectory("differential");
        Tool.Run("bash", Repo.Path("tests", "qemu", "build-hello-payload.sh"), work).EnsureSuccess();
        byte[] hello = File.ReadAllBytes(Path.Combine(work, "xen_hello_world.livepatch"));
        var (files, steps) = UploadCorpus.Generate(hello);
        string input = Path.Combine(work, "in");
        Directory.CreateDirectory(Path.Combine(input, "corpus"));
        foreach (var (name, data) in files)
            File.WriteAllBytes(Path.Combine(input, "corpus", name), data);
        File.WriteAllLines(Path.Combine(input, "steps.txt"), steps.Select(s => s.ToString()));
        const string script = """
            i=0
            : > out/results
            while read -r op name file; do
              i=$((i + 1))
              if [ "$op" = upload ]; then
                xen-livepatch upload "$name" "corpus/$file" > /tmp/o 2> /tmp/e
              else
                xen-livepatch "$op" "$name" > /tmp/o 2> /tmp/e
              fi
              rc=$?
              err=$(sed -n 's/^Error \([0-9]*\):.*/\1/p' /tmp/e | tail -n 1)
              echo "$rc ${err:--}" >> out/results
            done < steps.txt
            """;
        var result = XenQemu.Run(input, script, TimeSpan.FromMinutes(8));
        var xen = result.File("results").Split('\n', StringSplitOptions.RemoveEmptyEntries).ToList();
        var ours = RunOurs(result.XenSyms, result.BuildId, steps, f => files.Single(x => x.File == f).Data);

        if (Environment.GetEnvironmentVariable("XLP_RECORD") == "1")
        {
            if (Directory.Exists(DataDir))
                Directory.Delete(DataDir, recursive: true);
            Directory.CreateDirectory(Path.Combine(DataDir, "corpus"));
            foreach (var (name, data) in files)
                File.WriteAllBytes(Path.Combine(DataDir, "corpus", name), data);
            File.WriteAllLines(Path.Combine(DataDir, "steps.txt"), steps.Select(s => s.ToString()));
            File.WriteAllLines(Path.Combine(DataDir, "xen-results.txt"), xen);
            File.WriteAllText(Path.Combine(DataDir, "xensyms"), result.XenSyms);
            File.WriteAllText(Path.Combine(DataDir, "build-id"), result.BuildId + "\n");
        }
        Assert.False(result.SerialLog.Contains("FATAL PAGE FAULT", StringComparison.Ordinal), "the corpus crashed Xen");
        AssertSame(steps, xen, ours);
    }
}
