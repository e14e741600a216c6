using System.Text;
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

    private static List<string> RunOurs(string xensyms, string buildIdHex, List<Step> steps, Func<string, byte[]> file) =>
        RunOurs(X86_64Arch.Instance, null, xensyms, buildIdHex, steps, file);

    /// <summary>The steps through our core for a hypervisor of <paramref name="arch"/> with these symbols and build-id.</summary>
    internal static List<string> RunOurs(LivepatchArch arch, ulong? payloadArea, string xensyms, string buildIdHex, List<Step> steps, Func<string, byte[]> file)
    {
        Assert.True(OfflineHypervisor.TryFromXenSyms(xensyms, Convert.FromHexString(buildIdHex), arch.Machine, out var target, out string? why, payloadArea), why);
        var core = new LivepatchCore(LivepatchProfile.Xen417, arch, target, target);
        return steps.Select(s => ToolEmulation.Run(core, s, file)).ToList();
    }

    /// <summary>
    /// The dom0 script: every step of steps.txt with Xen's tool, its exit code and the errno of its "Error N:"
    /// line ("-" when it prints none) to out/results, one line a step.
    /// </summary>
    internal const string DomScript = """
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

    internal static void AssertSame(List<Step> steps, List<string> xen, List<string> ours)
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
        var (steps, xen, file) = ReadKept(DataDir);
        string xensyms = File.ReadAllText(Path.Combine(DataDir, "xensyms"));
        string buildId = File.ReadAllText(Path.Combine(DataDir, "build-id")).Trim();
        var ours = RunOurs(xensyms, buildId, steps, file);
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
        WriteCorpus(input, files, steps);
        // One CPU: Xen's 30 ms rendezvous cannot time out (EBUSY) while the emulating host is busy.
        var result = XenQemu.Run(input, DomScript, TimeSpan.FromMinutes(8), ["--smp", "1"]);
        var xen = result.File("results").Split('\n', StringSplitOptions.RemoveEmptyEntries).ToList();
        var ours = RunOurs(result.XenSyms, result.BuildId, steps, f => files.Single(x => x.File == f).Data);

        if (Environment.GetEnvironmentVariable("XLP_RECORD") == "1")
        {
            if (Directory.Exists(DataDir))
                Directory.Delete(DataDir, recursive: true);
            WriteCorpus(DataDir, files, steps);
            File.WriteAllLines(Path.Combine(DataDir, "xen-results.txt"), xen);
            File.WriteAllText(Path.Combine(DataDir, "xensyms"), result.XenSyms);
            File.WriteAllText(Path.Combine(DataDir, "build-id"), result.BuildId + "\n");
        }
        Assert.False(result.SerialLog.Contains("FATAL PAGE FAULT", StringComparison.Ordinal), "the corpus crashed Xen");
        AssertSame(steps, xen, ours);
    }
}
