using System.Text.Json;
using XenLivepatch.Elf;
using XenLivepatch.TestKit;

namespace XenLivepatch.Cli.Tests;

/// <summary>
/// <c>xen-livepatch diff</c> as a user runs it: what it prints, its exit codes (0 written, 65 refused, 82 not
/// comparable, 83 nothing to patch, 64 usage, 66 unreadable), --json, and no output file unless it wrote one whole.
/// </summary>
public class DiffCommandTests
{
    private static readonly Lazy<DiffTree> s_string = new(() => DiffTree.Build("cli-string", DiffTree.Patch("string")));
    private static readonly Lazy<DiffTree> s_data = new(() => DiffTree.Build("cli-data", DiffTree.Patch("changed-data")));

    private static string Original => DiffTree.Original.Path("unit.o");

    private static (CliRun Run, string Output) Diff(string patched, params string[] extra)
    {
        string output = Path.Combine(Repo.TempDirectory("diff-cli"), "out.o");
        return (CliRun.Ours(["diff", Original, patched, "-o", output, .. extra]), output);
    }

    [Fact]
    public void Writes_the_changed_function_and_says_what_changed()
    {
        var (run, output) = Diff(s_string.Value.Path("unit.o"));
        Assert.Equal(0, run.ExitCode);
        Assert.Contains("changed function xen_extra_version: a reference to a string differs", run.Stdout, StringComparison.Ordinal);
        Assert.Empty(run.Stderr);
        var obj = ElfObject.FromFile(ElfFile.Read(File.ReadAllBytes(output)));
        Assert.Contains(obj.SymbolTable!.Symbols, s => s.Name == "xen_extra_version" && s.Section != null);
    }

    [Fact]
    public void A_refused_change_names_object_section_and_symbol_and_writes_nothing()
    {
        var (run, output) = Diff(s_data.Value.Path("unit.o"));
        Assert.Equal(65, run.ExitCode);
        Assert.Contains("unit.o: .data.tunable (tunable): changed initial data of an existing variable", run.Stderr, StringComparison.Ordinal);
        Assert.False(File.Exists(output));
        Assert.Empty(Directory.GetFiles(Path.GetDirectoryName(output)!));
    }

    [Fact]
    public void Nothing_to_patch_has_its_own_exit_code()
    {
        var (run, output) = Diff(Original);
        Assert.Equal(83, run.ExitCode);
        Assert.Contains("nothing to patch", run.Stderr, StringComparison.Ordinal);
        Assert.False(File.Exists(output));
    }

    [Fact]
    public void Objects_that_cannot_be_compared_have_their_own_exit_code()
    {
        var (run, _) = Diff(DiffTree.Original.Image);
        Assert.Equal(82, run.ExitCode);
        Assert.Contains("not a relocatable object", run.Stderr, StringComparison.Ordinal);
    }

    [Fact]
    public void Json_lists_changed_new_and_refused_symbols_with_their_reasons()
    {
        var (run, _) = Diff(s_data.Value.Path("unit.o"), "--json");
        Assert.Equal(65, run.ExitCode);
        using var doc = JsonDocument.Parse(run.Stdout);
        var root = doc.RootElement;
        Assert.Equal("diff", root.GetProperty("command").GetString());
        Assert.Equal(65, root.GetProperty("exit_code").GetInt32());
        Assert.Equal("refused", root.GetProperty("outcome").GetString());
        Assert.Equal(JsonValueKind.Null, root.GetProperty("output").ValueKind);
        var refused = Assert.Single(root.GetProperty("refused").EnumerateArray());
        Assert.Equal(".data.tunable", refused.GetProperty("section").GetString());
        Assert.Equal("tunable", refused.GetProperty("symbol").GetString());
        Assert.Contains("initial data", refused.GetProperty("reason").GetString(), StringComparison.Ordinal);

        var (ok, output) = Diff(s_string.Value.Path("unit.o"), "--json");
        using var written = JsonDocument.Parse(ok.Stdout);
        Assert.Equal(output, written.RootElement.GetProperty("output").GetString());
        var changed = Assert.Single(written.RootElement.GetProperty("changed").EnumerateArray());
        Assert.Equal("xen_extra_version", changed.GetProperty("hypervisor_name").GetString());
    }

    [Fact]
    public void Wrong_command_lines_and_unreadable_inputs()
    {
        Assert.Equal(64, CliRun.Ours("diff", Original).ExitCode);
        Assert.Equal(64, CliRun.Ours("diff", Original, Original).ExitCode);
        Assert.Equal(64, CliRun.Ours("diff", Original, Original, "-o", "x.o", "--bogus").ExitCode);
        var missing = CliRun.Ours("diff", Original, "/nonexistent/x.o", "-o", Path.Combine(Repo.TempDirectory("diff-cli"), "o.o"));
        Assert.Equal(66, missing.ExitCode);
        Assert.Contains("cannot read /nonexistent/x.o", missing.Stderr, StringComparison.Ordinal);
        var help = CliRun.Ours("diff", "--help");
        Assert.Equal(0, help.ExitCode);
        Assert.Contains("Usage: xen-livepatch diff", help.Stdout, StringComparison.Ordinal);
    }
}
