using System.Text;
using XenLivepatch.Elf;
using XenLivepatch.TestKit;

namespace XenLivepatch.Cli.Tests;

/// <summary>
/// Our CLI and payloads on real arm64 Xen (4.17.3 built with live patching, Debian's arm64 dom0 and tools, under
/// qemu-system-aarch64: tests/qemu-arm64). One boot runs the x86 parity scenarios with Debian's arm64 C
/// <c>xen-livepatch</c> and with our NativeAOT build for linux-arm64 (./build.sh publishes it to
/// artifacts/publish/xen-livepatch-linux-arm64), step for step (<see cref="XenQemuParityTests"/>, and the three
/// scenarios of <see cref="CToolDifferentialTests"/> with payloads built by Xen's recipe for that hypervisor);
/// another applies the sample payloads built by our <c>build</c> for it.
/// </summary>
public class XenQemuArm64Tests
{
    // Single-quoted for sh.
    private static string Quote(string arg) => "'" + arg.Replace("'", "'\\''", StringComparison.Ordinal) + "'";

    // Each CToolDifferentialTests scenario with Xen's tool, then with ours, each starting with nothing loaded.
    private static string CToolScript(IReadOnlyList<string[][]> scenarios)
    {
        var sb = new StringBuilder("""
            clean() {
              for round in 1 2 3; do
                for n in $(xen-livepatch list | awk -F'|' 'NR > 2 { gsub(/ /, "", $1); print $1 }'); do
                  xen-livepatch revert "$n" > /dev/null 2>&1; xen-livepatch unload "$n" > /dev/null 2>&1
                done
              done
            }
            mkdir -p d; : > empty.livepatch; printf 'not an ELF file at all' > junk.livepatch
            clean

            """);
        for (int s = 0; s < scenarios.Count; s++)
        {
            foreach (var (tool, dir) in new[] { ("xen-livepatch", "c"), ("./ours/xen-livepatch", "ours") })
            {
                sb.Append($"mkdir -p out/ct{s}-{dir}\n");
                for (int i = 0; i < scenarios[s].Length; i++)
                {
                    string f = $"out/ct{s}-{dir}/{i:00}";
                    sb.Append($"{tool} {string.Join(' ', scenarios[s][i].Select(Quote))} > {f}.out 2> {f}.err; echo $? > {f}.rc\n");
                }
                sb.Append("clean\n");
            }
        }
        return sb.ToString();
    }

    [Fact]
    public void Our_arm64_cli_and_debians_print_the_same_and_patch_the_same_on_real_arm64_xen()
    {
        string files = Repo.TempDirectory("xen-qemu-arm64-parity");
        string hello = QemuPayloads.HelloArm64(files);
        QemuPayloads.Variant(hello, Path.Combine(files, "xen_wrong_dep.livepatch"), "wrong_dep", wrongDepends: true, objcopy: "aarch64-linux-gnu-objcopy");
        NativeCli.CopyTo(Path.Combine(files, "ours"), "linux-arm64");

        // The payloads of CToolDifferentialTests for this hypervisor, by Xen's recipe; named as the scenarios load them.
        var image = new TestImage("aarch64", XenQemuArm64.XenSyms, ElfFile.Load(XenQemuArm64.XenSyms));
        string Built(string name, string[] sources, params string[] options)
        {
            string path = LivepatchFixtures.BuildPayload(image, name, sources, options);
            File.Copy(path, Path.Combine(files, name + ".livepatch"));
            return name + ".livepatch";
        }
        string ctHello = Built("ct_hello", ["hello_world.c"], "--modinfo", "LIVEPATCH_RULEZ");
        string bye = Built("xen_bye_world", ["bye_world.c"], "--depends-on", Path.Combine(files, ctHello));
        string withData = Built("xen_counter", [LivepatchFixtures.SourceFile(Payloads.CounterSource)]);
        // tests/Data/payloads/nop.c NOPs 5 bytes, which is no whole number of arm64 instructions: 4 here.
        string nop = Built("xen_nop", [LivepatchFixtures.SourceFile(File.ReadAllText(LivepatchFixtures.PayloadSource("nop.c")).Replace(".new_size = 5,", ".new_size = 4,", StringComparison.Ordinal))]);
        string[][][] scenarios =
        [
            CToolDifferentialTests.UploadApplyRevertUnloadSteps(ctHello),
            CToolDifferentialTests.LoadDependencyFlagSteps(bye, nop, withData),
            CToolDifferentialTests.ArgumentAndFileErrorSteps(ctHello, "d", "empty.livepatch", "junk.livepatch", "d/missing"),
        ];

        // One CPU, as on x86: the rendezvous cannot time out because the emulating host is busy.
        var r = XenQemuArm64.Run(files, XenQemuParityTests.DomScript + CToolScript(scenarios), TimeSpan.FromMinutes(5), ["--smp", "1"]);
        XenQemuParityTests.AssertSameOnXen(r);

        var diffs = new StringBuilder();
        for (int s = 0; s < scenarios.Length; s++)
        {
            for (int i = 0; i < scenarios[s].Length; i++)
            {
                foreach (string ext in new[] { ".out", ".err", ".rc" })
                {
                    string c = r.File($"ct{s}-c/{i:00}{ext}"), o = r.File($"ct{s}-ours/{i:00}{ext}");
                    if (c != o)
                        diffs.Append($"scenario {s + 1} step {i + 1} '{string.Join(' ', scenarios[s][i])}' {ext}:\n  Xen's: {Show(c)}\n  ours:  {Show(o)}\n");
                }
            }
        }
        Assert.True(diffs.Length == 0, $"our arm64 CLI differs from Debian's arm64 tool on real arm64 Xen:\n{diffs}");
        // Xen's tool reached the hypervisor: the first scenario applied hello world; in the second, bye applied
        // with --nodeps, and xen_counter (which depends on the hypervisor) could not go on top of it.
        Assert.Equal("Applying xen_hello_world... completed\n", r.File("ct0-c/05.out"));
        Assert.Equal("Applying xen_bye_world... completed\n", r.File("ct1-c/05.out"));
        Assert.Contains("(XEN) livepatch: xen_counter: check against xen_bye_world build-id failed", r.SerialLog, StringComparison.Ordinal);
    }

