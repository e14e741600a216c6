using System.Text.Json;
using XenLivepatch.TestKit;

namespace XenLivepatch.Cli.Tests;

/// <summary>
/// The front binary (xen-livepatch) runs Xen's commands itself and hands every other command line to the whole tool
/// (xen-livepatch-full): what it keeps must print and exit exactly as the whole tool does, and what it hands over
/// must reach the whole tool unchanged, or say what is missing.
/// </summary>
public class FrontDoorTests
{
    [Theory]
    [InlineData("list", "list")]
    [InlineData("l", "list")]
    [InlineData("", "help")]
    [InlineData("help", "help")]
    [InlineData("upload x f", "upload")]
    [InlineData("a x", "apply")]
    [InlineData("apply x --nodeps", "apply")]
    [InlineData("rev x", "revert")]
    [InlineData("rep x", "replace")]
    [InlineData("u x f", "upload")]
    [InlineData("unl x", "unload")]
    [InlineData("lo f", "load")]
    [InlineData("--force upload x f", "upload")]
    [InlineData("--sandbox /s list", "list")]
    [InlineData("--xen apply x", "apply")]
    [InlineData("apply --help", "apply")]
    [InlineData("--json list", null)]
    [InlineData("list --json", null)]
    [InlineData("list --installed", null)]
    [InlineData("get x", null)]
    [InlineData("info f", null)]
    [InlineData("build -o o x.o", null)]
    [InlineData("sandbox", null)]
    [InlineData("--help", null)]
    [InlineData("-h", null)]
    [InlineData("--version", null)]
    [InlineData("aply x", null)]
    [InlineData("--xen --sandbox /s list", null)]
    [InlineData("--sandbox", null)]
    [InlineData("--force", null)]
    public void Xen_commands_without_json_stay_in_the_front_and_the_rest_go_to_the_whole_tool(string line, string? runs)
    {
        string[] args = line == "" ? [""] : line.Split(' ');
        Assert.Equal(runs, FrontDoor.Runs(args, out _, out _));
        Assert.Null(FrontDoor.Runs([], out _, out _));
    }

    [Fact]
    public async Task What_the_front_runs_prints_and_exits_as_the_whole_tool_does()
    {
        string dir = Repo.TempDirectory("front-door");
        string wrong = Path.Combine(dir, "not-a-payload.livepatch");
        File.WriteAllText(wrong, "not ELF");
        string[][] steps =
        [
            ["help"], [""], ["list"], ["upload", "xen_hello_world", Payloads.Hello], ["upload", "xen_hello_world", Payloads.Hello],
            ["l"], ["apply", "nope"], ["a", "xen_hello_world"], ["list"], ["apply", "xen_hello_world"], ["revert", "xen_hello_world"],
            ["upload", "xen_bye_world", Payloads.Bye], ["apply", "xen_bye_world"], ["apply", "xen_hello_world"], ["apply", "xen_bye_world"],
            ["replace", "xen_hello_world"], ["list"], ["rev", "xen_hello_world"], ["unload", "xen_bye_world"], ["unl", "xen_hello_world"],
            ["load", Payloads.WithData], ["load", Payloads.Nop, "--nodeps"], ["list"], ["upload", "only-a-name"], ["apply"],
            ["apply", "--help"], ["upload", "bad", wrong], ["upload", "missing", Path.Combine(dir, "missing.livepatch")],
            ["upload", new string('n', 129), Payloads.Hello], ["--force", "upload", "forced", Payloads.Hello], ["--xen", "list"],
            ["revert", "xen_counter"], ["list"],
        ];
        var whole = OfflineXen.Create();
        var front = OfflineXen.Create();
        int kept = 0;
        foreach (string[] step in steps)
        {
            var expected = CliRun.With(whole, step);
            var host = CliRun.Host(front);
            string? command = FrontDoor.Runs(step, out var options, out var rest);
            Assert.True(command != null, $"the front hands '{string.Join(' ', step)}' over");
            var stdout = new StringWriter();
            var stderr = new StringWriter();
            int exit = await FrontDoor.RunAsync(command, rest, options, stdout, stderr, host);
            Assert.Equal(expected, new CliRun(exit, stdout.ToString(), stderr.ToString()));
            kept++;
        }
        Assert.Equal(steps.Length, kept);
    }

    [Fact]
    public void The_native_front_hands_our_commands_to_the_whole_tool_beside_it()
    {
        string dir = Repo.TempDirectory("front-door-native");
        string front = NativeCli.CopyTo(dir);
        AssertRunsAsTheWholeTool(front, Path.Combine(dir, FrontDoor.FullName),
            ["--version"], ["--help"], ["info", Payloads.Hello], ["aply"], ["--json", "help"]);
    }

    // Each command line through the front prints and exits as the whole tool run directly.
    private static void AssertRunsAsTheWholeTool(string front, string full, params string[][] commandLines)
    {
        foreach (string[] args in commandLines)
        {
            var viaFront = Tool.Run(front, args);
            var direct = Tool.Run(full, args);
            Assert.Equal((direct.ExitCode, direct.Stdout, direct.Stderr), (viaFront.ExitCode, viaFront.Stdout, viaFront.Stderr));
        }
    }

    [Fact]
    public void The_front_alone_carries_the_whole_tool()
    {
        string dir = Repo.TempDirectory("front-door-alone");
        string front = Path.Combine(dir, "xen-livepatch");
        File.Copy(NativeCli.Path(), front);
        AssertRunsAsTheWholeTool(front, Path.Combine(NativeCli.Directory(), FrontDoor.FullName),
            ["--version"], ["info", Payloads.Hello], ["--json", "list", "--installed", "--store", dir]);
    }

    [Fact]
    public void A_front_with_no_whole_tool_at_all_says_where_it_looked_and_what_to_do()
    {
        string dir = Repo.TempDirectory("front-door-stripped");
        string front = Path.Combine(dir, "xen-livepatch");
        var strip = Tool.Run("objcopy", "--remove-section", FrontDoor.EmbeddedSection, NativeCli.Path(), front);
        Assert.True(strip.ExitCode == 0, strip.Stderr);
        var r = Tool.Run(front, "info", Payloads.Hello);
        Assert.Equal(1, r.ExitCode);
        Assert.Equal("", r.Stdout);
        Assert.Contains($"looked for {Path.Combine(dir, FrontDoor.FullName)}, ", r.Stderr, StringComparison.Ordinal);
        Assert.Contains($"its own {FrontDoor.EmbeddedSection} section (it has no {FrontDoor.EmbeddedSection} section)", r.Stderr, StringComparison.Ordinal);
        Assert.Contains("install both programs (install.sh does", r.Stderr, StringComparison.Ordinal);

        var json = Tool.Run(front, "--json", "info", Payloads.Hello);
        Assert.Equal(1, json.ExitCode);
        using var doc = JsonDocument.Parse(json.Stdout);
        Assert.Equal(1, doc.RootElement.GetProperty("schema_version").GetInt32());
        Assert.Equal(1, doc.RootElement.GetProperty("exit_code").GetInt32());
        Assert.Equal("failed", doc.RootElement.GetProperty("error").GetString());
        Assert.Contains(FrontDoor.FullName, doc.RootElement.GetProperty("message").GetString(), StringComparison.Ordinal);

        // Xen's commands need nothing else.
        var help = Tool.Run(front, "help");
        Assert.Equal((0, "", Usage.Help), (help.ExitCode, help.Stdout, help.Stderr));
    }
}
