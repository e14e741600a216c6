using XenLivepatch.Control;

namespace XenLivepatch.Cli;

/// <summary>
/// What running one of Xen's commands needs, and nothing more: the options before the command, Xen's lookup of a
/// command by prefix, and a command's run in a <see cref="Session"/>. Both binaries run Xen's commands through
/// here: the whole tool (<c>XenLivepatchTool</c>) and the front (<see cref="FrontDoor"/>), so a Xen command
/// prints the same bytes and exits the same way whichever binary ran it. Nothing here may reach our own commands,
/// the JSON writer or the tooling libraries: the front's start-up is what it links (README, "Start-up (P4)").
/// </summary>
internal static class XenDispatch
{
    private static readonly string[] s_mainCommands = ["help", "list", "upload", "load"];
    private static readonly string[] s_actionCommands = ["apply", "revert", "unload", "replace"];

    /// <summary>The Xen command <paramref name="arg"/> names: the first of which it is a prefix, main commands first.</summary>
    public static string? XenCommand(string arg) => Lookup(s_mainCommands, arg) ?? Lookup(s_actionCommands, arg);

    // The first name of which arg is a prefix, as Xen's strncmp lookup finds it.
    private static string? Lookup(string[] names, string arg) =>
        Array.Find(names, n => n.StartsWith(arg, StringComparison.Ordinal));

    /// <summary>The options before the command, in any order: --force, --xen, --sandbox PATH.</summary>
    public static bool TryOptions(string[] args, TextWriter stderr, out ToolOptions options, out int at)
    {
        options = new ToolOptions();
        at = 0;
        while (at < args.Length)
        {
            switch (args[at])
            {
                case "--force":
                    options = options with { Force = true };
                    at++;
                    continue;
                case "--xen":
                    if (options.Transport == TransportChoice.Sandbox)
                        return Conflict(stderr);
                    options = options with { Transport = TransportChoice.Xen };
                    at++;
                    continue;
                case "--sandbox":
                    if (options.Transport == TransportChoice.Xen)
                        return Conflict(stderr);
                    if (at + 1 >= args.Length)
                    {
                        stderr.Write("xen-livepatch: --sandbox needs the socket's path: --sandbox PATH <command> ...\n");
                        return false;
                    }
                    options = options with { Transport = TransportChoice.Sandbox, SandboxPath = args[at + 1] };
                    at += 2;
                    continue;
            }
            break;
        }
        return true;
    }

    private static bool Conflict(TextWriter stderr)
    {
        stderr.Write("xen-livepatch: --xen and --sandbox exclude each other: give one\n");
        return false;
    }

    /// <summary>Whether <paramref name="rest"/>, the arguments after Xen's command, ask only for its help.</summary>
    public static bool AsksHelp(string command, string[] rest) => command == "help" || rest is ["--help"] or ["-h"];

    /// <summary>Xen's own command bodies: upload, list, load and the four actions.</summary>
    public static Task<int> RunXenCommandAsync(Session session, string command, string[] args) => command switch
    {
        "list" => XenCommands.ListAsync(session, args),
        "upload" => XenCommands.UploadAsync(session, args),
        "load" => XenCommands.LoadAsync(session, args),
        _ => XenCommands.ActionAsync(session, args, XenCommands.ActionIndex(command)),
    };

    /// <summary>
    /// Runs <paramref name="body"/> in a session of <paramref name="command"/> and maps its result (0, an errno or
    /// -1) to the exit code as Xen's <c>main</c> does; a transport that fails midway is a message and exit 1.
    /// <paramref name="report"/>, when given, writes what the session recorded (the JSON) on
    /// <paramref name="stdout"/>; <paramref name="synopsis"/> names a command's arguments in JSON mode.
    /// </summary>
    public static async Task<(int Exit, bool UsageError)> InSessionAsync(string command, ToolOptions options, TextWriter stdout,
        TextWriter stderr, ToolHost host, Func<Session, Task<int>> body, Func<Session, int, string>? report,
        Func<string, string>? synopsis, CancellationToken cancellationToken)
    {
        await using var session = new Session(command, options, stdout, stderr, host, cancellationToken, synopsis);
        int result;
        try
        {
            result = await body(session).ConfigureAwait(false);
        }
        catch (LivepatchTransportException e)
        {
            stderr.Write($"xen-livepatch: {e.Message}\n");
            return (ExitCodes.Failure, false);
        }
        int exit = ExitCodes.FromResult(result);
        if (report != null)
            stdout.Write(report(session, exit));
        return (exit, session.UsageError);
    }
}
