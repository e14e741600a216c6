using System.Globalization;
using System.Text;

namespace XenLivepatch.Cli;

/// <summary>
/// The command dispatcher, as Xen's <c>main</c> does it: options before the command (Xen's <c>--force</c>; ours:
/// <c>--xen</c>, <c>--sandbox PATH</c>, <c>--json</c>), then the command looked up first among
/// <c>help, list, upload, load</c> and then among <c>apply, revert, unload, replace</c>, where the argument may be
/// any prefix of a name (Xen 4.17 compares with <c>strncmp(name, arg, strlen(arg))</c>, so <c>l</c> is
/// <c>list</c> and an empty argument is <c>help</c>). Our own commands (<see cref="CommandTable"/>) follow, matched
/// by their full name only, so that every abbreviation keeps meaning what it means to Xen's tool. What applies to
/// every command is done here, once: <c>--json</c> anywhere (<see cref="JsonEnvelope"/>), <c>--help</c> and
/// <c>--version</c>, <c>&lt;command&gt; --help</c>, "did you mean" for a mistyped command.
/// </summary>
public static class XenLivepatchTool
{
    /// <summary>The options before the command, as <c>--help</c> lists them.</summary>
    internal const string OptionsHelp = """
        Options (before the command; --json may also come after it):
          --xen                  talk to real Xen through /dev/xen/privcmd (the default when it exists)
          --sandbox PATH         talk to the sandbox hypervisor's socket at PATH (default: $XEN_LIVEPATCH_SANDBOX,
                                 else /run/xen-livepatch/sandbox.sock; used when /dev/xen/privcmd is absent)
          --force                upload with LIVEPATCH_FLAG_FORCE (newer Xen's option; Xen 4.17 refuses it)
          --json                 print one JSON object on stdout (schemas/xen-livepatch.schema.json), exit codes unchanged
          --help, -h             this list; '<command> --help' describes one command
          --version              our version, its commit, the sysctl interfaces and profiles it speaks

        """;

    /// <summary>The exit codes of every command, as <c>--help</c> lists them (the README has the same table).</summary>
    internal const string ExitCodesHelp = """
        Exit status:
          0   success; check: the payload would be accepted
          1   failure; check: refused (the errno is in the message and the JSON); an unknown command
          2   retry: the hypervisor is busy (Xen's EAGAIN, EBUSY)
          64  a wrong command line (our commands)
          65  what was asked cannot be made (build, sign); info: the file is not a payload
          66  an input cannot be read
          73  the output cannot be written
          80  diff, build-source: a patch does not apply
          81  build-source: the tree does not build
          82  diff, build-source: objects that cannot be compared (other compiler or flags)
          83  diff, build-source: nothing to patch

        """;

    /// <summary>Runs the tool with <paramref name="args"/> (without the program name) against the real surroundings.</summary>
    public static int Run(string[] args, TextWriter stdout, TextWriter stderr) =>
        RunAsync(args, stdout, stderr, ToolHost.Default).GetAwaiter().GetResult();

    /// <summary>Runs the tool; returns the exit code.</summary>
    public static async Task<int> RunAsync(string[] args, TextWriter stdout, TextWriter stderr, ToolHost host, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(args);
        ArgumentNullException.ThrowIfNull(stdout);
        ArgumentNullException.ThrowIfNull(stderr);
        ArgumentNullException.ThrowIfNull(host);
        if (!args.Contains("--json"))
            return await DispatchAsync(new Dispatch(args, stdout, stderr, host, Json: false, cancellationToken)).ConfigureAwait(false);

        // The JSON contract: whatever the command prints on stdout is collected and put inside one object; what it
        // says on stderr is still said there (a person may be watching) and becomes the message of a failure.
        var body = new StringWriter(CultureInfo.InvariantCulture);
        var diagnostics = new TeeWriter(stderr);
        var d = new Dispatch(args.Where(a => a != "--json").ToArray(), body, diagnostics, host, Json: true, cancellationToken);
        int exit = await DispatchAsync(d).ConfigureAwait(false);
        stdout.Write(JsonEnvelope.Compose(d.Command, exit, body.ToString(), diagnostics.Text, d.ErrorKind));
        return exit;
    }

    // One run's surroundings, and what the dispatcher learnt for the JSON envelope.
    private sealed record Dispatch(string[] Args, TextWriter Stdout, TextWriter Stderr, ToolHost Host, bool Json, CancellationToken CancellationToken)
    {
        public string? Command { get; set; }
        public string? ErrorKind { get; set; }
    }

