using System.Text;
using XenLivepatch.TestKit;

namespace XenLivepatch.Cli.Tests;

/// <summary>
/// Our NativeAOT <c>xen-livepatch</c> and Debian's C one, in the same dom0 of Debian's real Xen 4.17 under QEMU,
/// through the real <c>/dev/xen/privcmd</c>: one boot runs the same scenario with each (reference §6.3 with a
/// hello-world payload built for that hypervisor, plus errors), and every step's stdout, stderr and exit code
/// must be the same; the hypervisor's extraversion must show the patch under our tool as under Xen's.
/// Needs ./build.sh's NativeAOT binary (artifacts/publish/xen-livepatch/xen-livepatch).
/// </summary>
public class XenQemuParityTests
{
    internal static readonly (string Step, string Args)[] Scenario =
    [
        ("list-empty", "list"),
        ("revert-unknown", "revert xen_hello_world"),
        ("load", "load xen_hello_world.livepatch"),
        ("extra:applied", ""),
        ("upload-duplicate", "upload xen_hello_world xen_hello_world.livepatch"),
        ("load-duplicate", "load xen_hello_world.livepatch"),
        ("list-applied", "list"),
        ("unload-applied", "unload xen_hello_world"),
        ("apply-applied", "apply xen_hello_world"),
        ("revert", "revert xen_hello_world"),
        ("extra:reverted", ""),
        ("revert-reverted", "revert xen_hello_world"),
        ("unload", "unload xen_hello_world"),
        ("unload-unloaded", "unload xen_hello_world"),
        ("upload-wrong-dep", "upload xen_wrong_dep xen_wrong_dep.livepatch"),
        ("apply-wrong-dep", "apply xen_wrong_dep"),
        ("apply-bad-flag", "apply xen_wrong_dep --bogus"),
        ("list-checked", "list"),
        ("apply-nodeps", "apply xen_wrong_dep --nodeps"),
        ("extra:nodeps", ""),
        ("replace-applied", "replace xen_wrong_dep"),
        ("revert-nodeps", "revert xen_wrong_dep"),
        ("unload-wrong-dep", "unload xen_wrong_dep"),
        ("load-wrong-dep", "load xen_wrong_dep.livepatch"),
        ("list-end", "list"),
    ];

    /// <summary>The dom0 script running <see cref="Scenario"/> with <paramref name="tool"/>, its files under out/<paramref name="dir"/>.</summary>
    internal static string Script(string tool, string dir)
    {
        var sb = new StringBuilder();
        sb.Append($"mkdir -p out/{dir}\n");
        int n = 0;
        foreach (var (step, args) in Scenario)
        {
            string id = $"{n++:00}-{step.Replace(':', '-')}";
            if (step.StartsWith("extra:", StringComparison.Ordinal))
                sb.Append($"cat /sys/hypervisor/version/extra > out/{dir}/{id}.out\n");
            else
                sb.Append($"{tool} {args} > out/{dir}/{id}.out 2> out/{dir}/{id}.err; echo $? > out/{dir}/{id}.rc\n");
        }
        // How stdout and stderr interleave on one stream (the C tool's stdout is unbuffered).
        sb.Append($"{tool} upload xen_hello_world xen_hello_world.livepatch > out/{dir}/mixed 2>&1\n");
        sb.Append($"{tool} apply xen_wrong_dep >> out/{dir}/mixed 2>&1\n");
        sb.Append($"{tool} unload xen_hello_world >> out/{dir}/mixed 2>&1\n");
        sb.Append($"{tool} unload xen_wrong_dep >> out/{dir}/mixed 2>&1\n");
        return sb.ToString();
    }

    [Fact]
    public void Our_cli_and_debians_print_the_same_and_patch_the_same_on_real_xen()
    {
        string files = Repo.TempDirectory("xen-qemu-parity");
        string hello = QemuPayloads.Hello(files);
        QemuPayloads.Variant(hello, Path.Combine(files, "xen_wrong_dep.livepatch"), "wrong_dep", wrongDepends: true);
        NativeCli.CopyTo(Path.Combine(files, "ours"));

        // One CPU: Xen's 30 ms rendezvous cannot time out (EBUSY) while the emulating host is busy, which would
        // make the two runs differ for reasons of load alone.
        var r = XenQemu.Run(files, DomScript, TimeSpan.FromMinutes(6), ["--smp", "1"]);
        AssertSameOnXen(r);
    }

    /// <summary>
    /// The whole dom0 script: the scenario with Xen's tool (on PATH) and ours (./ours/xen-livepatch), in a dom0
    /// whose /work holds xen_hello_world.livepatch and xen_wrong_dep.livepatch; then our own commands.
    /// </summary>
    internal static string DomScript => "ls /dev/xen > out/dev-xen\n" + Script("xen-livepatch", "c") + Script("./ours/xen-livepatch", "ours") +
        """
        ./ours/xen-livepatch upload xen_hello_world xen_hello_world.livepatch > /dev/null
        ./ours/xen-livepatch --json list > out/ours-json-list
        ./ours/xen-livepatch get xen_hello_world > out/ours-get 2>&1; echo $? >> out/ours-get
        ./ours/xen-livepatch unload xen_hello_world > /dev/null
        ./ours/xen-livepatch get xen_hello_world >> out/ours-get 2>&1; echo $? >> out/ours-get

        """;

