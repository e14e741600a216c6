using System.Text.Json;
using XenLivepatch.TestKit;

namespace XenLivepatch.Cli.Tests;

/// <summary>
/// The operator's day on Debian's real Xen 4.17 under QEMU, in two boots sharing /var/lib/xen-livepatch (a host
/// directory over virtio-9p): boot 1 installs two stacked payloads and then a REPLACE set (a REPLACE payload and
/// one on top of it), applying each with apply-installed; boot 2 runs xen-livepatch.service's command first, and
/// the REPLACE set is applied again, in order, before a list; converge then moves to the stacked pair and a second
/// converge does nothing; dump prints what Xen's own debug key 'x' printed on its console. Our NativeAOT binary
/// (./build.sh) runs in dom0 through the real /dev/xen/privcmd.
/// </summary>
public class XenQemuOperatorTests
{
    private static string Compile(string name, string text) =>
        Tool.CompileC("#pragma GCC visibility push(hidden)\n" + text, Repo.TempDirectory("qemu-op-" + name), name, "gcc",
            "-O2", "-fpic", "-mno-red-zone", "-fcf-protection=none", "-ffunction-sections", "-fno-asynchronous-unwind-tables", "-fno-common");

    private const string Boot1 = """
        X=./xen-livepatch
        $X buildid > out/buildid 2>&1
        $X install xen_op_hello.livepatch xen_op_bye.livepatch > out/install-1 2>&1; echo $? >> out/install-1
        $X apply-installed > out/apply-1 2>&1; echo $? > out/apply-1.rc
        cat /sys/hypervisor/version/extra > out/extra-1
        $X install --replace xen_op_replace.livepatch > out/install-2 2>&1
        $X install xen_op_minor.livepatch >> out/install-2 2>&1; echo $? >> out/install-2
        $X apply-installed > out/apply-2 2>&1; echo $? > out/apply-2.rc
        cat /sys/hypervisor/version/extra > out/extra-2
        cat /sys/hypervisor/version/minor > out/minor-2
        $X install foreign/xen_op_hello.livepatch > out/install-foreign 2>&1; echo $? >> out/install-foreign
        $X list --installed > out/installed 2>&1
        """;

    private const string Boot2 = """
        # xen-livepatch.service's command, first thing, with the binary where this dom0 has it
        cmd=$(sed -n 's|^ExecStart=/usr/sbin/xen-livepatch |./xen-livepatch |p' xen-livepatch.service)
        echo "$cmd" > out/unit-command
        $cmd > out/boot 2>&1; echo $? > out/boot.rc
        X=./xen-livepatch
        $X list > out/list 2>&1
        cat /sys/hypervisor/version/extra > out/extra-boot
        cat /sys/hypervisor/version/minor > out/minor-boot
        $X dump > out/dump 2>&1; echo $? >> out/dump
        $X get xen_op_minor > out/get 2>&1
        $X converge set-b > out/converge-1 2>&1; echo $? > out/converge-1.rc
        cat /sys/hypervisor/version/extra > out/extra-converged
        $X converge set-b > out/converge-2 2>&1; echo $? > out/converge-2.rc
        $X --json converge set-b > out/converge-3.json 2> out/converge-3.err
        $X --json dump > out/dump.json 2>&1
        """;

