using System.Text;
using XenLivepatch.Hypervisor;
using XenLivepatch.Sandbox;
using XenLivepatch.TestKit;

namespace XenLivepatch.Cli.Tests;

/// <summary>
/// Xen's test sequence (reference §6.3), errors and <c>--force</c> included, step by step with our NativeAOT CLI on
/// real upstream Xen 4.22.0 under QEMU (Debian's 4.17 tool cannot talk to it), and against the sandbox in the
/// xen-4.22 profile: every step's stdout, stderr and exit code, and the hypervisor's extraversion, are the same.
/// Real 4.22's answers are kept in tests/Data/xen-4.22/scenario.txt, so the sandbox is compared with them on every
/// run; the QEMU test runs the scenario on real Xen again (XLP_RECORD=1 rewrites the kept file from that run).
/// </summary>
[Collection("sandbox")]
public sealed class Xen422ScenarioTests
{
    // Xen's test sequence as the 4.17 parity test runs it, with --force uploads (one for another hypervisor) and a
    // GET of an unloaded payload added.
    private static readonly (string Step, string Args)[] s_forced =
    [
        ("force-upload", "--force upload xen_forced xen_forced.livepatch"),
        ("force-upload-other-xen", "--force upload xen_other_xen xen_other_xen.livepatch"),
        ("upload-other-xen", "upload xen_other_xen xen_other_xen.livepatch"),
        ("list-forced", "list"),
        ("apply-forced", "apply xen_forced"),
        ("extra:forced", ""),
        ("get-forced", "get xen_forced"),
        ("revert-forced", "revert xen_forced"),
        ("unload-forced", "unload xen_forced"),
    ];

    private static readonly (string Step, string Args)[] s_scenario =
    [
        .. XenQemuParityTests.Scenario.TakeWhile(s => s.Step != "upload-wrong-dep"),
        .. s_forced,
        .. XenQemuParityTests.Scenario.SkipWhile(s => s.Step != "upload-wrong-dep").TakeWhile(s => s.Step != "list-end"),
        ("get-unknown", "get xen_wrong_dep"),
        ("list-end", "list"),
    ];

    private static string KeptPath => Repo.Path("tests", "Data", "xen-4.22", "scenario.txt");

    // tests/qemu/sysctl-probe.c's commands, what real Xen answered, and the payloads they upload (built for it).
    private static string ProbeDir => Repo.Path("tests", "Data", "xen-4.22", "sysctl");

    private static string Id(int n) => $"{n:00}-{s_scenario[n].Step.Replace(':', '-')}";

    /// <summary>
    /// The payloads of the scenario in <paramref name="dir"/>, built from <paramref name="hello"/> (tests/qemu's hello
    /// world for one hypervisor): new symbols and build-ids for each, <c>.livepatch.depends</c> naming no hypervisor
    /// or payload (wrong_dep), <c>.livepatch.xen_depends</c> naming another hypervisor (other_xen).
    /// </summary>
    private static void Variants(string hello, string dir)
    {
        QemuPayloads.Variant(hello, Path.Combine(dir, "xen_wrong_dep.livepatch"), "wrong_dep", wrongDepends: true);
        QemuPayloads.Variant(hello, Path.Combine(dir, "xen_forced.livepatch"), "forced");
        QemuPayloads.Variant(hello, Path.Combine(dir, "xen_other_xen.livepatch"), "other_xen", wrongXenDepends: true);
    }

