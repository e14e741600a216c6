using XenLivepatch.Control;
using XenLivepatch.TestKit;

namespace XenLivepatch.Cli.Tests;

/// <summary>What one run of the tool printed and returned.</summary>
public sealed record CliRun(int ExitCode, string Stdout, string Stderr)
{
    /// <summary>Runs our tool in-process with captured writers and the real surroundings (no hypervisor here).</summary>
    public static CliRun Ours(params string[] args)
    {
        var stdout = new StringWriter();
        var stderr = new StringWriter();
        int code = XenLivepatchTool.Run(args, stdout, stderr);
        return new CliRun(code, stdout.ToString(), stderr.ToString());
    }

    /// <summary>A host whose hypervisor is <paramref name="xen"/> (in-process) and whose waits are counted, not slept.</summary>
    public static ToolHost Host(OfflineXen xen, List<TimeSpan>? waits = null) => new()
    {
        OpenTransport = (_, _, _) => Task.FromResult(TransportOpenResult.Opened(xen.Transport())),
        Delay = (t, _) =>
        {
            waits?.Add(t);
            return Task.CompletedTask;
        },
    };

    /// <summary>Runs our tool in-process against <paramref name="xen"/>.</summary>
    public static CliRun With(OfflineXen xen, params string[] args) => With(Host(xen), args);

    /// <summary>Runs our tool in-process with <paramref name="host"/>.</summary>
    public static CliRun With(ToolHost host, params string[] args)
    {
        var stdout = new StringWriter();
        var stderr = new StringWriter();
        int code = XenLivepatchTool.RunAsync(args, stdout, stderr, host).GetAwaiter().GetResult();
        return new CliRun(code, stdout.ToString(), stderr.ToString());
    }

    /// <summary>Runs our tool with stdout and stderr into one writer, to see how they interleave.</summary>
    public static string Interleaved(OfflineXen xen, params string[] args)
    {
        var both = new StringWriter();
        XenLivepatchTool.RunAsync(args, both, both, Host(xen)).GetAwaiter().GetResult();
        return both.ToString();
    }
}