    // The sequence of Xen's own livepatch tests with the samples; extra and minor after each step that patches.
    private const string SampleScript = """
        x() { echo "\$ xen-livepatch $*"; xen-livepatch "$@"; echo "rc=$?"; }
        e() { m=$(cat /sys/hypervisor/version/minor); [ "$m" = 17 ] || m="not 17"; echo "extra=$(cat /sys/hypervisor/version/extra) minor=$m"; }
        e
        x load xen_hello_world.livepatch; e
        x load xen_bye_world.livepatch; e
        x revert xen_bye_world; e
        x revert xen_hello_world; e
        x apply xen_hello_world
        x unload xen_bye_world; x unload xen_hello_world
        x upload xen_hello_world xen_hello_world.livepatch; x apply xen_hello_world; e
        x upload xen_replace_world xen_replace_world.livepatch
        x replace xen_replace_world; e
        x list
        x revert xen_replace_world; e
        x unload xen_replace_world; x unload xen_hello_world
        x load xen_nop.livepatch; e
        x revert xen_nop; e
        x apply xen_nop; e
        x revert xen_nop; x unload xen_nop
        x load xen_prepost_hooks.livepatch; e
        x revert xen_prepost_hooks; e
        x revert xen_prepost_hooks; e
        x unload xen_prepost_hooks
        x load xen_prepost_hooks_fail.livepatch; e
        x load xen_action_hooks.livepatch; e
        x list
        x revert xen_action_hooks; x unload xen_action_hooks
        x load xen_action_hooks_noapply.livepatch; e
        x load xen_expectations.livepatch; e
        x revert xen_expectations; x unload xen_expectations
        x load xen_expectations_fail.livepatch; e
        x list
        """;

    [Fact]
    public void Sample_payloads_built_by_our_build_apply_on_real_arm64_xen()
    {
        XenQemuArm64.EnsureFetched();
        string files = Repo.TempDirectory("xen-qemu-arm64-samples");
        Tool.Run("bash", Repo.Path("tests", "qemu-arm64", "build-samples.sh"), files, XenQemuArm64.XenSyms).EnsureSuccess();
        var r = XenQemuArm64.Run(files, SampleScript, TimeSpan.FromMinutes(3), ["--smp", "1"]);
        Assert.True(r.ScriptExitCode == 0, r.RunLog);
        Golden.Assert(r.RunLog, "arm64-samples-on-xen.txt");
        // The hooks ran as Xen's tests expect them to, and none found a count it did not expect.
        string xen = string.Join('\n', r.SerialLog.Split('\n').Where(l => l.Contains("(XEN) livepatch sample: ", StringComparison.Ordinal)));
        Assert.Contains("hi_func: Hi! (called times) 2", xen, StringComparison.Ordinal);
        Assert.Contains("check_fnc: Hi func called 1", xen, StringComparison.Ordinal);
        Assert.Contains("post_revert_hook: counts as expected.", xen, StringComparison.Ordinal);
        Assert.Contains("action revert_hook: functions marked reverted.", xen, StringComparison.Ordinal);
        Assert.Contains("noapply post_apply_hook: nothing applied, as expected.", xen, StringComparison.Ordinal);
        Assert.Contains("(XEN) livepatch: xen_extra_version: expectation failed: expected:deadc0debabe", r.SerialLog, StringComparison.Ordinal);
        Assert.DoesNotContain("BUG", xen, StringComparison.Ordinal);
    }

