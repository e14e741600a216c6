using System.Text.Json;
using XenLivepatch.TestKit;

namespace XenLivepatch.Cli.Tests;

/// <summary>
/// The operator's commands against the sandbox over its socket: buildid, dump and get; the install store with
/// boot-time apply across a "reboot" and its escape hatch; faults injected into the store, each reported clearly
/// with the store and the hypervisor left consistent; converge from a directory and a manifest.
/// </summary>
[Collection("sandbox")]
public sealed class OperatorCommandTests(SocketSandbox sandbox) : IClassFixture<SocketSandbox>
{
    private const string Timeout = SocketSandbox.TimeoutMs;

    private static string Sample(string name) => SandboxBuild.PayloadPath(name);

    private static string Dir(params string[] samples)
    {
        string dir = Repo.TempDirectory("set");
        foreach (string s in samples)
            File.Copy(Sample(s), Path.Combine(dir, s + ".livepatch"));
        return dir;
    }

    private static string NoCmdline()
    {
        string f = Path.Combine(Repo.TempDirectory("cmdline"), "cmdline");
        File.WriteAllText(f, "root=/dev/xvda1 ro quiet\n");
        return f;
    }

    private CliRun ApplyInstalled(string store, params string[] more) =>
        sandbox.Run(["apply-installed", "--store", store, "--timeout", Timeout, "--cmdline", NoCmdline(), .. more]);

    [Fact]
    public void Buildid_prints_the_running_hypervisors_build_id_as_sysfs_does()
    {
        Assert.Equal(new CliRun(0, sandbox.BuildId + "\n", ""), sandbox.Run("buildid"));
        var json = sandbox.Run("buildid", "--json");
        using var doc = JsonDocument.Parse(json.Stdout);
        Assert.Equal(sandbox.BuildId, doc.RootElement.GetProperty("build_id").GetString());
        Assert.Equal(0, doc.RootElement.GetProperty("exit_code").GetInt32());
    }

    [Fact]
    public void Dump_prints_debug_key_x_and_get_shows_the_payloads_details()
    {
        sandbox.Reset();
        Assert.Equal(0, sandbox.Run("converge", Dir("xen_hello_world", "xen_bye_world"), "--timeout", Timeout).ExitCode);
        var dump = sandbox.Run("dump");
        Assert.Equal(0, dump.ExitCode);
        var hello = sandbox.Host.Core.Find("xen_hello_world")!;
        Assert.StartsWith($"'x' pressed - Dumping all livepatch patches\nbuild-id: {sandbox.BuildId}\n name=xen_hello_world state=APPLIED(2) {hello.Memory.TextAddress:x16}",
            dump.Stdout, StringComparison.Ordinal);
        Assert.Contains(" name=xen_bye_world state=APPLIED(2) ", dump.Stdout, StringComparison.Ordinal);
        Assert.Contains($"depend-on={Convert.ToHexStringLower(hello.BuildId.Span)}\n", dump.Stdout, StringComparison.Ordinal);

        var get = sandbox.Run("get", "xen_hello_world");
        Assert.Equal(0, get.ExitCode);
        Assert.StartsWith("xen_hello_world: APPLIED\n", get.Stdout, StringComparison.Ordinal);
        Assert.Contains($"  depends on   {sandbox.BuildId} (the hypervisor)\n", get.Stdout, StringComparison.Ordinal);
        Assert.Contains("  metadata     LIVEPATCH_RULEZ\n", get.Stdout, StringComparison.Ordinal);
        var f = hello.Functions[0];
        Assert.Contains($"    xen_extra_version  {f.OldAddress:x16} ({f.Entry.OldSize} bytes) -> {f.NewAddress:x16} ({f.Entry.NewSize} bytes)\n", get.Stdout, StringComparison.Ordinal);

        Assert.Contains($"  depends on   {Convert.ToHexStringLower(hello.BuildId.Span)} (xen_hello_world)\n", sandbox.Run("get", "xen_bye_world").Stdout, StringComparison.Ordinal);
        using var doc = JsonDocument.Parse(sandbox.Run("get", "xen_bye_world", "--json").Stdout);
        var fn = Assert.Single(doc.RootElement.GetProperty("functions").EnumerateArray());
        Assert.Equal("xen_extra_version", fn.GetProperty("name").GetString());
        Assert.Equal(Convert.ToHexStringLower(hello.BuildId.Span), doc.RootElement.GetProperty("depends").GetString());
    }

