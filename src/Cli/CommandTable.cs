namespace XenLivepatch.Cli;

/// <summary>One run of one command: its arguments (the options before it and <c>--json</c> taken out) and surroundings.</summary>
/// <param name="Command">The command's full name (an abbreviation of Xen's resolved).</param>
/// <param name="Args">The arguments after the command's name, without <c>--json</c>.</param>
/// <param name="Options">The options before the command, and whether <c>--json</c> was given anywhere.</param>
/// <param name="Stdout">Where its results go (a buffer in JSON mode).</param>
/// <param name="Stderr">Where its diagnostics go.</param>
/// <param name="Host">How to reach the hypervisor and how to wait.</param>
/// <param name="CancellationToken">Stops it.</param>
internal sealed record Invocation(string Command, string[] Args, ToolOptions Options, TextWriter Stdout, TextWriter Stderr, ToolHost Host,
    CancellationToken CancellationToken)
{
    /// <summary>Set by a command in JSON mode when its failure was a wrong command line (the JSON's "error": "usage").</summary>
    public bool UsageError { get; set; }
}

/// <summary>A command of the tool: what <c>--help</c> lists, what "did you mean" offers, what completion completes.</summary>
/// <param name="Name">Its full name.</param>
/// <param name="Synopsis">Its arguments, for the one-line listing.</param>
/// <param name="Summary">One line saying what it does.</param>
/// <param name="Xen">Xen's command (Xen's texts and exit codes; any prefix of the name selects it, Xen's way).</param>
/// <param name="Help">Its own help text, printed on stdout for <c>--help</c> anywhere among its arguments; null for
/// Xen's commands, whose <c>--help</c> prints Xen's help on stderr.</param>
/// <param name="Run">Runs it.</param>
/// <param name="LogsOnStdout">It runs until stopped and logs on stdout (a service): with <c>--json</c> the log goes to
/// stderr, so the JSON object is the only thing on stdout.</param>
internal sealed record ToolCommand(string Name, string Synopsis, string Summary, bool Xen, string? Help, Func<Invocation, Task<int>> Run,
    bool LogsOnStdout = false);

/// <summary>
/// Every command, once: the dispatcher runs them from here, <c>--help</c> lists them, "did you mean" and the
/// completion script offer their names. A new command is one row.
/// </summary>
internal static class CommandTable
{
    private static Func<Invocation, Task<int>> Sync(Func<Invocation, int> run) => i => Task.FromResult(run(i));

    private static Func<Invocation, Task<int>> Hypervisor(string name) => i => XenLivepatchTool.RunHypervisorCommand(name, i);

    /// <summary>Xen's commands, in the order of Xen's help.</summary>
    public static IReadOnlyList<ToolCommand> Xen { get; } =
    [
        new("help", "", "display Xen's help", true, null, _ => Task.FromResult(ExitCodes.Success)),
        new("upload", "<name> <file>", "upload file <file> with <name> name", true, null, Hypervisor("upload")),
        new("list", "[--installed]", "list payloads uploaded (--installed, ours: the install store's)", true, null, Hypervisor("list")),
        new("apply", "<name> [--nodeps]", "apply <name> patch", true, null, Hypervisor("apply")),
        new("revert", "<name>", "revert name <name> patch", true, null, Hypervisor("revert")),
        new("replace", "<name>", "apply <name> patch and revert all others", true, null, Hypervisor("replace")),
        new("unload", "<name>", "unload name <name> patch", true, null, Hypervisor("unload")),
        new("load", "<file> [--nodeps]", "upload and apply <file> with name as the <file> name", true, null, Hypervisor("load")),
    ];