    /// <summary>
    /// build-source on the arm64 build that boots here (tests/qemu-arm64/fetch.sh's tree, cross-compiled from this
    /// x86 machine): a change to common code becomes a payload that real arm64 Xen applies and reverts; so does a
    /// change to a function with an alternative (arm64's 12-byte <c>alt_instr</c> and its replacement carried; the
    /// function copies every hypercall's results to dom0, and <c>list</c> runs through it while it is applied); a
    /// <c>__LINE__</c>-only change (arm64's bug frames keep the line in a field of their own) is nothing to patch;
    /// a change of <c>__init</c> code is refused with its reason (tests/Data/xen-4.17-arm64/source-patches).
    /// </summary>
    [Fact]
    public void Build_source_on_the_arm64_build_makes_a_payload_that_real_arm64_xen_applies()
    {
        XenQemuArm64.EnsureFetched();
        string tree = Path.Combine(XenQemuArm64.CacheDirectory, "build", "xen-4.17.3");
        string files = Repo.TempDirectory("xen-qemu-arm64-source");
        CliRun Build(string patch) => CliRun.Ours("build-source", "--src", tree, "--base-build", tree, "--offline", "-o", Path.Combine(files, patch + ".livepatch"),
            "--patch", Repo.Path("tests", "Data", "xen-4.17-arm64", "source-patches", patch + ".patch"));

        var extra = Build("extra");
        Assert.True(extra.ExitCode == 0, extra.Stderr);
        Assert.Contains("xen/common/version.o: 1 changed function (xen_extra_version)", extra.Stderr, StringComparison.Ordinal);
        if (System.Runtime.InteropServices.RuntimeInformation.OSArchitecture != System.Runtime.InteropServices.Architecture.Arm64)
            Assert.Contains("cross-compiling with XEN_TARGET_ARCH=arm64 CROSS_COMPILE=aarch64-linux-gnu-", extra.Stderr, StringComparison.Ordinal);
        var alternative = Build("alternative");
        Assert.True(alternative.ExitCode == 0, alternative.Stderr);
        Assert.Contains("xen/arch/arm/guestcopy.o: 1 changed function (guestcopy.c#copy_guest)", alternative.Stderr, StringComparison.Ordinal);
        var withAlternative = ElfFile.Load(Path.Combine(files, "alternative.livepatch"));
        foreach (var (section, size) in new[] { (".altinstructions", 12L), (".altinstr_replacement", 4L) })
        {
            int index = withAlternative.FindSection(section);
            Assert.True(index >= 0, $"{section} is missing from the payload");
            Assert.Equal(size, (long)withAlternative.SectionHeaders[index].Size);
        }
        var line = Build("line-only");
        Assert.True(line.ExitCode == 83, line.Stderr);
        Assert.Contains("xen/common/kernel.o: no function changed", line.Stderr, StringComparison.Ordinal);
        Assert.False(File.Exists(Path.Combine(files, "line-only.livepatch")));
        var init = Build("init");
        Assert.True(init.ExitCode == 65, init.Stderr);
        Assert.Contains("xen/common/version.o: .init.text (xen_build_init): changed __init code", init.Stderr, StringComparison.Ordinal);
        Assert.False(File.Exists(Path.Combine(files, "init.livepatch")));

        NativeCli.CopyTo(Path.Combine(files, "ours"), "linux-arm64");
        const string script = """
            x() { echo "extra=$(cat /sys/hypervisor/version/extra)"; }
            { x; ./ours/xen-livepatch load extra.livepatch; echo "rc=$?"; x; ./ours/xen-livepatch revert extra; echo "rc=$?"; x;
              ./ours/xen-livepatch unload extra; echo "rc=$?"; ./ours/xen-livepatch load alternative.livepatch; echo "rc=$?";
              ./ours/xen-livepatch list; ./ours/xen-livepatch revert alternative; ./ours/xen-livepatch unload alternative;
              ./ours/xen-livepatch list; } > out/steps 2>&1
            """;
        var r = XenQemuArm64.Run(files, script, TimeSpan.FromMinutes(3), ["--smp", "1"]);
        Assert.True(r.ScriptExitCode == 0, r.RunLog);
        Assert.Equal("""
            extra=.3
            Uploading extra.livepatch... completed
            Applying extra... completed
            rc=0
            extra=-from-source
            Reverting extra... completed
            rc=0
            extra=.3
            Unloading extra... completed
            rc=0
            Uploading alternative.livepatch... completed
            Applying alternative... completed
            rc=0
             ID                                     | status     | metadata
            ----------------------------------------+------------+---------------
            alternative                             | APPLIED    | 
            Reverting alternative... completed
            Unloading alternative... completed
            Nothing to list

            """, r.File("steps"));
    }

    private static string Show(string s) => s.Replace("\n", "\\n", StringComparison.Ordinal);
}