    [Fact]
    public void Installed_payloads_are_applied_again_in_order_after_a_reboot_and_a_second_run_changes_nothing()
    {
        sandbox.Reset();
        string store = Repo.TempDirectory("store");
        var install = sandbox.Run("install", "--store", store, Sample("xen_hello_world"), Sample("xen_bye_world"));
        Assert.True(install.ExitCode == 0, install.Stderr);
        Assert.Matches($@"^installed xen_hello_world \(4968 bytes, sha256 [0-9a-f]{{16}}…\) as #1 in {store}/{sandbox.BuildId}\n", install.Stdout);
        var first = ApplyInstalled(store);
        Assert.True(first.ExitCode == 0, first.Stdout + first.Stderr);
        Assert.Equal("xen_hello_world,xen_bye_world", sandbox.Applied);

        // The REPLACE set: it takes the place of the two, and one more payload goes on top of it.
        Assert.Equal(0, sandbox.Run("install", "--store", store, "--replace", Sample("xen_replace_world")).ExitCode);
        Assert.Equal(0, sandbox.Run("install", "--store", store, Sample("xen_nop")).ExitCode);
        var second = ApplyInstalled(store);
        Assert.True(second.ExitCode == 0, second.Stdout + second.Stderr);
        Assert.Contains("superseded by a later --replace install, not applied: xen_hello_world, xen_bye_world\n", second.Stdout, StringComparison.Ordinal);
        Assert.Contains("  replace xen_replace_world  done", second.Stdout, StringComparison.Ordinal);
        Assert.Equal("xen_replace_world,xen_nop", sandbox.Applied);

        var list = sandbox.Run("list", "--installed", "--store", store);
        Assert.Equal(0, list.ExitCode);
        Assert.Matches(@"\n +3  xen_replace_world  replace +2208  [0-9a-f]{16}  ok\n", list.Stdout);

        // A reboot: nothing loaded; the boot unit's command applies them again, in order.
        sandbox.Reset();
        var boot = ApplyInstalled(store);
        Assert.True(boot.ExitCode == 0, boot.Stdout + boot.Stderr);
        Assert.Equal("xen_replace_world:Applied,xen_nop:Applied", sandbox.Loaded);
        Assert.Equal("xen_replace_world,xen_nop", sandbox.Applied);
        Assert.True(boot.Stdout.IndexOf("replace xen_replace_world", StringComparison.Ordinal) < boot.Stdout.IndexOf("apply xen_nop", StringComparison.Ordinal));
        Assert.Equal("Hello Again Wor", Extraversion());

        var again = ApplyInstalled(store, "--json");
        Assert.Equal(0, again.ExitCode);
        using var doc = JsonDocument.Parse(again.Stdout);
        Assert.False(doc.RootElement.GetProperty("changed").GetBoolean());
        Assert.Equal(0, doc.RootElement.GetProperty("plan").GetArrayLength());
        Assert.Equal(["xen_hello_world", "xen_bye_world"], doc.RootElement.GetProperty("superseded").EnumerateArray().Select(e => e.GetString()));

        Assert.Equal(0, sandbox.Run("uninstall", "--store", store, "xen_nop").ExitCode);
        Assert.Equal(["xen_hello_world", "xen_bye_world", "xen_replace_world"], Installed(store));
    }

