using System.Globalization;
using System.Text.RegularExpressions;
using XenLivepatch.TestKit;

namespace XenLivepatch.Fuzz.Tests;

/// <summary>
/// A short coverage-guided run of each target under afl++ (fuzz/run.sh; the long campaign is the same script with
/// more seconds, README "Fuzzing"): afl++ starts the harness, executes mutated inputs and finds no crash and no hang.
/// </summary>
public partial class CoverageGuidedRunTests
{
    // XLP_FUZZ_SECONDS lengthens each run (the default keeps the suite within its time).
    private static string Seconds => Environment.GetEnvironmentVariable("XLP_FUZZ_SECONDS") is { Length: > 0 } s ? s : "10";

    public static TheoryData<string> TargetNames() => [.. Targets.All.Select(t => t.Name)];

    [GeneratedRegex(@"^fuzz (\S+): (\d+) executions in \S+ s \(\S+ exec/s\), (\d+) edges .* crashes (\d+), hangs (\d+)$", RegexOptions.Multiline)]
    private static partial Regex Summary();

    [Theory]
    [MemberData(nameof(TargetNames))]
    public void A_short_afl_run_finds_no_crash_and_no_hang(string name)
    {
        string findings = Path.Combine(Repo.TempDirectory("fuzz-" + name), "findings");
        var r = Tool.Run("env", ["XLP_FUZZ_NO_BUILD=1", "XLP_FUZZ_OUT=" + findings, "bash", Repo.Path("fuzz", "run.sh"), name, Seconds]);
        Assert.True(r.ExitCode == 0, $"exit {r.ExitCode}\n{r.Stdout}\n{r.Stderr}");
        var m = Summary().Match(r.Stdout);
        Assert.True(m.Success, r.Stdout + r.Stderr);
        Assert.Equal(name, m.Groups[1].Value);
        Assert.True(long.Parse(m.Groups[2].Value, CultureInfo.InvariantCulture) > 0, r.Stdout);
        // Instrumented code was reached: afl++ saw edges beyond the harness's own.
        Assert.True(int.Parse(m.Groups[3].Value, CultureInfo.InvariantCulture) > 50, r.Stdout);
        Assert.Equal(("0", "0"), (m.Groups[4].Value, m.Groups[5].Value));
    }

    [Fact]
    public void A_broken_contract_under_afl_is_a_recorded_crash_and_a_failed_run()
    {
        // The canary target breaks its contract on a NUL byte, which afl++'s first mutations write: without this,
        // a harness whose exceptions never reached afl++ would report 0 crashes for every target.
        string findings = Path.Combine(Repo.TempDirectory("fuzz-canary"), "findings");
        var r = Tool.Run("env", ["XLP_FUZZ_NO_BUILD=1", "XLP_FUZZ_OUT=" + findings, "bash", Repo.Path("fuzz", "run.sh"), "canary", "5"]);
        Assert.True(r.ExitCode == 1, $"exit {r.ExitCode}\n{r.Stdout}\n{r.Stderr}");
        var m = Summary().Match(r.Stdout);
        Assert.True(m.Success, r.Stdout + r.Stderr);
        Assert.NotEqual("0", m.Groups[4].Value);
        string crash = Directory.EnumerateFiles(Path.Combine(findings, "default", "crashes"), "id*").First();
        Assert.Contains((byte)0, File.ReadAllBytes(crash));
    }
}
