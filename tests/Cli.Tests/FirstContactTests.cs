using System.Text.RegularExpressions;
using XenLivepatch.TestKit;

namespace XenLivepatch.Cli.Tests;

/// <summary>
/// What a new user meets first: the command listing and the version (golden texts), "did you mean", errors that
/// name the file and say what to do (also from the NativeAOT binary, which drops the runtime's messages),
/// <c>info</c> on files that are not payloads, the sandbox given something that is not its image.
/// </summary>
public class FirstContactTests
{
    private static readonly Lazy<string> s_temp = new(() => Repo.TempDirectory("first-contact"));

    private static string Temp(string name) => Path.Combine(s_temp.Value, name);

    [Fact]
    public void Dash_dash_help_lists_every_command_on_stdout()
    {
        var r = CliRun.Ours("--help");
        Assert.Equal((0, ""), (r.ExitCode, r.Stderr));
        Golden.Assert(r.Stdout, Path.Combine("cli", "help.txt"));
        foreach (var c in CommandTable.All)
            Assert.Contains($"\n  {c.Name}", r.Stdout, StringComparison.Ordinal);
    }

    [Fact]
    public void Every_command_has_help_that_exits_0()
    {
        foreach (var c in CommandTable.All)
        {
            foreach (string flag in new[] { "--help", "-h" })
            {
                var r = CliRun.Ours(c.Name, flag);
                Assert.True(r.ExitCode == 0, $"{c.Name} {flag}: {r}");
                // Ours describe themselves on stdout; Xen's print Xen's help on stderr, as Xen's tool prints it.
                Assert.StartsWith(c.Xen ? "xen-livepatch: live patching tool\n" : "Usage: xen-livepatch", c.Xen ? r.Stderr : r.Stdout, StringComparison.Ordinal);
            }
        }
        // --help anywhere among our commands' arguments.
        Assert.Equal(CliRun.Ours("check", "--help"), CliRun.Ours("check", "x.livepatch", "--target", "y", "--help"));
    }

    [Fact]
    public void Version_names_ours_the_commit_the_interfaces_and_the_profiles()
    {
        var r = CliRun.Ours("--version");
        Assert.Equal((0, ""), (r.ExitCode, r.Stderr));
        Assert.Matches(@"^xen-livepatch \d+\.\d+\.\d+\S* \(commit ([0-9a-f]{12}(-dirty)?|unknown)\)\n", r.Stdout);
        // The golden text with the lines that move (commit, runtime) masked.
        string masked = Regex.Replace(Regex.Replace(r.Stdout, @"\(commit [^)]+\)", "(commit <commit>)"), @"(?m)^runtime: .*$", "runtime: <runtime>");
        Golden.Assert(masked, Path.Combine("cli", "version.txt"));
    }

    [Theory]
    [InlineData("aply", "'apply'")]
    [InlineData("lsit", "'list'")]
    [InlineData("chek", "'check'")]
    [InlineData("sandbx", "'sandbox'")]
    [InlineData("ifno", "'info'")]
    public void A_mistyped_command_gets_xens_line_and_what_it_may_have_meant(string typed, string meant)
    {
        var r = CliRun.Ours(typed, "x");
        Assert.Equal(1, r.ExitCode);
        Assert.Equal(Usage.Unrecognised(typed) + $"xen-livepatch: did you mean {meant}? ('xen-livepatch --help' lists every command)\n", r.Stderr);
    }

    [Fact]
    public void A_command_like_nothing_known_gets_xens_line_alone()
    {
        Assert.Equal(new CliRun(1, "", Usage.Unrecognised("frobnicate")), CliRun.Ours("frobnicate"));
        Assert.Empty(XenLivepatchTool.Suggest("--bogus"));
    }

    public static TheoryData<string[], int, string> FileErrors => new()
    {
        { ["info", "nope.livepatch"], 66, "xen-livepatch info: cannot read nope.livepatch: no such file: check the path\n" },
        { ["info", "/nonexistent-dir/x.livepatch"], 66, "xen-livepatch info: cannot read /nonexistent-dir/x.livepatch: no such file (the directory /nonexistent-dir does not exist): check the path\n" },
        { ["info", "/tmp"], 66, "xen-livepatch info: cannot read /tmp: it is a directory, not a file: give a file in it\n" },
        { ["check", "/tmp", "--symbols", "/tmp", "--build-id", "00"], 66, "xen-livepatch check: cannot read /tmp: it is a directory, not a file: give a file in it\n" },
    };

    [Theory]
    [MemberData(nameof(FileErrors))]
    public void File_errors_name_the_file_and_say_what_to_do(string[] args, int exit, string message)
    {
        Assert.Equal(new CliRun(exit, "", message), CliRun.Ours(args));
    }

    [Fact]
    public void An_output_that_cannot_be_written_says_why()
    {
        var image = LivepatchFixtures.Image();
        string obj = Tool.CompileC("const char *xen_extra_version(void) { return \"W\"; }", Repo.TempDirectory("first-contact-obj"), "w",
            "gcc", "-O2", "-ffunction-sections", "-fno-asynchronous-unwind-tables");
        var r = CliRun.Ours("build", "-o", "/nonexistent-dir/x.livepatch", "--target", image.Path, obj);
        Assert.Equal(new CliRun(73, "", "xen-livepatch build: cannot write /nonexistent-dir/x.livepatch: the directory /nonexistent-dir does not exist: create it or write elsewhere\n"), r);
        string dir = Repo.TempDirectory("first-contact-outdir");
        var toDir = CliRun.Ours("build", "-o", dir, "--target", image.Path, obj);
        Assert.Equal(73, toDir.ExitCode);
        Assert.Contains($"cannot write {dir}: it is a directory: give a file name", toDir.Stderr, StringComparison.Ordinal);
    }