    [Fact]
    public void The_kernel_command_line_turns_boot_time_apply_off()
    {
        sandbox.Reset();
        string store = Repo.TempDirectory("store");
        Assert.Equal(0, sandbox.Run("install", "--store", store, Sample("xen_hello_world")).ExitCode);
        string cmdline = Path.Combine(Repo.TempDirectory("cmdline"), "cmdline");
        File.WriteAllText(cmdline, "placeholder root=/dev/xvda1 xen-livepatch.enable=0 quiet\n");
        var r = sandbox.Run("apply-installed", "--store", store, "--cmdline", cmdline);
        Assert.Equal(new CliRun(0, $"apply-installed: skipped: xen-livepatch.enable=0 on the kernel command line ({cmdline})\n", ""), r);
        Assert.Equal("", sandbox.Loaded);
        // The unit says the same to systemd.
        Assert.Contains("ConditionKernelCommandLine=!xen-livepatch.enable=0\n", File.ReadAllText(Repo.Path("packaging", "systemd", "xen-livepatch.service")), StringComparison.Ordinal);
    }

    [Fact]
    public void A_truncated_and_a_missing_file_are_reported_and_what_does_not_depend_on_them_is_applied()
    {
        sandbox.Reset();
        string store = Repo.TempDirectory("store");
        Assert.Equal(0, sandbox.Run("install", "--store", store, Sample("xen_hello_world"), Sample("xen_bye_world"), Sample("xen_nop"), Sample("xen_replace_world")).ExitCode);
        string dir = Path.Combine(store, sandbox.BuildId);
        string hello = Directory.GetFiles(dir, "xen_hello_world.*.livepatch").Single();
        File.WriteAllBytes(hello, File.ReadAllBytes(hello)[..1000]);
        File.Delete(Directory.GetFiles(dir, "xen_replace_world.*.livepatch").Single());

        var r = ApplyInstalled(store);
        Assert.Equal(1, r.ExitCode);
        Assert.Contains($"xen-livepatch apply-installed: not applied: xen_hello_world: its file {hello} is 1000 bytes, not the 4968 installed (truncated or changed); install it again", r.Stderr, StringComparison.Ordinal);
        Assert.Contains("xen-livepatch apply-installed: not applied: xen_bye_world: it depends on xen_hello_world, whose file is damaged", r.Stderr, StringComparison.Ordinal);
        Assert.Contains("not applied: xen_replace_world: its file", r.Stderr, StringComparison.Ordinal);
        Assert.Contains("is missing", r.Stderr, StringComparison.Ordinal);
        Assert.Equal("xen_nop:Applied", sandbox.Loaded);
        using (var doc = JsonDocument.Parse(ApplyInstalled(store, "--json").Stdout))
        {
            Assert.Equal((1, false, 3), (doc.RootElement.GetProperty("exit_code").GetInt32(), doc.RootElement.GetProperty("converged").GetBoolean(),
                doc.RootElement.GetProperty("store_problems").GetArrayLength()));
        }

        var list = sandbox.Run("list", "--installed", "--store", store);
        Assert.Equal(1, list.ExitCode);
        Assert.Matches(@"xen_hello_world +- +4968  [0-9a-f]{16}  DAMAGED\n", list.Stdout);
        // Installing it again mends it.
        Assert.Equal(0, sandbox.Run("install", "--store", store, Sample("xen_hello_world"), Sample("xen_replace_world")).ExitCode);
        Assert.Equal(0, sandbox.Run("list", "--installed", "--store", store).ExitCode);
    }

