using System.Text;
using System.Text.RegularExpressions;
using XenLivepatch.TestKit;

namespace XenLivepatch.Cli.Tests;

/// <summary>
/// The differential corpus recorded on Debian's Xen 4.17 under QEMU (tests/Data/xen-4.17/differential: the steps,
/// Xen's tool's outcome of each, the hypervisor's symbols and build-id) run through our real CLI and our core:
/// every step ends with the same exit code and the same "Error N:" errno as it did on Xen.
/// </summary>
public partial class RecordedXenTests
{
    [GeneratedRegex(@"^Error (\d+):", RegexOptions.Multiline)]
    private static partial Regex ErrorLine();

    [Fact]
    public void Every_recorded_step_ends_with_xens_exit_code_and_errno_under_our_cli()
    {
        string dir = Repo.Path("tests", "Data", "xen-4.17", "differential");
        var steps = File.ReadAllLines(Path.Combine(dir, "steps.txt")).Where(l => l.Length > 0).ToList();
        var xen = File.ReadAllLines(Path.Combine(dir, "xen-results.txt")).Where(l => l.Length > 0).ToList();
        var hypervisor = OfflineXen.FromXenSyms(File.ReadAllText(Path.Combine(dir, "xensyms")), File.ReadAllText(Path.Combine(dir, "build-id")));
        Assert.Equal(steps.Count, xen.Count);
        var diffs = new StringBuilder();
        for (int i = 0; i < steps.Count; i++)
        {
            string[] p = steps[i].Split(' ');
            string[] args = p[0] == "upload" ? ["upload", p[1], Path.Combine(dir, "corpus", p[2])] : [p[0], p[1]];
            var r = CliRun.With(hypervisor, args);
            var errors = ErrorLine().Matches(r.Stderr);
            string ours = $"{r.ExitCode} {(errors.Count > 0 ? errors[^1].Groups[1].Value : "-")}";
            if (ours != xen[i])
                diffs.AppendLine($"  step {i + 1} '{steps[i]}': Xen {xen[i]}, ours {ours}: {r.Stdout}{r.Stderr}");
        }
        Assert.True(diffs.Length == 0, "outcomes differ from Xen's (exit errno):\n" + diffs);
        Assert.True(steps.Count >= 100, $"the corpus has {steps.Count} steps");
    }
}