    /// <summary>Our commands, matched by their full name only.</summary>
    public static IReadOnlyList<ToolCommand> Ours { get; } =
    [
        new("get", "<name>", "one payload's state, rc, metadata, build-ids and patched functions", false, GetCommand.Help, Hypervisor("get")),
        new("buildid", "", "the running hypervisor's build-id", false, HostCommands.BuildIdHelp, Hypervisor("buildid")),
        new("dump", "", "what Xen's debug key 'x' prints: every payload, its memory and functions", false, HostCommands.DumpHelp, Hypervisor("dump")),
        new("install", "<payload>...", "keep payloads in the install store of their hypervisor, applied at every boot", false,
            StoreCommands.InstallHelp, i => StoreCommands.InstallAsync(i.Args, i.Options, i.Stdout, i.Stderr, i.Host, i.CancellationToken)),
        new("uninstall", "<name>...", "remove payloads from the install store", false,
            StoreCommands.UninstallHelp, i => StoreCommands.UninstallAsync(i.Args, i.Options, i.Stdout, i.Stderr, i.Host, i.CancellationToken)),
        new("apply-installed", "", "apply the installed payloads (the boot unit runs it; idempotent)", false,
            StoreCommands.ApplyInstalledHelp, i => StoreCommands.ApplyInstalledAsync(i.Args, i.Options, i.Stdout, i.Stderr, i.Host, i.CancellationToken)),
        new("converge", "<dir|manifest>", "make the loaded and applied payloads exactly a desired set", false,
            ConvergeCommand.Help, i => ConvergeCommand.RunAsync(i.Args, i.Options, i.Stdout, i.Stderr, i.Host, i.CancellationToken)),
        new("check", "<payload> ...", "the upload and apply checks offline, against a hypervisor image or symbol list", false,
            CheckCommand.Help, Sync(i => CheckCommand.Run(i.Args, i.Stdout, i.Stderr, i.Options))),
        new("build", "-o OUT ...", "link replacement objects into a payload for a target", false,
            BuildCommand.Help, Sync(i => BuildCommand.Run(i.Args, i.Stdout, i.Stderr, i.Options))),
        new("diff", "<orig.o> <patched.o> ...", "the functions that changed between two objects, as a replacement object", false,
            DiffCommand.Help, Sync(i => DiffCommand.Run(i.Args, i.Stdout, i.Stderr, i.Options))),
        new("build-source", "...", "a payload from a Xen tree and a source patch (livepatch-build's job)", false,
            BuildSourceCommand.Help, Sync(i => BuildSourceCommand.Run(i.Args, i.Stdout, i.Stderr, i.Options, i.Host))),
        new("sign", "<payload> ...", "sign a payload (appended PKCS#7 or ELF note)", false,
            SignCommand.Help, Sync(i => SignCommand.Run(i.Args, i.Stdout, i.Stderr, i.Options))),
        new("info", "<file>", "what a payload holds (and, with a target, what it would write); what any other file is", false,
            InfoCommand.Help, Sync(i => InfoCommand.Run(i.Args, i.Stdout, i.Stderr, i.Options))),
        new("sandbox", "[options]", "run the sandbox hypervisor in the foreground, serving its socket", false,
            SandboxCommand.Help, Sync(i => SandboxCommand.Run(i.Args, i.Stdout, i.Stderr)), LogsOnStdout: true),
        new("demo", "[options]", "live-patch the sandbox while its vCPUs run, and show it", false,
            DemoCommand.Help, Sync(i => DemoCommand.Run(i.Args, i.Stdout, i.Stderr))),
        new("completion", "bash", "the bash completion script", false, DocsCommand.CompletionHelp, Sync(i => DocsCommand.Completion(i.Args, i.Stdout, i.Stderr))),
        new("man", "", "the manual page (troff), made from these help texts", false, DocsCommand.ManHelp, Sync(i => DocsCommand.Man(i.Args, i.Stdout, i.Stderr))),
    ];

    /// <summary>Every command: Xen's, then ours.</summary>
    public static IEnumerable<ToolCommand> All => Xen.Concat(Ours);

    /// <summary>Our command named exactly <paramref name="name"/>, or null.</summary>
    public static ToolCommand? Our(string name) => Ours.FirstOrDefault(c => c.Name == name);

    /// <summary>The command <paramref name="name"/> names (full name), or null.</summary>
    public static ToolCommand? Named(string name) => All.FirstOrDefault(c => c.Name == name);
}
