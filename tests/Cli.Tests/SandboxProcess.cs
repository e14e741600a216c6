using System.Diagnostics;
using System.Text;
using XenLivepatch.TestKit;

namespace XenLivepatch.Cli.Tests;

/// <summary>
/// A <c>xen-livepatch sandbox</c> the tests run as an operator does in a first terminal: started on a socket,
/// its log collected from stdout, stopped with Ctrl-C (SIGINT).
/// </summary>
internal sealed class SandboxProcess : IDisposable
{
    private readonly StringBuilder _output = new();

    private SandboxProcess(Process process)
    {
        Process = process;
        process.OutputDataReceived += (_, e) => { lock (_output) _output.AppendLine(e.Data); };
        process.BeginOutputReadLine();
    }

    /// <summary>The process (its stderr is left to the test).</summary>
    public Process Process { get; }

    /// <summary>
    /// Starts <c>xen-livepatch sandbox --image</c> (the built image) <c>--socket <paramref name="socket"/></c>
    /// with <paramref name="options"/>.
    /// </summary>
    public static SandboxProcess Start(string socket, params string[] options) =>
        new(SandboxCommandTests.Start(["sandbox", "--image", SandboxBuild.Image, "--socket", socket, .. options]));

    /// <summary>
    /// A new folder name under /tmp for a socket: a Unix socket's path holds at most 107 bytes, which the test's
    /// temporary folder may leave too little of.
    /// </summary>
    public static string ShortDirectory() => Path.Combine("/tmp", "xlp-" + Guid.NewGuid().ToString("N")[..12]);

    /// <summary>What it has logged so far.</summary>
    public string Output()
    {
        lock (_output)
            return _output.ToString();
    }

    /// <summary>Waits (at most 30 s) until its log holds <paramref name="text"/>; false when it did not.</summary>
    public bool WaitFor(string text) => WaitUntil(log => log.Contains(text, StringComparison.Ordinal));

    /// <summary>Waits (at most 30 s) until its log satisfies <paramref name="condition"/>; false when it did not.</summary>
    public bool WaitUntil(Func<string, bool> condition) => Poll.Until(() => condition(Output()), 30_000, 20);

    /// <summary>Waits until it serves its socket (it says so); false when it did not within 30 s.</summary>
    public bool WaitUntilServing() => WaitFor("serving the livepatch sysctl");

    /// <summary>Ctrl-C: sends SIGINT and waits (at most 30 s) for it to exit; false when it did not.</summary>
    public bool Interrupt()
    {
        Tool.Run("kill", "-INT", Process.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)).EnsureSuccess();
        return Process.WaitForExit(30_000);
    }

    /// <inheritdoc/>
    public void Dispose() => Process.Dispose();
}
