using System.Diagnostics;
using System.Text.RegularExpressions;
using XenLivepatch.TestKit;

namespace XenLivepatch.Cli.Tests;

/// <summary>
/// The Ansible role (packaging/ansible/roles/xen_livepatch) run by Debian's ansible-playbook against localhost,
/// driving the sandbox over its socket: it copies a patch set and converges to it, reports "changed" only when
/// something changed, moves to another set, changes nothing in check mode, and fails with converge's message on a
/// set that cannot be applied or that the signature policy refuses.
/// </summary>
[Collection("sandbox")]
public sealed partial class AnsibleRoleTests(SocketSandbox sandbox) : IClassFixture<SocketSandbox>
{
    private static string Dir(params string[] samples)
    {
        string dir = Repo.TempDirectory("ansible-set");
        foreach (string s in samples)
            File.Copy(SandboxBuild.PayloadPath(s), Path.Combine(dir, s + ".livepatch"));
        return dir;
    }

    [GeneratedRegex(@"localhost\s+: ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)")]
    private static partial Regex Recap();

    private (int Changed, int Failed, string Output) Play(string set, string dest, string? manifest = null, bool check = false, string? trustedKeys = null)
    {
        var psi = new ProcessStartInfo("ansible-playbook") { RedirectStandardOutput = true, RedirectStandardError = true };
        string[] args =
        [
            "-i", "localhost,", "-c", "local", Repo.Path("packaging", "ansible", "converge.yml"),
            "-e", $"xen_livepatch_set={set}", "-e", $"xen_livepatch_dest={dest}", "-e", $"xen_livepatch_bin={LivepatchCli.Path}",
            "-e", $"xen_livepatch_hypervisor={sandbox.Socket}", "-e", $"xen_livepatch_timeout={SocketSandbox.TimeoutMs}",
            .. manifest == null ? Array.Empty<string>() : ["-e", $"xen_livepatch_manifest={manifest}"],
            .. check ? ["--check"] : Array.Empty<string>(),
            .. trustedKeys == null ? Array.Empty<string>() : ["-e", $"xen_livepatch_trusted_keys={trustedKeys}"],
        ];
        foreach (string a in args)
            psi.ArgumentList.Add(a);
        psi.Environment["ANSIBLE_ROLES_PATH"] = Repo.Path("packaging", "ansible", "roles");
        psi.Environment["ANSIBLE_NOCOLOR"] = "1";
        psi.Environment["ANSIBLE_LOCAL_TEMP"] = Repo.TempDirectory("ansible-tmp");
        psi.Environment["ANSIBLE_RETRY_FILES_ENABLED"] = "0";
        using var p = Process.Start(psi)!;
        var stderr = p.StandardError.ReadToEndAsync();
        string stdout = p.StandardOutput.ReadToEnd();
        Assert.True(p.WaitForExit(300_000), "ansible-playbook did not finish");
        string output = stdout + stderr.Result;
        var m = Recap().Match(output);
        Assert.True(m.Success, output);
        return (int.Parse(m.Groups[2].Value, System.Globalization.CultureInfo.InvariantCulture), int.Parse(m.Groups[4].Value, System.Globalization.CultureInfo.InvariantCulture), output);
    }

    [Fact]
    public void The_role_converges_hosts_and_reports_changed_only_when_something_changed()
    {
        Assert.True(File.Exists("/usr/bin/ansible-playbook"), "Debian's ansible is missing: ./build.sh installs it (apt-get install ansible)");
        sandbox.Reset();
        string dest = Path.Combine(Repo.TempDirectory("ansible-dest"), "set");
        string a = Dir("xen_hello_world", "xen_bye_world");

        var first = Play(a, dest);
        Assert.True(first.Failed == 0 && first.Changed > 0, first.Output);
        Assert.Equal("xen_hello_world,xen_bye_world", sandbox.Applied);

        var again = Play(a, dest);
        Assert.True(again.Failed == 0 && again.Changed == 0, again.Output);

        // Another set, by its manifest: REPLACE, one more on top; the files of the first set leave the host.
        string b = Dir("xen_replace_world", "xen_nop");
        File.WriteAllText(Path.Combine(b, "set.txt"), "xen_replace_world.livepatch replace\nxen_nop.livepatch\n");
        var moved = Play(b, dest, manifest: "set.txt");
        Assert.True(moved.Failed == 0 && moved.Changed > 0, moved.Output);
        Assert.Equal("xen_replace_world,xen_nop", sandbox.Applied);
        Assert.Equal(["set.txt", "xen_nop.livepatch", "xen_replace_world.livepatch"], Directory.GetFiles(dest).Select(Path.GetFileName).Order(StringComparer.Ordinal));

        // Check mode: says it would change, changes nothing.
        var check = Play(a, dest, check: true);
        Assert.True(check.Failed == 0 && check.Changed > 0, check.Output);
        Assert.Equal("xen_replace_world,xen_nop", sandbox.Applied);

        // A set converge refuses: the play fails with its reason, the hypervisor is left alone.
        string bad = Dir("xen_bye_world");
        var refused = Play(bad, dest);
        Assert.True(refused.Failed == 1, refused.Output);
        Assert.Contains("xen_bye_world depends on build-id", refused.Output, StringComparison.Ordinal);
        Assert.Equal("xen_replace_world,xen_nop", sandbox.Applied);

        // With trusted keys, an unsigned set is refused the same way.
        var unsigned = Play(a, dest, trustedKeys: SigningKeys.A.Directory);
        Assert.True(unsigned.Failed == 1, unsigned.Output);
        Assert.Contains("signature check failed (unsigned)", unsigned.Output, StringComparison.Ordinal);
        Assert.Equal("xen_replace_world,xen_nop", sandbox.Applied);
    }
}
