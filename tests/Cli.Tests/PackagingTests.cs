using System.Diagnostics;
using XenLivepatch.TestKit;

namespace XenLivepatch.Cli.Tests;

/// <summary>
/// What ./build.sh leaves besides the binary (the manual page, the bash completion, the systemd unit) and what
/// ./install.sh does with them: FHS places under a prefix, a .deb, and an installed binary that finds its sandbox
/// image where it was installed. Needs ./build.sh's artifacts (the NativeAOT binary and artifacts/dist).
/// </summary>
public class PackagingTests
{
    private static string Dist(string file)
    {
        string path = Repo.Path("artifacts", "dist", file);
        Assert.True(File.Exists(path), $"{path} is missing: run ./build.sh");
        return path;
    }

    private static string Generated(params string[] args)
    {
        var r = CliRun.Ours(args);
        Assert.Equal(0, r.ExitCode);
        return r.Stdout;
    }

    [Fact]
    public void Build_leaves_the_manual_page_and_completion_made_from_the_help_texts_and_the_unit()
    {
        Assert.Equal(Generated("man"), File.ReadAllText(Dist("xen-livepatch.1")));
        Assert.Equal(Generated("completion", "bash"), File.ReadAllText(Dist("xen-livepatch.bash")));
        Assert.Equal(File.ReadAllText(Repo.Path("packaging", "systemd", "xen-livepatch.service")), File.ReadAllText(Dist("xen-livepatch.service")));
    }

    [Fact]
    public void The_manual_page_renders_without_a_warning_and_holds_every_command()
    {
        var r = Tool.Run("groff", "-man", "-Tutf8", "-ww", Dist("xen-livepatch.1"));
        Assert.True(r.ExitCode == 0 && r.Stderr.Length == 0, r.Stderr);
        string text = System.Text.RegularExpressions.Regex.Replace(r.Stdout, ".\b", "");
        string source = File.ReadAllText(Dist("xen-livepatch.1"));
        foreach (string command in new[] { "get", "buildid", "dump", "install", "uninstall", "list \\-\\-installed", "apply\\-installed", "converge", "check", "build", "info", "sandbox", "demo", "completion", "man" })
            Assert.Contains($"\n.SS {command}\n", source, StringComparison.Ordinal);
        Assert.Contains("Usage: xen-livepatch [--xen | --sandbox PATH] converge <dir|manifest>", text, StringComparison.Ordinal);
        Assert.Contains("xen_replace_world.livepatch replace", text, StringComparison.Ordinal);
        Assert.Contains("apply <name> [flags]   apply <name> patch.", text, StringComparison.Ordinal);
    }