    [RootFact]
    public void A_payload_for_another_hypervisor_and_an_unwritable_store_are_refused_and_change_nothing()
    {
        sandbox.Reset();
        string store = Repo.TempDirectory("store");
        Assert.Equal(0, sandbox.Run("install", "--store", store, Sample("xen_nop")).ExitCode);
        string index = Path.Combine(store, sandbox.BuildId, "installed.json");
        string before = File.ReadAllText(index);

        string foreign = PayloadVariants.ForAnotherHypervisor(Sample("xen_hello_world"), Repo.TempDirectory("foreign"));
        var r = sandbox.Run("install", "--store", store, foreign);
        Assert.Equal(65, r.ExitCode);
        Assert.Contains($"xen-livepatch install: xen_hello_world ({foreign}) was made for hypervisor build-id {string.Concat(Enumerable.Repeat("ab", 20))}, not {sandbox.BuildId}: " +
            "Xen would refuse it (EINVAL)", r.Stderr, StringComparison.Ordinal);
        Assert.Equal(before, File.ReadAllText(index));

        Tool.Run("mount", "--bind", store, store).EnsureSuccess();
        try
        {
            Tool.Run("mount", "-o", "remount,bind,ro", store).EnsureSuccess();
            r = sandbox.Run("install", "--store", store, Sample("xen_hello_world"));
            Assert.Equal(1, r.ExitCode);
            Assert.Contains($"xen-livepatch install: cannot change the store {store}/{sandbox.BuildId}: ", r.Stderr, StringComparison.Ordinal);
            Assert.Contains("nothing was changed. Run as root, free some space, or give another store with --store DIR (or XEN_LIVEPATCH_STORE)", r.Stderr, StringComparison.Ordinal);
            // Boot-time apply still works from a read-only store.
            var boot = ApplyInstalled(store);
            Assert.True(boot.ExitCode == 0, boot.Stdout + boot.Stderr);
        }
        finally
        {
            Tool.Run("umount", store).EnsureSuccess();
        }
        Assert.Equal(before, File.ReadAllText(index));
        Assert.Equal(["xen_nop"], Installed(store));
        Assert.Equal("xen_nop:Applied", sandbox.Loaded);
    }

    [Fact]
    public void Converge_moves_between_sets_and_a_second_run_does_nothing()
    {
        sandbox.Reset();
        var r = sandbox.Run("converge", Dir("xen_bye_world", "xen_hello_world"), "--timeout", Timeout);
        Assert.True(r.ExitCode == 0, r.Stdout + r.Stderr);
        Assert.EndsWith("converged: applied, bottom first: xen_hello_world, xen_bye_world\n", r.Stdout, StringComparison.Ordinal);

        string set = Dir("xen_replace_world", "xen_nop");
        string manifest = Path.Combine(set, "manifest");
        File.WriteAllText(manifest, "# the next set\nxen_replace_world.livepatch replace\nxen_nop.livepatch\n");
        var plan = sandbox.Run("converge", manifest, "--dry-run");
        Assert.Equal(0, plan.ExitCode);
        Assert.Contains("plan (dry run, nothing done):\n  upload xen_replace_world ", plan.Stdout, StringComparison.Ordinal);
        Assert.Equal("xen_hello_world,xen_bye_world", sandbox.Applied);

        r = sandbox.Run("converge", manifest, "--timeout", Timeout, "--json");
        Assert.True(r.ExitCode == 0, r.Stdout + r.Stderr);
        using (var doc = JsonDocument.Parse(r.Stdout))
        {
            var root = doc.RootElement;
            Assert.Equal((1, "exact", true, true), (root.GetProperty("schema").GetInt32(), root.GetProperty("mode").GetString(), root.GetProperty("changed").GetBoolean(), root.GetProperty("converged").GetBoolean()));
            Assert.Equal(["upload xen_replace_world", "replace xen_replace_world", "unload xen_hello_world", "unload xen_bye_world", "upload xen_nop", "apply xen_nop"],
                root.GetProperty("steps").EnumerateArray().Select(s => $"{s.GetProperty("op").GetString()} {s.GetProperty("name").GetString()}"));
            Assert.All(root.GetProperty("steps").EnumerateArray(), s => Assert.Equal("completed", s.GetProperty("outcome").GetString()));
            Assert.Equal(["xen_replace_world", "xen_nop"], root.GetProperty("payloads").EnumerateArray().Select(p => p.GetProperty("name").GetString()));
        }
        Assert.Equal("xen_replace_world,xen_nop", sandbox.Applied);

        r = sandbox.Run("converge", manifest, "--timeout", Timeout);
        Assert.Equal(0, r.ExitCode);
        Assert.Contains("nothing to do; the hypervisor has the desired set: applied, bottom first: xen_replace_world, xen_nop\n", r.Stdout, StringComparison.Ordinal);
    }