    /// <summary>Every step of <see cref="DomScript"/>'s two runs printed the same, and the scenario did what it should.</summary>
    internal static void AssertSameOnXen(XenQemuResult r)
    {
        Assert.True(r.ScriptExitCode == 0, $"the dom0 script failed ({r.ScriptExitCode}):\n{r.RunLog}");

        var diffs = new StringBuilder();
        int n = 0;
        foreach (var (step, _) in Scenario)
        {
            string id = $"{n++:00}-{step.Replace(':', '-')}";
            foreach (string ext in step.StartsWith("extra:", StringComparison.Ordinal) ? new[] { ".out" } : [".out", ".err", ".rc"])
            {
                string c = r.File($"c/{id}{ext}"), o = r.File($"ours/{id}{ext}");
                if (c != o)
                    diffs.Append($"step {id}{ext}:\n  Xen's: {Show(c)}\n  ours:  {Show(o)}\n");
            }
        }
        if (r.File("c/mixed") != r.File("ours/mixed"))
            diffs.Append($"interleaved stdout+stderr:\n  Xen's: {Show(r.File("c/mixed"))}\n  ours:  {Show(r.File("ours/mixed"))}\n");
        Assert.True(diffs.Length == 0, $"our CLI differs from Xen's on real Xen (/dev/xen: {r.File("dev-xen").Trim()}):\n{diffs}");

        // The scenario did what it should (so that "the same" is not "the same failure").
        string Step(string dir, int i, string ext) => r.File($"{dir}/{i:00}-{Scenario[i].Step.Replace(':', '-')}{ext}");
        Assert.Equal("Nothing to list\n", Step("ours", 0, ".out"));
        Assert.Equal("Uploading xen_hello_world.livepatch... completed\nApplying xen_hello_world... completed\n", Step("ours", 2, ".out"));
        Assert.Equal("Hello World", Step("ours", 3, ".out").Trim());
        Assert.Equal("Error 17: File exists\n", Step("ours", 4, ".err"));
        Assert.Matches(@"(?m)^xen_hello_world\s+\| APPLIED    \| LIVEPATCH_RULEZ$", Step("ours", 6, ".out"));
        Assert.Equal("xen_hello_world is in the wrong state.\nCurrent state: APPLIED\nExpected state: CHECKED\n", Step("ours", 7, ".err"));
        Assert.NotEqual("Hello World", Step("ours", 10, ".out").Trim());
        Assert.Equal("Failed to get status of xen_hello_world.\nError 2: No such file or directory\n", Step("ours", 13, ".err"));
        Assert.Equal(("Applying xen_wrong_dep... failed\n", "Error 22: Invalid argument\n", "1\n"), (Step("ours", 15, ".out"), Step("ours", 15, ".err"), Step("ours", 15, ".rc")));
        Assert.Equal("Hello World", Step("ours", 19, ".out").Trim());
        Assert.Equal("Nothing to list\n", Step("ours", Scenario.Length - 1, ".out"));
        using (var json = System.Text.Json.JsonDocument.Parse(r.File("ours-json-list")))
        {
            var p = Assert.Single(json.RootElement.GetProperty("payloads").EnumerateArray());
            Assert.Equal(("xen_hello_world", "CHECKED", "LIVEPATCH_RULEZ"), (p.GetProperty("name").GetString(), p.GetProperty("state").GetString(), p.GetProperty("metadata")[0].GetString()));
        }
        // get: the state, then what Xen's debug key 'x' shows of the payload; then, once it is unloaded, Xen's error.
        string get = r.File("ours-get");
        Assert.StartsWith("xen_hello_world: CHECKED\n  build-id     ", get, StringComparison.Ordinal);
        Assert.Contains("\n  metadata     LIVEPATCH_RULEZ\n", get, StringComparison.Ordinal);
        // Addresses as Xen's 'x' prints them, 16 digits: x86-64's start ffff82d0, arm64's are low (0000000000a02000).
        Assert.Matches(@"\n    xen_extra_version +[0-9a-f]{16} \(\d+ bytes\) -> [0-9a-f]{16} \(\d+ bytes\)\n0\n", get);
        Assert.EndsWith("\n0\nFailed to get status of xen_hello_world.\nError 2: No such file or directory\n1\n", get, StringComparison.Ordinal);
        Assert.Contains("(XEN) livepatch: xen_hello_world finished APPLY with rc=0", r.SerialLog, StringComparison.Ordinal);
    }

    private static string Show(string s) => s.Replace("\n", "\\n", StringComparison.Ordinal);
}
