using System.Text.Json;
using XenLivepatch.TestKit;

namespace XenLivepatch.Cli.Tests;

/// <summary>
/// <c>xen-livepatch info</c> against golden texts (tests/Data/golden/info). The inputs are checked in
/// (tests/Data/tooling, rebuilt by its make-fixtures.sh; and the payload and symbols recorded from Debian's
/// Xen 4.17 in tests/Data/xen-4.17/differential), so the texts do not move with the compiler.
/// </summary>
public class InfoCommandTests
{
    private static string Fixture(string name) => Repo.Path("tests", "Data", "tooling", name);

    private static string Recorded(string name) => Repo.Path("tests", "Data", "xen-4.17", "differential", name);

    private static string XenBuildId => File.ReadAllText(Recorded("build-id")).Trim();

    public static TheoryData<string, string[]> Cases => new()
    {
        { "greeting.txt", [Fixture("greeting.livepatch")] },
        { "greeting.json", [Fixture("greeting.livepatch"), "--json"] },
        { "greeting.target.txt", [Fixture("greeting.livepatch"), "--target", Fixture("xen-syms")] },
        { "greeting.target.json", [Fixture("greeting.livepatch"), "--target", Fixture("xen-syms"), "--json"] },
        { "greeting-arm64.target.txt", [Fixture("greeting-arm64.livepatch"), "--target", Fixture("xen-syms-arm64")] },
        { "xen-4.17-ok.xensyms.txt", [Recorded("corpus/ok.livepatch"), "--symbols", Recorded("xensyms"), "--build-id", XenBuildId] },
        { "xen-4.17-exec-write.xensyms.txt", [Recorded("corpus/exec_write.livepatch"), "--symbols", Recorded("xensyms"), "--build-id", XenBuildId] },
    };

    [Theory]
    [MemberData(nameof(Cases))]
    public void Info_prints_the_golden_text(string golden, string[] args)
    {
        var r = CliRun.Ours(["info", .. args]);
        Assert.Equal((0, ""), (r.ExitCode, r.Stderr));
        Golden.Assert(r.Stdout, Path.Combine("info", golden));
    }

    [Fact]
    public void The_json_is_one_object_with_the_functions_and_the_patch()
    {
        var r = CliRun.Ours("info", Fixture("greeting.livepatch"), "--target", Fixture("xen-syms"), "--json");
        using var doc = JsonDocument.Parse(r.Stdout);
        var root = doc.RootElement;
        Assert.Equal(2, root.GetProperty("functions").GetArrayLength());
        var target = root.GetProperty("target");
        Assert.True(target.GetProperty("loads").GetBoolean());
        var first = target.GetProperty("functions")[0];
        Assert.StartsWith("e9", first.GetProperty("patch").GetString(), StringComparison.Ordinal);
        Assert.StartsWith("jmp ", first.GetProperty("patched")[0].GetProperty("text").GetString(), StringComparison.Ordinal);
    }

    [Fact]
    public void Help_usage_and_input_errors_exit_0_64_65_and_66()
    {
        var help = CliRun.Ours("info", "--help");
        Assert.Equal(0, help.ExitCode);
        Assert.StartsWith("Usage: xen-livepatch info <payload>", help.Stdout, StringComparison.Ordinal);
        var none = CliRun.Ours("info");
        Assert.Equal((64, "xen-livepatch info: which payload? give its file\n(see 'xen-livepatch info --help')\n"), (none.ExitCode, none.Stderr));
        var missing = CliRun.Ours("info", "/nonexistent.livepatch");
        Assert.Equal(66, missing.ExitCode);
        Assert.StartsWith("xen-livepatch info: cannot read /nonexistent.livepatch", missing.Stderr, StringComparison.Ordinal);
        var notElf = CliRun.Ours("info", Fixture("greeting.c"));
        Assert.Equal(65, notElf.ExitCode);
        Assert.Equal($"xen-livepatch info: {Fixture("greeting.c")} is a text file, not a livepatch payload: a payload is an ELF object; this is text (a source file? 'xen-livepatch build' takes objects made by gcc -c)\n", notElf.Stderr);
    }
}