    [Fact]
    public void Converge_refuses_a_set_it_cannot_apply_or_read_and_changes_nothing()
    {
        sandbox.Reset();
        var r = sandbox.Run("converge", Dir("xen_bye_world"));
        Assert.Equal(65, r.ExitCode);
        Assert.Contains($"xen-livepatch converge: cannot apply the directory ", r.Stderr, StringComparison.Ordinal);
        Assert.Contains(": xen_bye_world depends on build-id ", r.Stderr, StringComparison.Ordinal);
        Assert.Equal("", r.Stdout);

        string manifest = Path.Combine(Repo.TempDirectory("m"), "m.txt");
        File.WriteAllText(manifest, "nowhere.livepatch\n");
        r = sandbox.Run("converge", manifest);
        Assert.Equal(66, r.ExitCode);
        Assert.Contains($"xen-livepatch converge: {manifest}:1: ", r.Stderr, StringComparison.Ordinal);
        Assert.Equal(64, sandbox.Run("converge").ExitCode);
        Assert.Equal("", sandbox.Loaded);
    }

    private static string[] Installed(string store) =>
        [.. JsonDocument.Parse(File.ReadAllText(Directory.GetFiles(store, "installed.json", SearchOption.AllDirectories).Single()))
            .RootElement.GetProperty("payloads").EnumerateArray().Select(p => p.GetProperty("name").GetString()!)];

    private string Extraversion()
    {
        Assert.True(sandbox.Host.WaitForEntries(20, TimeSpan.FromSeconds(10)));
        return sandbox.Host.LastExtraVersion(0);
    }

    [Fact]
    public void The_signature_policy_gates_install_boot_apply_and_converge_and_refuses_before_anything_changes()
    {
        sandbox.Reset();
        string keys = SigningKeys.A.Directory;
        string dir = Repo.TempDirectory("signed-set");
        string hello = Path.Combine(dir, "xen_hello_world.livepatch");
        Assert.Equal(0, CliRun.Ours("sign", Sample("xen_hello_world"), "--key", SigningKeys.A.Key, "--cert", SigningKeys.A.Cert, "-o", hello).ExitCode);
        string bye = Path.Combine(dir, "xen_bye_world.livepatch");
        File.Copy(Sample("xen_bye_world"), bye);

        // install: the unsigned payload is refused before the store is touched, and the signed one with it.
        string store = Repo.TempDirectory("store");
        var refused = sandbox.Run("install", "--store", store, "--trusted-keys", keys, hello, bye);
        Assert.Equal(65, refused.ExitCode);
        Assert.Equal("", refused.Stdout);
        Assert.Equal($"xen-livepatch install: xen_bye_world ({bye}): signature check failed (unsigned): the payload carries no signature " +
            "(no appended signature, no .note.Xen.signature) (signature policy require); nothing was installed (sign it with 'xen-livepatch sign', or see --signature-policy)\n", refused.Stderr);
        Assert.False(Directory.Exists(Path.Combine(store, sandbox.BuildId)));
        Assert.Equal(0, sandbox.Run("install", "--store", store, "--trusted-keys", keys, hello).ExitCode);
        Assert.Equal(0, sandbox.Run("install", "--store", store, bye).ExitCode);

        // apply-installed: what the policy refuses is left out, as a damaged file is; the rest is applied.
        var boot = ApplyInstalled(store, "--trusted-keys", keys);
        Assert.Equal(1, boot.ExitCode);
        Assert.Contains("xen-livepatch apply-installed: not applied: xen_bye_world: signature check failed (unsigned): ", boot.Stderr, StringComparison.Ordinal);
        Assert.Equal("xen_hello_world:Applied", sandbox.Loaded);
        Assert.Equal("Hello World", Extraversion());
        using (var doc = JsonDocument.Parse(ApplyInstalled(store, "--trusted-keys", keys, "--json").Stdout))
        {
            Assert.False(doc.RootElement.GetProperty("converged").GetBoolean());
            Assert.StartsWith("xen_bye_world: signature check failed (unsigned)", Assert.Single(doc.RootElement.GetProperty("store_problems").EnumerateArray()).GetString(),
                StringComparison.Ordinal);
        }

        // converge: refused as a whole (exit 65, nothing done) under require; verify lets the unsigned one through.
        sandbox.Reset();
        var converge = sandbox.Run("converge", dir, "--timeout", Timeout, "--signature-policy", "require", "--trusted-keys", keys);
        Assert.Equal(65, converge.ExitCode);
        Assert.Contains($"xen-livepatch converge: cannot apply the directory {dir}: xen_bye_world ({bye}): signature check failed (unsigned)", converge.Stderr,
            StringComparison.Ordinal);
        Assert.Equal("", sandbox.Loaded);
        using (var doc = JsonDocument.Parse(sandbox.Run("converge", dir, "--json", "--trusted-keys", keys).Stdout))
        {
            Assert.Equal(65, doc.RootElement.GetProperty("exit_code").GetInt32());
            Assert.Contains(doc.RootElement.GetProperty("problems").EnumerateArray(), p => p.GetString()!.Contains("signature check failed (unsigned)", StringComparison.Ordinal));
        }
        var verify = sandbox.Run("converge", dir, "--timeout", Timeout, "--signature-policy", "verify", "--trusted-keys", keys);
        Assert.True(verify.ExitCode == 0, verify.Stdout + verify.Stderr);
        Assert.Equal("xen_hello_world,xen_bye_world", sandbox.Applied);

        // A policy that cannot be applied is a wrong command line.
        var bogus = sandbox.Run("converge", dir, "--signature-policy", "strict");
        Assert.Equal((64, true), (bogus.ExitCode, bogus.Stderr.Contains("unknown --signature-policy 'strict': use none, verify or require", StringComparison.Ordinal)));
        var noKeys = sandbox.Run("install", "--store", store, "--signature-policy", "require", hello);
        Assert.Equal((64, true), (noKeys.ExitCode, noKeys.Stderr.Contains("give --trusted-keys <dir>", StringComparison.Ordinal)));
    }

