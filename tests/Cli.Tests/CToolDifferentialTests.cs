using System.Diagnostics;
using System.Text;
using XenLivepatch.Control;
using XenLivepatch.Sandbox;
using XenLivepatch.TestKit;

namespace XenLivepatch.Cli.Tests;

/// <summary>
/// Debian's C <c>xen-livepatch</c> and ours against the same kind of hypervisor, without QEMU: an LD_PRELOAD shim
/// (Shim/privcmd-shim.c, compiled here) turns the C tool's privcmd hypercalls into requests on our sandbox socket,
/// served by <see cref="SysctlSocketServer"/> over an offline core. Each scenario runs once with Xen's tool and once
/// with ours (through the socket transport), each on a fresh hypervisor, and every step's stdout, stderr and exit
/// code must be the same.
/// </summary>
public class CToolDifferentialTests
{
    private static readonly Lazy<string> s_shim = new(() =>
    {
        string so = Path.Combine(Repo.TempDirectory("shim"), "privcmd-shim.so");
        Tool.Run("gcc", "-shared", "-fPIC", "-O2", "-Wall", "-Werror", "-o", so, Repo.Path("tests", "Cli.Tests", "Shim", "privcmd-shim.c"), "-ldl").EnsureSuccess();
        return so;
    });

    private static CliRun RunC(string socket, string[] args, string workingDirectory)
    {
        var psi = new ProcessStartInfo(XenOracle.Path)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            WorkingDirectory = workingDirectory,
        };
        foreach (string a in args)
            psi.ArgumentList.Add(a);
        psi.Environment["LD_PRELOAD"] = s_shim.Value;
        psi.Environment["XLP_SHIM_SOCKET"] = socket;
        psi.Environment["LC_ALL"] = "C";
        using var p = Process.Start(psi)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        Assert.True(p.WaitForExit(TimeSpan.FromMinutes(1)), "Xen's tool hung");
        return new CliRun(p.ExitCode, stdout.Result, stderr.Result);
    }

    private static CliRun RunOurs(string socket, string[] args)
    {
        var host = new ToolHost { OpenTransport = (_, _, ct) => SocketTransport.OpenAsync(socket, null, ct) };
        return CliRun.With(host, args);
    }

    /// <summary>Runs <paramref name="steps"/> with each tool on its own fresh hypervisor; returns the differences.</summary>
    private static async Task<(string Differences, List<CliRun> Xen)> Compare(string[][] steps, Action<OfflineXen>? prepare = null)
    {
        string dir = Repo.TempDirectory("ctool");
        var runs = new Dictionary<string, List<CliRun>>();
        foreach (string tool in new[] { "xen", "ours" })
        {
            var xen = OfflineXen.Create();
            prepare?.Invoke(xen);
            string socket = Path.Combine(dir, tool + ".sock");
            await using var server = SysctlSocketServer.Start(xen.Handler, socket);
            runs[tool] = steps.Select(s => tool == "xen" ? RunC(socket, s, dir) : RunOurs(socket, s)).ToList();
        }
        var diffs = new StringBuilder();
        for (int i = 0; i < steps.Length; i++)
        {
            if (runs["xen"][i] != runs["ours"][i])
                diffs.Append($"step {i + 1} '{string.Join(' ', steps[i])}':\n  Xen's: {runs["xen"][i]}\n  ours:  {runs["ours"][i]}\n");
        }
        // Guard against comparing two tools that both fail to reach the hypervisor.
        Assert.DoesNotContain(runs["xen"], r => r.Stderr.Contains("failed to get the handler", StringComparison.Ordinal));
        return (diffs.ToString(), runs["xen"]);
    }

    /// <summary>The steps of <see cref="Upload_apply_revert_unload_and_their_errors"/> with hello world at <paramref name="h"/>.</summary>
    internal static string[][] UploadApplyRevertUnloadSteps(string h) =>
        [
            ["list"],
            ["revert", "xen_hello_world"],
            ["upload", "xen_hello_world", h],
            ["upload", "xen_hello_world", h],
            ["list"],
            ["apply", "xen_hello_world"],
            ["apply", "xen_hello_world"],
            ["list"],
            ["unload", "xen_hello_world"],
            ["replace", "xen_hello_world"],
            ["revert", "xen_hello_world"],
            ["revert", "xen_hello_world"],
            ["unload", "xen_hello_world"],
            ["unload", "xen_hello_world"],
            ["l"],
        ];

    /// <summary>The steps of <see cref="Load_dependencies_flags_and_failed_reapply"/>.</summary>
    internal static string[][] LoadDependencyFlagSteps(string bye, string nop, string withData) =>
        [
            ["load", bye],
            ["list"],
            ["upload", "xen_bye_world", bye],
            ["apply", "xen_bye_world", "--bogus"],
            ["apply", "xen_bye_world"],
            ["a", "xen_bye_world", "--nodeps"],
            ["load", nop, "--bogus"],
            ["load", withData],
            ["revert", "xen_counter"],
            ["apply", "xen_counter"],
            ["list"],
            ["unload", "xen_counter"],
            ["re", "xen_bye_world", "--nodeps"],
            ["rep", "xen_bye_world"],
            ["upload", "xen_nop", nop],
            ["replace", "xen_nop"],
            ["list"],
        ];

    /// <summary>
    /// The steps of <see cref="Argument_and_file_errors"/>: <paramref name="dir"/> is a directory, <paramref name="empty"/>
    /// an empty file, <paramref name="junk"/> a file that is no ELF, <paramref name="missing"/> a path with no file.
    /// </summary>
    internal static string[][] ArgumentAndFileErrorSteps(string hello, string dir, string empty, string junk, string missing) =>
        [
            ["upload"],
            ["upload", "x"],
            ["upload", "x", missing],
            ["upload", "x", empty],
            ["upload", "x", dir],
            ["upload", "x", junk],
            ["upload", new string('n', 129), hello],
            ["upload", new string('n', 128), hello],
            ["apply"],
            ["apply", new string('n', 129)],
            ["list", "extra"],
            ["load"],
            ["load", junk],
            ["help"],
            ["h"],
            ["nonsense"],
        ];

    [XenOracleFact]
    public async Task Upload_apply_revert_unload_and_their_errors()
    {
        string h = Payloads.Hello;
        var (diffs, xen) = await Compare(UploadApplyRevertUnloadSteps(h));
        Assert.Equal("", diffs);
        // Xen's tool did reach the hypervisor behind the shim.
        Assert.Equal(new CliRun(0, $"Uploading {h}... completed\n", ""), xen[2]);
        Assert.Equal(new CliRun(0, "Applying xen_hello_world... completed\n", ""), xen[5]);
        Assert.Contains("xen_hello_world                         | APPLIED    | LIVEPATCH_RULEZ", xen[7].Stdout, StringComparison.Ordinal);
    }

    [XenOracleFact]
    public async Task Load_dependencies_flags_and_failed_reapply()
    {
        Assert.Equal("", (await Compare(LoadDependencyFlagSteps(Payloads.Bye, Payloads.Nop, Payloads.WithData))).Differences);
    }

    [XenOracleFact]
    public async Task Argument_and_file_errors()
    {
        string dir = Repo.TempDirectory("files");
        string empty = Path.Combine(dir, "empty.livepatch");
        File.WriteAllBytes(empty, []);
        string junk = Path.Combine(dir, "junk.livepatch");
        File.WriteAllBytes(junk, Encoding.ASCII.GetBytes("not an ELF file at all"));
        Assert.Equal("", (await Compare(ArgumentAndFileErrorSteps(Payloads.Hello, dir, empty, junk, Path.Combine(dir, "missing")))).Differences);
    }
}
