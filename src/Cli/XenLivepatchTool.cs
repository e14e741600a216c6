using XenLivepatch.Control;

namespace XenLivepatch.Cli;

/// <summary>
/// The command dispatcher, as Xen's <c>main</c> does it: options before the command (Xen's <c>--force</c>; ours:
/// <c>--xen</c>, <c>--sandbox PATH</c>, <c>--json</c>), then the command looked up first among
/// <c>help, list, upload, load</c> and then among <c>apply, revert, unload, replace</c>, where the argument may be
/// any prefix of a name (Xen 4.17 compares with <c>strncmp(name, arg, strlen(arg))</c>, so <c>l</c> is
/// <c>list</c> and an empty argument is <c>help</c>). Our own commands follow, matched by their full name only,
/// so that every abbreviation keeps meaning what it means to Xen's tool.
/// </summary>
public static class XenLivepatchTool
{
    private static readonly string[] s_mainCommands = ["help", "list", "upload", "load"];
    private static readonly string[] s_actionCommands = ["apply", "revert", "unload", "replace"];

    /// <summary>Our options that may come before the command, besides Xen's --force.</summary>
    public const string GlobalOptionsHelp = """
        Options before the command (ours, besides newer Xen's --force):
          --xen                  talk to real Xen through /dev/xen/privcmd (the default when it exists)
          --sandbox PATH         talk to the sandbox hypervisor's socket at PATH (default: $XEN_LIVEPATCH_SANDBOX,
                                 else /run/xen-livepatch/sandbox.sock; used when /dev/xen/privcmd is absent)
          --json                 print one JSON object on stdout instead of the texts (exit codes unchanged)
        Our commands (full names only; '<command> --help' describes one):
          get <name>             one payload's state, rc, metadata, build-ids and patched functions
          buildid                the running hypervisor's build-id
          dump                   what Xen's debug key 'x' prints: every payload, its memory and functions
          install <payload>...   keep payloads in the install store of their hypervisor, applied at every boot
          uninstall <name>...    remove payloads from the install store
          list --installed       the install store's payloads and whether their files are whole
          apply-installed        apply the installed payloads (the boot unit runs it; idempotent)
          converge <dir|manifest>  make the loaded and applied payloads exactly a desired set
          check <payload> ...    the upload and apply checks offline, against a hypervisor image or symbol list
          build -o OUT ...       link replacement objects into a payload for a target
          sign <payload> ...     sign a payload (appended PKCS#7 or ELF note), for hypervisors that check signatures
          info <payload>         what a payload holds and, with a target, what it would write
          sandbox                run the sandbox hypervisor in the foreground, serving its socket
          demo                   live-patch the sandbox while its vCPUs run, and show it
          completion bash        the bash completion script
          man                    the manual page (troff), made from these help texts
        build, check and info use the running hypervisor when given no --target or --symbols and one answers.

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
        if (args.Length == 0)
        {
            stderr.Write(Usage.Help);
            return ExitCodes.Success;
        }
        if (!TryOptions(args, stderr, out var options, out int at))
            return ExitCodes.Failure;
        if (at == args.Length)
        {
            // Newer Xen: --force needs a command after it; so do ours.
            stderr.Write(Usage.Help);
            return ExitCodes.Failure;
        }
        string command = args[at];
        string[] rest = args[(at + 1)..];

        // Our addition: --help and -h print the help (Xen 4.17.7 calls them unrecognised commands).
        if (command is "--help" or "-h")
        {
            stderr.Write(Usage.Help);
            stderr.Write(GlobalOptionsHelp);
            return ExitCodes.Success;
        }

        string? xen = XenCommand(command);
        if (xen != null)
        {
            if (xen == "help")
            {
                stderr.Write(Usage.Help);
                return ExitCodes.Success;
            }
            // Our addition: '<command> --help' alone describes it (Xen's help text, on stderr as Xen prints it).
            if (rest is ["--help"] or ["-h"])
            {
                stderr.Write(Usage.Help);
                return ExitCodes.Success;
            }
            // Our addition to Xen's list: the install store's payloads.
            if (xen == "list" && rest.Contains("--installed"))
            {
                if (rest.Contains("--help") || rest.Contains("-h"))
                {
                    stdout.Write(StoreCommands.ListInstalledHelp);
                    return ExitCodes.Success;
                }
                return await StoreCommands.ListInstalledAsync(rest, options, stdout, stderr, host, cancellationToken).ConfigureAwait(false);
            }
            return await RunHypervisorCommand(xen, rest, options, stdout, stderr, host, cancellationToken).ConfigureAwait(false);
        }

        // Our own commands: full names only.
        if (OwnHelp(command) is { } help && (rest.Contains("--help") || rest.Contains("-h")))
        {
            stdout.Write(help);
            return ExitCodes.Success;
        }
        switch (command)
        {
            case "buildid":
            case "dump":
                return await RunHypervisorCommand(command, rest, options, stdout, stderr, host, cancellationToken).ConfigureAwait(false);
            case "install":
                return await StoreCommands.InstallAsync(rest, options, stdout, stderr, host, cancellationToken).ConfigureAwait(false);
            case "uninstall":
                return await StoreCommands.UninstallAsync(rest, options, stdout, stderr, host, cancellationToken).ConfigureAwait(false);
            case "apply-installed":
                return await StoreCommands.ApplyInstalledAsync(rest, options, stdout, stderr, host, cancellationToken).ConfigureAwait(false);
            case "converge":
                return await ConvergeCommand.RunAsync(rest, options, stdout, stderr, host, cancellationToken).ConfigureAwait(false);
            case "completion":
                return DocsCommand.Completion(rest, stdout, stderr);
            case "man":
                return DocsCommand.Man(rest, stdout, stderr);
            case "check":
                return CheckCommand.Run(rest, stdout, stderr, options);
            case "sandbox":
                return SandboxCommand.Run(rest, stdout, stderr);
            case "demo":
                return DemoCommand.Run(rest, stdout, stderr);
            case "build":
                return BuildCommand.Run(rest, stdout, stderr, options);
            case "info":
                return InfoCommand.Run(rest, stdout, stderr, options);
            case "sign":
                return SignCommand.Run(rest, stdout, stderr);
            case "get":
                if (rest is ["--help"] or ["-h"])
                {
                    stdout.Write(GetCommand.Help);
                    return ExitCodes.Success;
                }
                return await RunHypervisorCommand("get", rest, options, stdout, stderr, host, cancellationToken).ConfigureAwait(false);
        }

        stderr.Write(Usage.Unrecognised(command));
        return ExitCodes.Failure;
    }

    /// <summary>The help of our commands that take --help anywhere, by name (null for others).</summary>
    internal static string? OwnHelp(string command) => command switch
    {
        "buildid" => HostCommands.BuildIdHelp,
        "dump" => HostCommands.DumpHelp,
        "install" => StoreCommands.InstallHelp,
        "uninstall" => StoreCommands.UninstallHelp,
        "apply-installed" => StoreCommands.ApplyInstalledHelp,
        "converge" => ConvergeCommand.Help,
        "completion" => DocsCommand.CompletionHelp,
        "man" => DocsCommand.ManHelp,
        _ => null,
    };

    // The options before the command, in any order: --force, --xen, --sandbox PATH, --json.
    private static bool TryOptions(string[] args, TextWriter stderr, out ToolOptions options, out int at)
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
                case "--json":
                    options = options with { Json = true };
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

    /// <summary>The Xen command <paramref name="arg"/> names: the first of which it is a prefix, main commands first.</summary>
    private static string? XenCommand(string arg) => Lookup(s_mainCommands, arg) ?? Lookup(s_actionCommands, arg);

    // The first name of which arg is a prefix, as Xen's strncmp lookup finds it.
    private static string? Lookup(string[] names, string arg) =>
        Array.Find(names, n => n.StartsWith(arg, StringComparison.Ordinal));

    private static async Task<int> RunHypervisorCommand(string command, string[] args, ToolOptions options, TextWriter stdout, TextWriter stderr,
        ToolHost host, CancellationToken cancellationToken)
    {
        bool json = options.Json || (command is "get" or "buildid" or "dump" && args.Contains("--json"));
        await using var session = new Session(command, options with { Json = json }, stdout, stderr, host, cancellationToken);
        int result;
        try
        {
            result = command switch
            {
                "list" => await XenCommands.ListAsync(session, args).ConfigureAwait(false),
                "upload" => await XenCommands.UploadAsync(session, args).ConfigureAwait(false),
                "load" => await XenCommands.LoadAsync(session, args).ConfigureAwait(false),
                "get" => await GetCommand.RunAsync(session, args).ConfigureAwait(false),
                "buildid" => await HostCommands.BuildIdAsync(session, args).ConfigureAwait(false),
                "dump" => await HostCommands.DumpAsync(session, args).ConfigureAwait(false),
                _ => await XenCommands.ActionAsync(session, args, XenCommands.ActionIndex(command)).ConfigureAwait(false),
            };
        }
        catch (LivepatchTransportException e)
        {
            stderr.Write($"xen-livepatch: {e.Message}\n");
            return ExitCodes.Failure;
        }
        int exit = ExitCodes.FromResult(result);
        if (json)
        {
            stdout.Write(command switch
            {
                "get" => GetCommand.Json(session, exit),
                "buildid" => HostCommands.BuildIdJson(session, exit),
                "dump" => HostCommands.DumpJson(session, exit),
                _ => JsonReport.Write(session, exit),
            });
        }
        return exit;
    }
}