    [Fact]
    public void The_boot_units_environment_gives_the_trusted_keys_when_no_option_does()
    {
        // The unit reads /etc/default/xen-livepatch: XEN_LIVEPATCH_TRUSTED_KEYS there gates install and boot alike.
        Assert.Contains("EnvironmentFile=-/etc/default/xen-livepatch\n", File.ReadAllText(Repo.Path("packaging", "systemd", "xen-livepatch.service")), StringComparison.Ordinal);
        string store = Repo.TempDirectory("store");
        var env = new Dictionary<string, string> { ["XEN_LIVEPATCH_TRUSTED_KEYS"] = SigningKeys.A.Directory, ["XEN_LIVEPATCH_SANDBOX"] = "/nonexistent/socket" };
        var r = SandboxCommandTests.Run(env, "install", "--store", store, "--build-id", sandbox.BuildId, Sample("xen_nop"));
        Assert.Equal(65, r.ExitCode);
        Assert.Contains($"xen_nop ({Sample("xen_nop")}): signature check failed (unsigned)", r.Stderr, StringComparison.Ordinal);
        Assert.Empty(Directory.GetFileSystemEntries(store));
        env["XEN_LIVEPATCH_SIGNATURE_POLICY"] = "none";
        Assert.Equal(0, SandboxCommandTests.Run(env, "install", "--store", store, "--build-id", sandbox.BuildId, Sample("xen_nop")).ExitCode);
        Assert.Equal(["xen_nop"], Installed(store));
    }