    // One step's outcome as the kept file holds it; file paths relative to the scenario's folder; an extraversion
    // that is not the patch's is the hypervisor's own, whatever it reads.
    private static string Record(string id, string args, int? rc, string stdout, string stderr)
    {
        var sb = new StringBuilder();
        sb.Append($"== {id}{(args.Length > 0 ? " (" + args + ")" : "")}\n");
        if (rc == null)
        {
            string extra = stdout.Trim();
            sb.Append($"extraversion {(extra == "Hello World" ? extra : "<the hypervisor's own>")}\n");
            return sb.ToString();
        }
        sb.Append($"rc {rc}\n");
        // get's lines after Xen's state line are the payload's details (addresses, build-ids): ours, not Xen's tool's.
        if (args.StartsWith("get ", StringComparison.Ordinal))
            stdout = string.Concat(stdout.Split('\n').Where(l => !l.StartsWith("  ", StringComparison.Ordinal)).Select(l => l + "\n"))[..^1];
        foreach (var (name, text) in new[] { ("out", stdout), ("err", stderr) })
        {
            sb.Append(name).Append(":\n");
            foreach (string line in text.Split('\n').SkipLast(1))
                sb.Append("| ").Append(line).Append('\n');
            if (text.Length > 0 && !text.EndsWith('\n'))
                sb.Append("| ").Append(text.Split('\n')[^1]).Append(" (no newline)\n");
        }
        return sb.ToString();
    }

    [Fact]
    public async Task The_sandbox_in_the_xen_422_profile_answers_each_step_as_real_xen_422_did()
    {
        Assert.True(File.Exists(KeptPath), $"{KeptPath} is missing: run the QEMU test with XLP_RECORD=1");
        string kept = File.ReadAllText(KeptPath);
        string ours = await OnTheSandbox();
        Assert.True(kept == ours, $"the sandbox (xen-4.22) differs from real Xen 4.22:\n{Diff(kept, ours)}");
    }

    [UpstreamXenFact(UpstreamXen.Xen422)]
    public async Task Our_cli_on_real_xen_422_under_qemu_answers_as_kept_and_as_the_sandbox()
    {
        var xen = UpstreamXen.Get(UpstreamXen.Xen422);
        string files = Repo.TempDirectory("xen-422-scenario");
        Variants(QemuPayloads.HelloFor(xen.Syms, files), files);
        NativeCli.CopyTo(files);
        SysctlProbe.Build(files);
        File.Copy(Path.Combine(ProbeDir, "commands.txt"), Path.Combine(files, "probe-commands.txt"));
        // The raw sysctls first, on a freshly booted hypervisor (the list's version starts at 1); they unload what they load.
        var script = new StringBuilder("./sysctl-probe probe-commands.txt > out/sysctl.txt 2>&1\nmkdir -p out/s\n");
        for (int n = 0; n < s_scenario.Length; n++)
        {
            if (s_scenario[n].Step.StartsWith("extra:", StringComparison.Ordinal))
                script.Append($"cat /sys/hypervisor/version/extra > out/s/{Id(n)}.out\n");
            else
                script.Append($"./xen-livepatch {s_scenario[n].Args} > out/s/{Id(n)}.out 2> out/s/{Id(n)}.err; echo $? > out/s/{Id(n)}.rc\n");
        }
        // One CPU: on a busy host Xen's 30 ms rendezvous times out with two.
        var r = XenQemu.Run(files, script.ToString(), TimeSpan.FromMinutes(8), ["--xen", xen.Image, "--smp", "1"]);
        Assert.True(r.ScriptExitCode == 0, $"the dom0 script failed ({r.ScriptExitCode}):\n{r.RunLog}");
        var real = new StringBuilder();
        for (int n = 0; n < s_scenario.Length; n++)
        {
            bool extra = s_scenario[n].Step.StartsWith("extra:", StringComparison.Ordinal);
            real.Append(Record(Id(n), s_scenario[n].Args, extra ? null : int.Parse(r.File($"s/{Id(n)}.rc").Trim(), System.Globalization.CultureInfo.InvariantCulture),
                r.File($"s/{Id(n)}.out"), extra ? "" : r.File($"s/{Id(n)}.err")));
        }
        if (Environment.GetEnvironmentVariable("XLP_RECORD") == "1")
        {
            Directory.CreateDirectory(Path.GetDirectoryName(KeptPath)!);
            File.WriteAllText(KeptPath, real.ToString());
            File.WriteAllText(Path.Combine(ProbeDir, "xen-output.txt"), r.File("sysctl.txt"));
            File.WriteAllText(Path.Combine(ProbeDir, "build-id"), r.BuildId + "\n");
            foreach (string payload in new[] { "xen_hello_world.livepatch", "xen_forced.livepatch" })
                File.Copy(Path.Combine(files, payload), Path.Combine(ProbeDir, payload), overwrite: true);
        }
        Assert.Equal(File.ReadAllText(Path.Combine(ProbeDir, "xen-output.txt")), r.File("sysctl.txt"));
        Assert.Contains("(XEN) livepatch: xen_hello_world finished APPLY with rc=0", r.SerialLog, StringComparison.Ordinal);
        Assert.True(File.ReadAllText(KeptPath) == real.ToString(), $"real Xen 4.22 answered otherwise than kept:\n{Diff(File.ReadAllText(KeptPath), real.ToString())}");
        string sandbox = await OnTheSandbox();
        Assert.True(real.ToString() == sandbox, $"the sandbox (xen-4.22) differs from real Xen 4.22:\n{Diff(real.ToString(), sandbox)}");
    }

    [Fact]
    public void Each_raw_sysctl_gets_from_the_xen_422_profile_what_real_xen_422_answered()
    {
        string kept = Path.Combine(ProbeDir, "xen-output.txt");
        Assert.True(File.Exists(kept), $"{kept} is missing: run the QEMU test with XLP_RECORD=1");
        // The hypervisor's symbols as the differential kept them from the same build.
        string differential = Repo.Path("tests", "Data", "xen-4.22", "differential");
        string buildId = File.ReadAllText(Path.Combine(ProbeDir, "build-id")).Trim();
        Assert.True(buildId == File.ReadAllText(Path.Combine(differential, "build-id")).Trim(),
            "tests/Data/xen-4.22/sysctl and differential were recorded from different builds: record both again (XLP_RECORD=1)");
        var xen = OfflineXen.FromXenSyms(File.ReadAllText(Path.Combine(differential, "xensyms")), buildId, LivepatchProfile.Xen422);
        string ours = SysctlProbe.Run(xen, File.ReadAllText(Path.Combine(ProbeDir, "commands.txt")), ProbeDir);
        Assert.True(File.ReadAllText(kept) == ours, $"the xen-4.22 profile answers otherwise than real Xen 4.22:\n{Diff(File.ReadAllText(kept), ours)}");
    }

    // The scenario with our CLI against the sandbox hypervisor in the xen-4.22 profile, over its socket.
    private static async Task<string> OnTheSandbox()
    {
        string dir = Path.Combine("/tmp", "xlp-" + Guid.NewGuid().ToString("N")[..12]);
        Directory.CreateDirectory(dir);
        try
        {
            Variants(QemuPayloads.HelloFor(SandboxBuild.Image, dir), dir);
            string socket = Path.Combine(dir, "sandbox.sock");
            using var host = SandboxHost.Start(new SandboxOptions { ImagePath = SandboxBuild.Image, Vcpus = 1, Profile = LivepatchProfile.Xen422 });
            await using var server = SysctlSocketServer.Start(new SysctlHandler(host.Core), socket, ProfileMatrixTests.OwnGroup.Value);
            {
                var sb = new StringBuilder();
                for (int n = 0; n < s_scenario.Length; n++)
                {
                    var (step, args) = s_scenario[n];
                    if (step.StartsWith("extra:", StringComparison.Ordinal))
                    {
                        Assert.True(host.WaitForEntries(2, TimeSpan.FromSeconds(30)), "the vCPU stopped entering the sandbox");
                        sb.Append(Record(Id(n), "", null, host.LastExtraVersion(0), ""));
                        continue;
                    }
                    // File names as the scenario gives them, in the scenario's folder.
                    string[] argv = args.Split(' ').Select(a => a.EndsWith(".livepatch", StringComparison.Ordinal) ? Path.Combine(dir, a) : a).ToArray();
                    var run = CliRun.With(SandboxProfileTests.WaitingFor(host), ["--sandbox", socket, .. argv]);
                    sb.Append(Record(Id(n), args, run.ExitCode, run.Stdout.Replace(dir + "/", "", StringComparison.Ordinal), run.Stderr.Replace(dir + "/", "", StringComparison.Ordinal)));
                }
                return sb.ToString();
            }
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    private static string Diff(string expected, string actual)
    {
        string[] e = expected.Split('\n'), a = actual.Split('\n');
        var sb = new StringBuilder();
        for (int i = 0; i < Math.Max(e.Length, a.Length) && sb.Length < 4000; i++)
        {
            string x = i < e.Length ? e[i] : "(none)", y = i < a.Length ? a[i] : "(none)";
            if (x != y)
                sb.Append($"  line {i + 1}: expected '{x}', got '{y}'\n");
        }
        return sb.ToString();
    }
}
