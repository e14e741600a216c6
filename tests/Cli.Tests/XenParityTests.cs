using XenLivepatch.TestKit;

namespace XenLivepatch.Cli.Tests;

/// <summary>
/// Our tool prints what Debian's Xen 4.17.7 <c>xen-livepatch</c> prints, on the same stream, with the same
/// exit code. The oracle is the real C tool, fetched from Debian by ./build.sh (tools/oracle/fetch-xen-tools.sh);
/// these cases need no hypervisor.
/// </summary>
public class XenParityTests
{
    private static CliRun Theirs(params string[] args)
    {
        var r = Tool.Run(XenOracle.Path, args);
        return new CliRun(r.ExitCode, r.Stdout, r.Stderr);
    }

    public static TheoryData<string[]> Cases => new()
    {
        Array.Empty<string>(),
        new[] { "nonsense" },
        new[] { "--nodeps" },
        new[] { "listing" },
        new[] { "applyx", "name" },
        new[] { "HELP" },
    };

    [XenOracleTheory, MemberData(nameof(Cases))]
    public void Prints_what_xens_tool_prints(string[] args)
    {
        var theirs = Theirs(args);
        var ours = CliRun.Ours(args);
        // Our one addition: after Xen's line for an unknown command, the command it may have meant (applyx: apply).
        Assert.StartsWith(theirs.Stderr, ours.Stderr, StringComparison.Ordinal);
        string added = ours.Stderr[theirs.Stderr.Length..];
        Assert.Equal(theirs, ours with { Stderr = theirs.Stderr });
        Assert.Equal(args is ["applyx", ..] ? "xen-livepatch: did you mean 'apply'? ('xen-livepatch --help' lists every command)\n" : "", added);
    }

    [XenOracleFact]
    public void Help_is_xens_usage_text_on_stderr_with_exit_0()
    {
        var ours = CliRun.Ours("help");
        Assert.Equal(0, ours.ExitCode);
        Assert.Equal("", ours.Stdout);
        // Xen's C tool opens its hypervisor handle before running any command, help included, so without Xen
        // it cannot print its help for "help"; with no arguments it prints the same text.
        Assert.Equal(Theirs().Stderr, ours.Stderr);
        Assert.StartsWith("xen-livepatch: live patching tool\nUsage: xen-livepatch <command> [args] [command-flags]\n", ours.Stderr, StringComparison.Ordinal);
    }

    [Fact]
    public void Unknown_commands_get_xens_message_and_exit_1()
    {
        var ours = CliRun.Ours("frobnicate", "x");
        Assert.Equal(new CliRun(1, "", "Unrecognised command 'frobnicate' -- try 'xen-livepatch help'\n"), ours);
    }

    [XenOracleFact]
    public void Force_comes_first_as_in_newer_xen()
    {
        // Alone it prints the help and fails; before a command it is accepted (4.17.7 itself predates --force).
        var alone = CliRun.Ours("--force");
        Assert.Equal((1, ""), (alone.ExitCode, alone.Stdout));
        Assert.Equal(Theirs().Stderr, alone.Stderr);
        Assert.Equal(CliRun.Ours("nonsense"), CliRun.Ours("--force", "nonsense"));
        Assert.Equal(0, CliRun.Ours("--force", "help").ExitCode);
    }

    // Xen looks a command up in help, list, upload, load, then in apply, revert, unload, replace, and takes the
    // first it is a prefix of (reference §5.1): "u" is upload, "re" revert. Each abbreviation runs against a
    // hypervisor holding xen_hello_world (CHECKED), where every command answers its own way, and must do what the
    // command in full does.
    [Theory]
    [InlineData("", "help")]
    [InlineData("h", "help")]
    [InlineData("l", "list")]
    [InlineData("li", "list")]
    [InlineData("lo", "load")]
    [InlineData("u", "upload")]
    [InlineData("up", "upload")]
    [InlineData("a", "apply")]
    [InlineData("re", "revert")]
    [InlineData("rep", "replace")]
    [InlineData("un", "unload")]
    public void Commands_may_be_abbreviated_as_xen_allows(string abbreviation, string command)
    {
        string[] arguments = command switch
        {
            "help" or "list" => [],
            "upload" => ["second", Payloads.Hello],
            "load" => [Payloads.Hello],
            _ => ["xen_hello_world"],
        };
        CliRun Run(string name)
        {
            var xen = OfflineXen.Create();
            Assert.Equal(0, CliRun.With(xen, "upload", "xen_hello_world", Payloads.Hello).ExitCode);
            return CliRun.With(xen, [name, .. arguments]);
        }

        var full = Run(command);
        string what = command switch
        {
            "help" => "xen-livepatch: live patching tool\n",
            "list" => "xen_hello_world ",
            "upload" or "load" => $"Uploading {Payloads.Hello}... ",
            "apply" => "Applying xen_hello_world... ",
            "revert" => "No action needed.\n",
            "unload" => "Unloading xen_hello_world... ",
            _ => "Replacing all live patches with xen_hello_world... ",
        };
        Assert.Contains(what, full.Stdout + full.Stderr, StringComparison.Ordinal);
        Assert.Equal(full, Run(abbreviation));
    }

    [XenOracleFact]
    public void Help_is_xens_and_dash_dash_help_lists_every_command()
    {
        // 'help' is Xen's text, as Debian's tool prints it; '--help' is ours: every command, on stdout.
        string xens = Theirs().Stderr;
        Assert.Equal(new CliRun(0, "", xens), CliRun.Ours("help"));
        var ours = CliRun.Ours("--help");
        Assert.Equal((0, ""), (ours.ExitCode, ours.Stderr));
        Assert.Equal(ours, CliRun.Ours("-h"));
        foreach (string option in new[] { "--xen", "--sandbox PATH", "--json", "--force", "--version" })
            Assert.Contains($"\n  {option} ", ours.Stdout, StringComparison.Ordinal);
        // Every command it lists, Xen's and ours, describes itself; ours by full name only.
        string[] listed = [.. ours.Stdout.Split('\n')
            .Where(line => line.StartsWith("  ", StringComparison.Ordinal) && line.Length > 2 && char.IsAsciiLetterLower(line[2]))
            .Select(line => line.Trim().Split(' ')[0])];
        Assert.Equal(["help", "upload", "list", "apply", "revert", "replace", "unload", "load", "get", "buildid", "dump", "install", "uninstall", "apply-installed", "converge",
            "check", "build", "diff", "build-source", "sign", "info", "sandbox", "demo", "completion", "man"], listed);
        foreach (string command in listed)
        {
            var help = CliRun.Ours(command, "--help");
            Assert.True(help.ExitCode == 0 && help.Stdout.Length + help.Stderr.Length > 0, $"{command} --help: {help}");
            if (CommandTable.Our(command) != null)
                Assert.StartsWith(Usage.Unrecognised(command[..^1]), CliRun.Ours(command[..^1], "--help").Stderr, StringComparison.Ordinal);
        }
        Assert.StartsWith("Usage: xen-livepatch [--xen | --sandbox PATH] list --installed", CliRun.Ours("list", "--installed", "--help").Stdout, StringComparison.Ordinal);
        // After one of Xen's commands, alone, it prints Xen's help and succeeds.
        Assert.Equal(new CliRun(0, "", xens), CliRun.Ours("apply", "--help"));
        Assert.Equal(new CliRun(0, "", xens), CliRun.Ours("list", "-h"));
    }
}