    private static async Task<int> DispatchAsync(Dispatch d)
    {
        string[] args = d.Args;
        var stdout = d.Stdout;
        var stderr = d.Stderr;
        if (args.Length == 0)
        {
            stderr.Write(Usage.Help);
            return ExitCodes.Success;
        }
        if (!XenDispatch.TryOptions(args, stderr, out var options, out int at))
        {
            d.ErrorKind = "usage";
            return ExitCodes.Failure;
        }
        options = options with { Json = d.Json };
        if (at == args.Length)
        {
            // Newer Xen: --force needs a command after it; so do ours.
            stderr.Write(Usage.Help);
            d.ErrorKind = "usage";
            return ExitCodes.Failure;
        }
        string command = args[at];
        string[] rest = args[(at + 1)..];

        // Our additions: --help and -h list every command (Xen 4.17.7 calls them unrecognised commands); --version.
        if (command is "--help" or "-h")
        {
            d.Command = "--help";
            stdout.Write(Listing());
            return ExitCodes.Success;
        }
        if (command is "--version")
        {
            d.Command = "--version";
            stdout.Write(d.Json ? VersionInfo.Json() : VersionInfo.Text());
            return ExitCodes.Success;
        }

        var found = XenDispatch.XenCommand(command) is { } xen ? CommandTable.Named(xen) : CommandTable.Our(command);
        if (found == null)
        {
            d.Command = command;
            stderr.Write(Usage.Unrecognised(command));
            if (Suggest(command) is { Count: > 0 } similar)
                stderr.Write($"xen-livepatch: did you mean {string.Join(" or ", similar.Select(s => $"'{s}'"))}? ('xen-livepatch --help' lists every command)\n");
            d.ErrorKind = "unknown_command";
            return ExitCodes.Failure;
        }
        d.Command = found.Name;
        if (found.Xen)
        {
            // Our addition to Xen's list: the install store's payloads.
            if (found.Name == "list" && rest.Contains("--installed"))
            {
                if (rest.Contains("--help") || rest.Contains("-h"))
                {
                    stdout.Write(StoreCommands.ListInstalledHelp);
                    return ExitCodes.Success;
                }
                return await StoreCommands.ListInstalledAsync(rest, options, stdout, stderr, d.Host, d.CancellationToken).ConfigureAwait(false);
            }
            // Our addition: '<command> --help' alone describes it (Xen's help text, on stderr as Xen prints it).
            if (XenDispatch.AsksHelp(found.Name, rest))
            {
                (d.Json ? stdout : stderr).Write(Usage.Help);
                return ExitCodes.Success;
            }
        }
        else if (found.Help != null && (rest.Contains("--help") || rest.Contains("-h")))
        {
            stdout.Write(found.Help);
            return ExitCodes.Success;
        }
        var invocation = new Invocation(found.Name, rest, options, found.LogsOnStdout && d.Json ? stderr : stdout, stderr, d.Host, d.CancellationToken);
        int exit = await found.Run(invocation).ConfigureAwait(false);
        if (invocation.UsageError)
            d.ErrorKind = "usage";
        return exit;
    }

    /// <summary>What <c>--help</c> prints on stdout: every command with one line, the options, the exit codes.</summary>
    internal static string Listing()
    {
        var sb = new StringBuilder();
        sb.Append("xen-livepatch: live patching tool (Xen's commands and texts, and our own)\n");
        sb.Append("Usage: xen-livepatch [options] <command> [args]\n");
        sb.Append("Xen's commands (any prefix of the name selects one, as in Xen's tool; 'help' prints Xen's help):\n");
        foreach (var c in CommandTable.Xen)
            sb.Append(Line(c));
        sb.Append("Our commands (full names only):\n");
        foreach (var c in CommandTable.Ours)
            sb.Append(Line(c));
        sb.Append(OptionsHelp);
        sb.Append(ExitCodesHelp);
        return sb.ToString();
    }

    private static string Line(ToolCommand c)
    {
        string left = c.Synopsis.Length == 0 ? c.Name : $"{c.Name} {c.Synopsis}";
        return left.Length < 23 ? $"  {left,-23}{c.Summary}\n" : $"  {left}\n  {"",-23}{c.Summary}\n";
    }

    /// <summary>
    /// The commands <paramref name="typed"/> may have meant: those at the smallest edit distance (insertions,
    /// deletions, substitutions, swaps of neighbours), if it is small for the name's length.
    /// </summary>
    internal static IReadOnlyList<string> Suggest(string typed)
    {
        if (typed.Length == 0 || typed.StartsWith('-'))
            return [];
        var scored = CommandTable.All
            .Select(c => (c.Name, Distance: Distance(typed, c.Name)))
            .Where(s => s.Distance <= Math.Max(1, Math.Min(3, s.Name.Length / 3)))
            .ToList();
        if (scored.Count == 0)
            return [];
        int best = scored.Min(s => s.Distance);
        return scored.Where(s => s.Distance == best).Select(s => s.Name).ToList();
    }

    // Optimal string alignment distance.
    private static int Distance(string a, string b)
    {
        var d = new int[a.Length + 1, b.Length + 1];
        for (int i = 0; i <= a.Length; i++)
            d[i, 0] = i;
        for (int j = 0; j <= b.Length; j++)
            d[0, j] = j;
        for (int i = 1; i <= a.Length; i++)
        {
            for (int j = 1; j <= b.Length; j++)
            {
                int cost = a[i - 1] == b[j - 1] ? 0 : 1;
                d[i, j] = Math.Min(Math.Min(d[i - 1, j] + 1, d[i, j - 1] + 1), d[i - 1, j - 1] + cost);
                if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1])
                    d[i, j] = Math.Min(d[i, j], d[i - 2, j - 2] + 1);
            }
        }
        return d[a.Length, b.Length];
    }

    /// <summary>Runs a command that talks to the hypervisor through a <see cref="Session"/>.</summary>
    internal static async Task<int> RunHypervisorCommand(string command, Invocation i)
    {
        Func<Session, int, string>? report = !i.Options.Json ? null : command switch
        {
            "get" => GetCommand.Json,
            "buildid" => HostCommands.BuildIdJson,
            "dump" => HostCommands.DumpJson,
            _ => JsonReport.Write,
        };
        var (exit, usageError) = await XenDispatch.InSessionAsync(command, i.Options, i.Stdout, i.Stderr, i.Host,
            session => command switch
            {
                "get" => GetCommand.RunAsync(session, i.Args),
                "buildid" => HostCommands.BuildIdAsync(session, i.Args),
                "dump" => HostCommands.DumpAsync(session, i.Args),
                _ => XenDispatch.RunXenCommandAsync(session, command, i.Args),
            }, report, name => CommandTable.Named(name)?.Synopsis ?? "", i.CancellationToken).ConfigureAwait(false);
        i.UsageError = usageError;
        return exit;
    }
}
