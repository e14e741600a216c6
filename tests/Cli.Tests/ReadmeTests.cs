using System.Diagnostics;
using System.Text;
using XenLivepatch.TestKit;

namespace XenLivepatch.Cli.Tests;

/// <summary>
/// A new user's path through the README, verbatim: the block that starts the sandbox and drives it from another
/// terminal runs as written, with <c>xen-livepatch</c> the binary ./build.sh publishes (the socket path is the one
/// thing changed, so that two runs on one machine do not meet). The C# sample is built by <see cref="PackageTests"/>.
/// </summary>
public class ReadmeTests
{
    /// <summary>The sh block that follows the line containing <paramref name="after"/>.</summary>
    private static string[] Block(string after)
    {
        string text = File.ReadAllText(Repo.Path("README.md")).ReplaceLineEndings("\n");
        int at = text.IndexOf(after, StringComparison.Ordinal);
        Assert.True(at >= 0, $"the README no longer says '{after}'");
        int start = text.IndexOf("```sh\n", at, StringComparison.Ordinal) + "```sh\n".Length;
        return text[start..text.IndexOf("```", start, StringComparison.Ordinal)].Split('\n', StringSplitOptions.RemoveEmptyEntries);
    }

    [Fact]
    public void The_sandbox_walkthrough_runs_as_written()
    {
        string binary = Repo.Path("artifacts", "publish", "xen-livepatch", "xen-livepatch");
        Assert.True(File.Exists(binary), $"{binary} is missing: run ./build.sh");
        string[] lines = Block("To keep a sandbox running and drive it with the ordinary commands from another terminal:");
        Assert.StartsWith("xen-livepatch sandbox --socket /tmp/xlp.sock", lines[0], StringComparison.Ordinal);
        string socket = $"/tmp/xlp-readme-{Environment.ProcessId}.sock";
        string Own(string line) => line.Replace("/tmp/xlp.sock", socket, StringComparison.Ordinal);

        // The first line is the first terminal: the sandbox, in the foreground there.
        var psi = new ProcessStartInfo("bash") { WorkingDirectory = Repo.Root, RedirectStandardOutput = true, RedirectStandardError = true };
        psi.ArgumentList.Add("-c");
        // exec: the shell becomes the sandbox, so that Ctrl-C (SIGINT) reaches it by this process's id.
        psi.ArgumentList.Add($"xen-livepatch() {{ exec '{binary}' \"$@\"; }}; {Own(lines[0])}");
        using var server = Process.Start(psi)!;
        var log = new StringBuilder();
        server.OutputDataReceived += (_, e) => { lock (log) log.AppendLine(e.Data); };
        server.BeginOutputReadLine();
        try
        {
            Assert.True(Poll.Until(() => { lock (log) return log.ToString().Contains("serving the livepatch sysctl", StringComparison.Ordinal); }, 30_000, 20),
                log.ToString());
            // The rest is the second terminal, one shell, line by line as typed.
            string script = $"set -e\nxen-livepatch() {{ '{binary}' \"$@\"; }}\n" + string.Join("\n", lines[1..].Select(Own)) + "\n";
            var r = Tool.Run("bash", ["-c", script], Repo.Root);
            Assert.True(r.ExitCode == 0, r.Stdout + r.Stderr);
            Assert.Contains("Applying xen_hello_world... completed", r.Stdout, StringComparison.Ordinal);
            Assert.Contains("xen_hello_world                         | APPLIED", r.Stdout, StringComparison.Ordinal);
            Assert.Contains("Reverting xen_hello_world... completed", r.Stdout, StringComparison.Ordinal);
            Assert.Contains("Unloading xen_hello_world... completed", r.Stdout, StringComparison.Ordinal);
            lock (log)
                Assert.Contains("vcpu0 reads XENVER_extraversion \"Hello World\"", log.ToString(), StringComparison.Ordinal);
        }
        finally
        {
            // Ctrl-C in the first terminal.
            Tool.Run("kill", ["-INT", server.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)]);
            Assert.True(server.WaitForExit(30_000));
        }
        lock (log)
        {
            // The daemon's log: timestamped lines with levels, and how often the vCPUs read what.
            Assert.Matches(@"(?m)^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z info  sandbox: serving the livepatch sysctl", log.ToString());
            Assert.Matches("(?m)info  sandbox: vcpu0 read XENVER_extraversion \"-sandbox\" [0-9,]+ times, \"Hello World\" [0-9,]+ times", log.ToString());
        }
    }
}