    [Fact]
    public void A_payload_changed_in_place_on_disk_is_caught_by_its_checksum_and_usage_errors_say_what_to_do()
    {
        sandbox.Reset();
        string store = Repo.TempDirectory("store");
        Assert.Equal(0, sandbox.Run("install", "--store", store, Sample("xen_hello_world"), Sample("xen_nop")).ExitCode);
        string file = Directory.GetFiles(Path.Combine(store, sandbox.BuildId), "xen_hello_world.*.livepatch").Single();
        byte[] data = File.ReadAllBytes(file);
        data[data.Length / 2] ^= 0x40;
        File.WriteAllBytes(file, data);

        var list = sandbox.Run("list", "--installed", "--store", store, "--json");
        Assert.Equal(1, list.ExitCode);
        using (var doc = JsonDocument.Parse(list.Stdout))
        {
            var hello = doc.RootElement.GetProperty("stores")[0].GetProperty("payloads").EnumerateArray().Single(p => p.GetProperty("name").GetString() == "xen_hello_world");
            Assert.Contains("SHA-256", hello.GetProperty("problem").GetString(), StringComparison.OrdinalIgnoreCase);
        }
        var boot = ApplyInstalled(store);
        Assert.Equal(1, boot.ExitCode);
        Assert.Contains("xen-livepatch apply-installed: not applied: xen_hello_world: ", boot.Stderr, StringComparison.Ordinal);
        Assert.Equal("xen_nop:Applied", sandbox.Loaded);

        var unknown = sandbox.Run("uninstall", "--store", store, "no_such_patch");
        Assert.Equal(1, unknown.ExitCode);
        Assert.Contains("no_such_patch", unknown.Stderr, StringComparison.Ordinal);
        Assert.Equal(["xen_hello_world", "xen_nop"], Installed(store));
        string[][] wrongs = [["install"], ["uninstall"], ["converge"], ["converge", "a", "b"], ["apply-installed", "extra"],
            ["converge", store, "--timeout", "0"], ["install", "--replace", Sample("xen_nop"), Sample("xen_hello_world")]];
        foreach (string[] wrong in wrongs)
        {
            var r = sandbox.Run(wrong);
            Assert.True(r.ExitCode == 64, string.Join(' ', wrong) + ": " + r.Stderr);
            Assert.Contains("--help", r.Stderr, StringComparison.Ordinal);
        }
    }
}

/// <summary>The install store's commands where no hypervisor answers: --build-id names the store.</summary>
public class StoreCommandsWithoutHypervisorTests
{
    [Fact]
    public void Install_for_a_named_build_id_and_list_every_store_need_no_hypervisor()
    {
        string store = Repo.TempDirectory("store");
        string id = Convert.ToHexStringLower(XenLivepatch.Elf.ElfFile.Load(SandboxBuild.Image).TryGetGnuBuildId(out var b, out _) ? b.Span : []);
        var r = CliRun.Ours("--sandbox", "/nonexistent/socket", "install", "--store", store, "--build-id", id, SandboxBuild.PayloadPath("xen_nop"));
        Assert.True(r.ExitCode == 0, r.Stderr);
        var json = CliRun.Ours("list", "--installed", "--all", "--store", store, "--json");
        Assert.Equal(0, json.ExitCode);
        using var doc = System.Text.Json.JsonDocument.Parse(json.Stdout);
        var s = Assert.Single(doc.RootElement.GetProperty("stores").EnumerateArray());
        Assert.Equal(id, s.GetProperty("build_id").GetString());
        Assert.Equal("xen_nop", Assert.Single(s.GetProperty("payloads").EnumerateArray()).GetProperty("name").GetString());

        // Without --build-id the store is the running hypervisor's: with none, say so.
        r = CliRun.Ours("--sandbox", "/nonexistent/socket", "install", "--store", store, SandboxBuild.PayloadPath("xen_nop"));
        Assert.Equal(1, r.ExitCode);
        Assert.Contains("the store is chosen by the running hypervisor's build-id; without one, give --build-id HEX", r.Stderr, StringComparison.Ordinal);
        Assert.Equal(64, CliRun.Ours("install", "--build-id", "xyz", SandboxBuild.PayloadPath("xen_nop")).ExitCode);
        Assert.Equal(66, CliRun.Ours("install", "--build-id", id, "/nonexistent.livepatch").ExitCode);
    }
}
