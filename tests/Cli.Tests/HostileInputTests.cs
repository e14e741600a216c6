using System.Text.Json;
using XenLivepatch.TestKit;

namespace XenLivepatch.Cli.Tests;

/// <summary>
/// Inputs that once crashed our own commands (issue 13): each is answered with a clear message and an exit code
/// below 128, and reading it takes memory in proportion to the file, not to a header's claim.
/// </summary>
public class HostileInputTests
{
    private static string Fixture(string name) => Repo.Path("tests", "Data", "tooling", name);

    private static string Mutated(string from, string mutation, string name = "mutant.livepatch")
    {
        string path = Path.Combine(Repo.TempDirectory("hostile"), name);
        File.WriteAllBytes(path, PayloadMutation.Apply(File.ReadAllBytes(from), mutation));
        return path;
    }

    [Theory]
    [InlineData(16)]
    [InlineData(32)]
    [InlineData(0)]
    public void Info_describes_a_funcs_section_shorter_than_one_entry(int size)
    {
        string path = Mutated(Fixture("greeting.livepatch"), $".livepatch.funcs:sh_size = {size}");
        foreach (string[] mode in new[] { Array.Empty<string>(), ["--json"] })
        {
            var r = CliRun.Ours(["info", path, .. mode]);
            Assert.Equal((0, ""), (r.ExitCode, r.Stderr));
        }
        var text = CliRun.Ours("info", path);
        Assert.Contains("functions: 0", text.Stdout, StringComparison.Ordinal);
        if (size != 0)
            Assert.Contains($"problem: .livepatch.funcs: {size} bytes", text.Stdout, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("e_shstrndx = 0; e_shnum = 0; e_shoff = 0", 0)]
    [InlineData("e_shstrndx = 0; e_shnum = 1", 1)]
    public void Info_describes_an_ELF_file_with_no_section_but_the_null_one(string mutation, int sections)
    {
        // Without sections it has no .livepatch.* section: info says what it is and why it is no payload (it crashed).
        string path = Mutated(Fixture("greeting.livepatch"), mutation);
        var r = CliRun.Ours("info", path);
        Assert.Equal((65, ""), (r.ExitCode, r.Stdout));
        Assert.Contains("is an x86-64 relocatable object (what gcc -c makes), not a livepatch payload: it has no .livepatch.funcs section", r.Stderr, StringComparison.Ordinal);
        using var doc = JsonDocument.Parse(CliRun.Ours("info", path, "--json").Stdout);
        Assert.Equal((65, "object"), (doc.RootElement.GetProperty("exit_code").GetInt32(), doc.RootElement.GetProperty("kind").GetString()));
        _ = sections;
    }

    [Fact]
    public void Info_reads_a_hook_section_as_far_as_the_file_holds_it()
    {
        string hooks = LivepatchFixtures.BuildPayload(LivepatchFixtures.Image(), "hooks", ["hooks_only.c"]);
        // 16 MiB claimed by a payload of a few KiB: the old reader listed two million hooks.
        string path = Mutated(hooks, ".livepatch.hooks.load:sh_size = 0x1000000");
        long before = GC.GetAllocatedBytesForCurrentThread();
        var r = CliRun.Ours("info", path, "--json");
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        Assert.Equal((0, ""), (r.ExitCode, r.Stderr));
        Assert.True(allocated < 4 << 20, $"{allocated} bytes allocated to describe a {new FileInfo(path).Length}-byte payload");
        using var doc = JsonDocument.Parse(r.Stdout);
        Assert.Equal(0, doc.RootElement.GetProperty("hooks").GetProperty("load").GetArrayLength());
        Assert.Contains(doc.RootElement.GetProperty("problems").EnumerateArray(), p => p.GetString()!.StartsWith(".livepatch.hooks.load cannot be read", StringComparison.Ordinal));
    }

    [Fact]
    public void Check_refuses_a_symbol_table_linked_to_section_0_made_a_string_table()
    {
        var image = LivepatchFixtures.Image();
        string path = Mutated(Payloads.Hello, "[0]:sh_type = SHT_STRTAB; [0]:sh_offset = 0xfffffff0; [0]:sh_size = 0x100000; .symtab:sh_link = 0", "zero.livepatch");
        var r = CliRun.Ours("check", path, "--target", image.Path);
        Assert.Equal((1, ""), (r.ExitCode, r.Stdout));   // refused; the errno is in the text
        Assert.StartsWith("error 22 (EINVAL): zero: the symbol table's string table index is 0 (the null section)", r.Stderr, StringComparison.Ordinal);
        // info describes it all the same.
        Assert.Equal(0, CliRun.Ours("info", path).ExitCode);
    }

    [Fact]
    public void Build_refuses_an_object_whose_section_alignment_is_not_a_power_of_two()
    {
        var image = LivepatchFixtures.Image();
        string obj = BuildCommandTests.Compile("hello", "const char *xen_extra_version(void) { return \"Hello\"; }");
        string bad = Path.Combine(Repo.TempDirectory("align"), "hello.o");
        File.WriteAllBytes(bad, PayloadMutation.Apply(File.ReadAllBytes(obj), ".text.xen_extra_version:sh_addralign = 3"));
        string output = Path.Combine(Repo.TempDirectory("align-out"), "out.livepatch");
        var r = CliRun.Ours("build", "-o", output, "--target", image.Path, bad);
        Assert.Equal((65, ""), (r.ExitCode, r.Stdout));
        Assert.StartsWith("xen-livepatch build: hello.o: section .text.xen_extra_version: alignment 3 is not a power of two", r.Stderr, StringComparison.Ordinal);
        Assert.False(File.Exists(output));
    }

    [Fact]
    public void A_sandbox_socket_path_too_long_for_a_socket_address_is_refused_with_advice()
    {
        string path = "/tmp/" + new string('s', 120) + ".sock";
        var r = CliRun.Ours("--sandbox", path, "list");
        Assert.Equal((1, ""), (r.ExitCode, r.Stdout));
        Assert.Contains($"the socket path {path} is 130 bytes; a Unix socket address holds at most 107", r.Stderr, StringComparison.Ordinal);
        Assert.Contains("failed to get the handler", r.Stderr, StringComparison.Ordinal);
    }
}