    // Completes the words as bash would, with the completion script loaded: COMPREPLY, one per line.
    private static string[] Complete(params string[] words)
    {
        string script = $$"""
            source {{Dist("xen-livepatch.bash")}}
            COMP_WORDS=({{string.Join(' ', words.Select(w => $"'{w}'"))}})
            COMP_CWORD={{words.Length - 1}}
            _xen_livepatch
            printf '%s\n' "${COMPREPLY[@]}"
            """;
        var r = Tool.Run("bash", "-c", script);
        Assert.True(r.ExitCode == 0, r.Stderr);
        return r.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries);
    }

    [Fact]
    public void Bash_completes_commands_their_options_and_files()
    {
        Assert.Equal(["converge"], Complete("xen-livepatch", "conv"));
        Assert.Equal(["install"], Complete("xen-livepatch", "--sandbox", "/tmp/s.sock", "ins"));
        Assert.Equal(["--dry-run"], Complete("xen-livepatch", "converge", "--dr"));
        Assert.Contains("--replace", Complete("xen-livepatch", "install", "--"));
        Assert.Contains("--installed", Complete("xen-livepatch", "list", "--"));
        Assert.Equal(["--nodeps"], Complete("xen-livepatch", "apply", "x", "--n"));
        string dir = Repo.TempDirectory("complete");
        File.WriteAllText(Path.Combine(dir, "xen_one.livepatch"), "");
        Assert.Equal([Path.Combine(dir, "xen_one.livepatch")], Complete("xen-livepatch", "install", Path.Combine(dir, "xen_o")));
    }

    [Fact]
    public void Install_puts_everything_in_FHS_places_and_the_installed_binary_finds_its_sandbox_image_there()
    {
        string root = Repo.TempDirectory("install-root");
        var r = Tool.Run(Repo.Path("install.sh"), "--prefix", "/usr", "--destdir", root);
        Assert.True(r.ExitCode == 0, r.Stdout + r.Stderr);
        foreach (string f in new[] { "usr/sbin/xen-livepatch", "usr/lib/xen-livepatch/sandbox/xen-syms", "usr/lib/xen-livepatch/sandbox/payloads/xen_hello_world.livepatch",
                     "usr/share/man/man1/xen-livepatch.1", "usr/share/bash-completion/completions/xen-livepatch", "usr/lib/systemd/system/xen-livepatch.service" })
            Assert.True(File.Exists(Path.Combine(root, f)), $"{f} was not installed");
        string unit = File.ReadAllText(Path.Combine(root, "usr/lib/systemd/system/xen-livepatch.service"));
        Assert.Contains("\nExecStart=/usr/sbin/xen-livepatch --xen apply-installed\n", unit, StringComparison.Ordinal);
        Assert.Contains("\nAfter=proc-xen.mount local-fs.target\n", unit, StringComparison.Ordinal);
        Assert.Contains("\nBefore=xen-init-dom0.service xendomains.service libvirtd.service\n", unit, StringComparison.Ordinal);

        // systemd accepts the unit (its command pointed at the binary installed here).
        string check = Path.Combine(Repo.TempDirectory("unit"), "xen-livepatch.service");
        File.WriteAllText(check, unit.Replace("ExecStart=/usr/sbin/xen-livepatch", "ExecStart=" + Path.Combine(root, "usr/sbin/xen-livepatch"), StringComparison.Ordinal));
        var verify = Tool.Run("systemd-analyze", "verify", "--man=no", check);
        Assert.True(verify.ExitCode == 0, verify.Stdout + verify.Stderr);

        // Away from the repository, the installed binary runs the installed image.
        var psi = new ProcessStartInfo(Path.Combine(root, "usr/sbin/xen-livepatch")) { RedirectStandardOutput = true, RedirectStandardError = true, WorkingDirectory = root };
        foreach (string a in new[] { "demo", "--vcpus", "1", "--timeout", "1000" })
            psi.ArgumentList.Add(a);
        psi.Environment.Remove("XEN_LIVEPATCH_SANDBOX_IMAGE");
        using var p = Process.Start(psi)!;
        string stdout = p.StandardOutput.ReadToEnd();
        string stderr = p.StandardError.ReadToEnd();
        Assert.True(p.WaitForExit(120_000));
        Assert.True(p.ExitCode == 0, stdout + stderr);
        Assert.Contains($"Booting the sandbox hypervisor {Path.Combine(root, "usr/lib/xen-livepatch/sandbox/xen-syms")} with 1 vCPU\n", stdout, StringComparison.Ordinal);
        Assert.Contains($"Uploading xen_hello_world.livepatch", stdout, StringComparison.Ordinal);
    }

    [Fact]
    public void Install_makes_a_debian_package_with_the_same_files()
    {
        string deb = Path.Combine(Repo.TempDirectory("deb"), "xen-livepatch.deb");
        var r = Tool.Run(Repo.Path("install.sh"), "--deb", deb);
        Assert.True(r.ExitCode == 0, r.Stdout + r.Stderr);
        string contents = Tool.Run("dpkg-deb", "-c", deb).EnsureSuccess().Stdout;
        foreach (string f in new[] { "./usr/sbin/xen-livepatch", "./usr/lib/xen-livepatch/sandbox/xen-syms", "./usr/share/man/man1/xen-livepatch.1",
                     "./usr/share/bash-completion/completions/xen-livepatch", "./lib/systemd/system/xen-livepatch.service" })
            Assert.Contains(f, contents, StringComparison.Ordinal);
        Assert.Equal("xen-livepatch", Tool.Run("dpkg-deb", "-f", deb, "Package").EnsureSuccess().Stdout.Trim());
    }
}