    [Fact]
    public void Installed_payloads_come_back_at_boot_in_order_and_converge_moves_between_sets_on_real_xen()
    {
        var (buildId, xensyms) = XenQemu.Symbols();
        string work = Repo.TempDirectory("qemu-operator");
        string symbols = Path.Combine(work, "xensyms");
        File.WriteAllText(symbols, xensyms);
        string files = Path.Combine(work, "in");
        Directory.CreateDirectory(Path.Combine(files, "set-b"));
        Directory.CreateDirectory(Path.Combine(files, "foreign"));
        string[] target = ["--symbols", symbols, "--build-id", buildId];
        string P(string name) => Path.Combine(files, name + ".livepatch");
        void Build(string name, string source, params string[] options)
        {
            var r = CliRun.Ours(["build", "-o", P(name), .. target, .. options, Compile(name, source)]);
            Assert.True(r.ExitCode == 0, r.Stdout + r.Stderr);
        }
        Build("xen_op_hello", "const char *xen_extra_version(void) { return \"Op Hello\"; }", "--metadata", "OP_HELLO");
        Build("xen_op_bye", "const char *xen_extra_version(void) { return \"Op Bye\"; }", "--depends-on", P("xen_op_hello"));
        Build("xen_op_replace", "const char *xen_extra_version(void) { return \"Op Replace\"; }");
        Build("xen_op_minor", "unsigned int xen_minor_version(void) { return 99; }", "--depends-on", P("xen_op_replace"));
        File.Copy(P("xen_op_hello"), Path.Combine(files, "set-b", "xen_op_hello.livepatch"));
        File.Copy(P("xen_op_bye"), Path.Combine(files, "set-b", "xen_op_bye.livepatch"));
        PayloadVariants.ForAnotherHypervisor(P("xen_op_hello"), Path.Combine(files, "foreign"));
        NativeCli.CopyTo(files);
        File.Copy(Repo.Path("packaging", "systemd", "xen-livepatch.service"), Path.Combine(files, "xen-livepatch.service"));
        string share = Path.Combine(work, "var-lib-xen-livepatch");
        string[] options = ["--smp", "1", "--share", share + ":/var/lib/xen-livepatch"];

        // Boot 1: install and apply.
        var b1 = XenQemu.Run(files, Boot1, options: options);
        Assert.True(b1.ScriptExitCode == 0, b1.RunLog);
        Assert.Equal(buildId, b1.File("buildid").Trim());
        Assert.EndsWith("\n0\n", b1.File("install-1"), StringComparison.Ordinal);
        Assert.True(b1.File("apply-1.rc").Trim() == "0", b1.File("apply-1"));
        Assert.Equal("Op Bye", b1.File("extra-1").Trim());
        Assert.True(b1.File("apply-2.rc").Trim() == "0", b1.File("apply-2"));
        Assert.Contains("superseded by a later --replace install, not applied: xen_op_hello, xen_op_bye", b1.File("apply-2"), StringComparison.Ordinal);
        Assert.Equal("Op Replace", b1.File("extra-2").Trim());
        Assert.Equal("99", b1.File("minor-2").Trim());
        Assert.EndsWith("\n65\n", b1.File("install-foreign"), StringComparison.Ordinal);
        Assert.Contains("was made for hypervisor build-id abababab", b1.File("install-foreign"), StringComparison.Ordinal);
        // The store is on the shared disk, as boot 1 left it.
        using (var index = JsonDocument.Parse(File.ReadAllText(Path.Combine(share, buildId, "installed.json"))))
        {
            Assert.Equal(["xen_op_hello", "xen_op_bye", "xen_op_replace", "xen_op_minor"],
                index.RootElement.GetProperty("payloads").EnumerateArray().Select(p => p.GetProperty("name").GetString()));
        }

        // Boot 2: the unit's command applies the REPLACE set again, in order, before anything else runs.
        var b2 = XenQemu.Run(files, Boot2, options: options);
        Assert.True(b2.ScriptExitCode == 0, b2.RunLog);
        Assert.Equal("./xen-livepatch --xen apply-installed", b2.File("unit-command").Trim());
        Assert.True(b2.File("boot.rc").Trim() == "0", b2.File("boot"));
        string boot = b2.File("boot");
        Assert.True(boot.IndexOf("replace xen_op_replace", StringComparison.Ordinal) < boot.IndexOf("apply xen_op_minor", StringComparison.Ordinal), boot);
        Assert.True(b2.SerialLog.IndexOf("(XEN) livepatch: xen_op_replace finished REPLACE with rc=0", StringComparison.Ordinal) <
                    b2.SerialLog.IndexOf("(XEN) livepatch: xen_op_minor finished APPLY with rc=0", StringComparison.Ordinal), b2.SerialLog);
        Assert.Matches(@"(?m)^xen_op_replace\s+\|\s+APPLIED\s+\|", b2.File("list"));
        Assert.Matches(@"(?m)^xen_op_minor\s+\|\s+APPLIED\s+\|", b2.File("list"));
        Assert.DoesNotContain("xen_op_hello", b2.File("list"), StringComparison.Ordinal);
        Assert.Equal(("Op Replace", "99"), (b2.File("extra-boot").Trim(), b2.File("minor-boot").Trim()));

        // dump prints Xen's own 'x' output: every line is on Xen's console.
        string dump = b2.File("dump");
        Assert.EndsWith("\n0\n", dump, StringComparison.Ordinal);
        var lines = dump.Split('\n', StringSplitOptions.RemoveEmptyEntries)[..^1];
        Assert.Equal("'x' pressed - Dumping all livepatch patches", lines[0]);
        Assert.Equal($"build-id: {buildId}", lines[1]);
        Assert.Contains(lines, l => l.StartsWith(" name=xen_op_replace state=APPLIED(2) ", StringComparison.Ordinal));
        Assert.Contains(lines, l => l.StartsWith("    xen_minor_version patch ", StringComparison.Ordinal));
        foreach (string line in lines)
            Assert.Contains($"(XEN) {line}\n", b2.SerialLog, StringComparison.Ordinal);
        Assert.Contains("    xen_minor_version ", b2.File("get"), StringComparison.Ordinal);

        // converge moves to the stacked pair; a second converge does nothing.
        Assert.True(b2.File("converge-1.rc").Trim() == "0", b2.File("converge-1"));
        Assert.Contains("converged: applied, bottom first: xen_op_hello, xen_op_bye", b2.File("converge-1"), StringComparison.Ordinal);
        Assert.Equal("Op Bye", b2.File("extra-converged").Trim());
        Assert.True(b2.File("converge-2.rc").Trim() == "0", b2.File("converge-2"));
        Assert.Contains("nothing to do; the hypervisor has the desired set: applied, bottom first: xen_op_hello, xen_op_bye", b2.File("converge-2"), StringComparison.Ordinal);
        using var json = JsonDocument.Parse(b2.File("converge-3.json"));
        Assert.Equal((false, true, 0), (json.RootElement.GetProperty("changed").GetBoolean(), json.RootElement.GetProperty("converged").GetBoolean(),
            json.RootElement.GetProperty("plan").GetArrayLength()));
        using var dumpJson = JsonDocument.Parse(b2.File("dump.json"));
        Assert.Equal(["xen_op_hello", "xen_op_bye"], dumpJson.RootElement.GetProperty("payloads").EnumerateArray().Select(p => p.GetProperty("name").GetString()));
        Assert.DoesNotContain("FATAL PAGE FAULT", b2.SerialLog, StringComparison.Ordinal);
    }
}