    [Fact]
    public void The_native_binary_prints_words_not_resource_keys()
    {
        // What users run is the NativeAOT binary: no resource keys (IO_FileNotFound_FileName) in what it says.
        string binary = Repo.Path("artifacts", "publish", "xen-livepatch", "xen-livepatch");
        Assert.True(File.Exists(binary), $"{binary} is missing: run ./build.sh");
        foreach (string[] args in new[] { new[] { "info", "nope.livepatch" }, ["info", "/tmp"], ["check", "/nonexistent/x", "--symbols", "/nonexistent/s", "--build-id", "00"],
                     ["sandbox", "--image", "/tmp"], ["info", Repo.Path("README.md")] })
        {
            var r = Tool.Run(binary, args);
            Assert.NotEqual(0, r.ExitCode);
            Assert.DoesNotMatch(@"[A-Z][A-Za-z]+_[A-Z][A-Za-z]+_?[A-Za-z]*", r.Stderr);
            Assert.StartsWith("xen-livepatch ", r.Stderr, StringComparison.Ordinal);
        }
    }

    [Fact]
    public void Info_on_anything_says_what_it_is_and_why_it_is_not_a_payload()
    {
        var image = LivepatchFixtures.Image();
        string dir = Repo.TempDirectory("first-contact-kinds");
        string obj = Tool.CompileC("int f(void) { return 1; }", dir, "plain");
        string text = Path.Combine(dir, "notes.txt");
        File.WriteAllText(text, "hello\n");
        string empty = Path.Combine(dir, "empty.livepatch");
        File.WriteAllBytes(empty, []);
        string gz = Path.Combine(dir, "xen.gz");
        File.WriteAllBytes(gz, [0x1f, 0x8b, 8, 0, 0, 0, 0, 0]);
        string exe = Path.Combine(dir, "prog");
        Tool.Run("gcc", ["-no-pie", "-o", exe, "-x", "c", "-"], stdin: "int main(void){return 0;}"u8.ToArray()).EnsureSuccess();
        string so = Path.Combine(dir, "lib.so");
        Tool.Run("gcc", ["-shared", "-fPIC", "-o", so, "-x", "c", "-"], stdin: "int g(void){return 0;}"u8.ToArray()).EnsureSuccess();

        foreach (var (file, says) in new[]
        {
            (image.Path, "an x86-64 hypervisor image (xen-syms), not a livepatch payload: it is the hypervisor payloads patch, not a payload: give it as --target <image>"),
            (obj, "an x86-64 relocatable object (what gcc -c makes), not a livepatch payload: it has no .livepatch.funcs section"),
            (exe, "an x86-64 executable (ET_EXEC), not a livepatch payload"),
            (so, "an x86-64 shared object or position-independent executable (ET_DYN), not a livepatch payload"),
            (text, "a text file, not a livepatch payload"),
            (empty, "an empty file, not a livepatch payload"),
            (gz, "compressed data (gzip, xz, zstd or bzip2), not a livepatch payload: payloads are not compressed"),
        })
        {
            var r = CliRun.Ours("info", file);
            Assert.Equal(65, r.ExitCode);
            Assert.Equal("", r.Stdout);
            Assert.StartsWith($"xen-livepatch info: {file} is {says}", r.Stderr, StringComparison.Ordinal);
        }
    }

    [Fact]
    public void The_sandbox_given_something_else_than_its_image_says_so()
    {
        string text = Temp("image.txt");
        File.WriteAllText(text, "not an image\n");
        foreach (string command in new[] { "sandbox", "demo" })
        {
            string[] socket = command == "sandbox" ? ["--socket", Temp("s.sock")] : [];
            var r = CliRun.Ours([command, "--image", text, .. socket]);
            Assert.Equal(new CliRun(66, "", $"xen-livepatch {command}: {text} is a text file, not a sandbox hypervisor image: give the image ./build.sh makes (artifacts/sandbox/xen-syms)\n"), r);
            var missing = CliRun.Ours(command, "--image", Temp("missing-image"));
            Assert.Equal(66, missing.ExitCode);
            Assert.Contains("no such file: check the path", missing.Stderr, StringComparison.Ordinal);
        }
    }

    [Fact]
    public void The_native_binary_away_from_the_repository_says_where_the_image_goes()
    {
        // The front alone, as a user copies one program: it carries the whole tool, which runs `sandbox`.
        string dir = Repo.TempDirectory("first-contact-copied");
        string copy = Path.Combine(dir, "xen-livepatch");
        File.Copy(NativeCli.Path(), copy, overwrite: true);
        var r = Tool.Run("env", ["-u", "XEN_LIVEPATCH_SANDBOX_IMAGE", copy, "sandbox", "--socket", Path.Combine(dir, "s.sock")]);
        Assert.Equal(66, r.ExitCode);
        Assert.Contains("no sandbox image found", r.Stderr, StringComparison.Ordinal);
        Assert.Contains($"copy it to\n  {Path.Combine(dir, "sandbox", "xen-syms")}", r.Stderr, StringComparison.Ordinal);
    }
}
