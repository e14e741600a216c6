using XenLivepatch.TestKit;

namespace XenLivepatch.Cli.Tests;

/// <summary>
/// Our tool prints what Debian's Xen 4.17.7 <c>xen-livepatch</c> prints, on the same stream, with the same
/// exit code. The oracle is the real C tool, fetched from Debian by ./build.sh (tools/oracle/fetch-xen-tools.sh);
/// these cases need no hypervisor.
/// </summary>
public class XenParityTests
{
    private static string Oracle
    {
        get
        {
            string path = Repo.Path("artifacts", "oracle", "xen-4.17", "xen-livepatch");
            Assert.True(File.Exists(path), $"Debian's xen-livepatch is missing at {path}: run ./build.sh, or tools/oracle/fetch-xen-tools.sh");
            return path;
        }
    }

    private static CliRun Theirs(params string[] args)
    {
        var r = Tool.Run(Oracle, args);
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

    [Theory, MemberData(nameof(Cases))]
    public void Prints_what_xens_tool_prints(string[] args)
    {
        Assert.Equal(Theirs(args), CliRun.Ours(args));
    }

    [Fact]
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

    [Fact]
    public void Force_comes_first_as_in_newer_xen()
    {
        // Alone it prints the help and fails; before a command it is accepted (4.17.7 itself predates --force).
        var alone = CliRun.Ours("--force");
        Assert.Equal((1, ""), (alone.ExitCode, alone.Stdout));
        Assert.Equal(Theirs().Stderr, alone.Stderr);
        Assert.Equal(CliRun.Ours("nonsense"), CliRun.Ours("--force", "nonsense"));
        Assert.Equal(0, CliRun.Ours("--force", "help").ExitCode);
    }

    [Theory]
    [InlineData("h", "help")]
    [InlineData("", "help")]
    [InlineData("l", "list")]
    [InlineData("li", "list")]
    [InlineData("lo", "load")]
    [InlineData("up", "upload")]
    public void Commands_may_be_abbreviated_as_xen_allows(string arg, string command)
    {
        Assert.Equal(command, XenLivepatchTool.Lookup(["help", "list", "upload", "load"], arg));
    }

    [Theory]
    [InlineData("a", "apply")]
    [InlineData("re", "revert")]
    [InlineData("rep", "replace")]
    [InlineData("u", "unload")]
    public void Actions_may_be_abbreviated_as_xen_allows(string arg, string command)
    {
        Assert.Equal(command, XenLivepatchTool.Lookup(["apply", "revert", "unload", "replace"], arg));
    }

    [Fact]
    public void Help_options_are_our_addition()
    {
        // Xen's text, then our options and commands.
        var ours = CliRun.Ours("--help");
        Assert.Equal(new CliRun(0, "", Usage.Help + XenLivepatchTool.GlobalOptionsHelp), ours);
        Assert.Equal(ours, CliRun.Ours("-h"));
        Assert.Contains("--sandbox PATH", ours.Stderr, StringComparison.Ordinal);
        // After one of Xen's commands, alone, it prints Xen's help and succeeds.
        Assert.Equal(new CliRun(0, "", Usage.Help), CliRun.Ours("apply", "--help"));
        Assert.Equal(new CliRun(0, "", Usage.Help), CliRun.Ours("list", "-h"));
    }
}
