namespace XenLivepatch.Cli;

/// <summary>
/// The command dispatcher, as Xen's <c>main</c> does it: an optional leading <c>--force</c>, then the command
/// looked up first among <c>help, list, upload, load</c> and then among <c>apply, revert, unload, replace</c>,
/// where the argument may be any prefix of a name (Xen compares with <c>strncmp(name, arg, strlen(arg))</c>,
/// so <c>l</c> is <c>list</c> and an empty argument is <c>help</c>). Our own commands follow, matched by their
/// full name only, so that every abbreviation keeps meaning what it means to Xen's tool.
/// </summary>
public static class XenLivepatchTool
{
    private static readonly string[] s_mainCommands = ["help", "list", "upload", "load"];
    private static readonly string[] s_actionCommands = ["apply", "revert", "unload", "replace"];

    /// <summary>Runs the tool with <paramref name="args"/> (without the program name); returns the exit code.</summary>
    public static int Run(string[] args, TextWriter stdout, TextWriter stderr)
    {
        ArgumentNullException.ThrowIfNull(args);
        if (args.Length == 0)
        {
            stderr.Write(Usage.Help);
            return ExitCodes.Success;
        }
        int at = 0;
        bool force = false;
        if (args[0] == "--force")
        {
            // Newer Xen: --force must come first and needs a command after it.
            if (args.Length == 1)
            {
                stderr.Write(Usage.Help);
                return ExitCodes.Failure;
            }
            force = true;
            at = 1;
        }
        string command = args[at];
        string[] rest = args[(at + 1)..];

        // Our addition: --help and -h print the help (Xen 4.17.7 calls them unrecognised commands).
        if (command is "--help" or "-h")
        {
            stderr.Write(Usage.Help);
            return ExitCodes.Success;
        }

        string? xen = Lookup(s_mainCommands, command) ?? Lookup(s_actionCommands, command);
        if (xen != null)
            return RunXenCommand(xen, rest, force, stdout, stderr);

        // Our own commands: full names only.
        switch (command)
        {
            case "check":
                return CheckCommand.Run(rest, stdout, stderr);
            case "sandbox":
                return SandboxCommand.Run(rest, stdout, stderr);
            case "demo":
                return DemoCommand.Run(rest, stdout, stderr);
            case "build":
                return BuildCommand.Run(rest, stdout, stderr);
            case "info":
                return InfoCommand.Run(rest, stdout, stderr);
        }

        stderr.Write(Usage.Unrecognised(command));
        return ExitCodes.Failure;
    }

    /// <summary>The first name of which <paramref name="arg"/> is a prefix, as Xen's strncmp lookup finds it.</summary>
    internal static string? Lookup(string[] names, string arg) =>
        Array.Find(names, n => n.StartsWith(arg, StringComparison.Ordinal));

    private static int RunXenCommand(string command, string[] args, bool force, TextWriter stdout, TextWriter stderr)
    {
        if (command == "help")
        {
            stderr.Write(Usage.Help);
            return ExitCodes.Success;
        }
        _ = force;
        _ = args;
        _ = stdout;
        // The hypervisor connection (privcmd, sandbox socket) arrives with the toolstack; until one is
        // reachable, say so the way Xen's tool does when it cannot open its handle.
        stderr.Write("xen-livepatch: no hypervisor to talk to: /dev/xen/privcmd is absent and this build has no other transport\n");
        stderr.Write("failed to get the handler\n");
        return ExitCodes.Failure;
    }
}
