using System.Security.Cryptography;
using XenLivepatch.Abi;
using XenLivepatch.Elf;
using XenLivepatch.Hypervisor;
using XenLivepatch.TestKit;

namespace XenLivepatch.Cli.Tests;

/// <summary>
/// <c>xen-livepatch build</c> against the test hypervisor (tests/Data/hypervisor), with objects gcc compiles
/// here: payloads the livepatch core accepts, with the options that shape them; and the refusals, each with
/// its message, its exit code and no file left behind.
/// </summary>
public class BuildCommandTests
{
    private const string Hello = """
        const char *xen_extra_version(void)
        {
            return "Hello from build";
        }
        """;

    /// <summary>Compiles C as Xen's payloads are compiled, for x86_64 or aarch64.</summary>
    internal static string Compile(string name, string source, string arch = "x86_64")
    {
        string dir = Repo.TempDirectory("obj-" + name);
        return arch == "x86_64"
            ? Tool.CompileC(source, dir, name, "gcc", "-O2", "-fpic", "-mno-red-zone", "-fcf-protection=none", "-ffunction-sections", "-fno-asynchronous-unwind-tables", "-fno-common", "-fvisibility=hidden")
            : Tool.CompileC(source, dir, name, "aarch64-linux-gnu-gcc", "-O2", "-ffunction-sections", "-fno-asynchronous-unwind-tables", "-fno-common", "-fvisibility=hidden");
    }

    private sealed record Built(CliRun Run, string Output, string Directory)
    {
        public byte[] Bytes => File.ReadAllBytes(Output);
    }

    private static Built Build(string name, params string[] args)
    {
        string dir = Repo.TempDirectory("build-" + name);
        string output = Path.Combine(dir, name + ".livepatch");
        return new Built(CliRun.Ours(["build", "-o", output, .. args]), output, dir);
    }

    private static Built BuildOk(string name, params string[] args)
    {
        var b = Build(name, args);
        Assert.True(b.Run.ExitCode == 0, $"build exited {b.Run.ExitCode}:\n{b.Run.Stdout}{b.Run.Stderr}");
        return b;
    }

    private static CheckReport Check(string name, byte[] data, TestImage image, LivepatchProfile? profile = null, IReadOnlyList<StackedPayload>? applied = null)
    {
        Assert.True(OfflineHypervisor.TryFromImage(image.File, out var target, out string? why), why);
        return PayloadCheck.Run(name, data, target, profile ?? LivepatchProfile.Xen417, applied);
    }

    private static List<LivepatchFunc> Funcs(byte[] payload, byte version = 2)
    {
        var f = ElfFile.Read(payload);
        var data = f.GetSectionData(f.FindSection(PayloadSections.Funcs));
        int size = LivepatchFunc.SizeOf(version);
        return Enumerable.Range(0, data.Length / size).Select(i => LivepatchFunc.Read(data.Span[(i * size)..], version)).ToList();
    }

    [Fact]
    public void Help_describes_the_command_and_exits_0()
    {
        var r = CliRun.Ours("build", "--help");
        Assert.Equal(0, r.ExitCode);
        Assert.StartsWith("Usage: xen-livepatch build -o <out.livepatch>", r.Stdout, StringComparison.Ordinal);
        Assert.Contains("--replace <old>=<new>", r.Stdout, StringComparison.Ordinal);
    }

    [Fact]
    public void A_global_function_named_like_the_hypervisors_replaces_it_and_the_core_accepts_the_payload()
    {
        var image = LivepatchFixtures.Image();
        var b = BuildOk("hello", "--target", image.Path, "--metadata", "LIVEPATCH_RULEZ", Compile("hello", Hello));
        Assert.Contains($"xen_extra_version (0x{image.Address("xen_extra_version"):x}, resolved by name at load), {image.Size("xen_extra_version")} bytes: replaced by xen_extra_version", b.Run.Stdout, StringComparison.Ordinal);
        Assert.Equal("", b.Run.Stderr);

        var report = Check("hello", b.Bytes, image);
        Assert.True(report.Accepted, report.Error?.ToString());
        var f = Assert.Single(report.Loaded!.Functions);
        Assert.Equal(("xen_extra_version", image.Address("xen_extra_version"), (uint)image.Size("xen_extra_version")), (f.Name, f.OldAddress, f.Entry.OldSize));
        Assert.Equal(image.BuildId, report.Loaded.Depends.ToArray());
        Assert.Equal(image.BuildId, report.Loaded.XenDepends.ToArray());
        Assert.Equal("LIVEPATCH_RULEZ\0"u8.ToArray(), report.Loaded.Metadata.ToArray());
        var raw = Assert.Single(Funcs(b.Bytes));
        Assert.Equal((0UL, (byte)2), (raw.OldAddr, raw.Version));
        Assert.Equal("", Readelf.Warnings(b.Output));
    }

    [Fact]
    public void The_build_id_is_the_sha1_of_the_file_with_a_zero_descriptor_and_the_same_inputs_give_the_same_bytes()
    {
        var image = LivepatchFixtures.Image();
        string obj = Compile("hello", Hello);
        var first = BuildOk("one", "--target", image.Path, obj);
        var second = BuildOk("two", "--target", image.Path, obj);
        Assert.Equal(first.Bytes, second.Bytes);

        byte[] bytes = first.Bytes;
        var file = ElfFile.Read(bytes);
        var sh = file.GetSectionHeader(file.FindSection(PayloadSections.BuildId));
        Assert.True(file.TryGetGnuBuildId(out var id, out _));
        byte[] zeroed = (byte[])bytes.Clone();
        Array.Clear(zeroed, (int)sh.Offset + 16, 20);
#pragma warning disable CA5350 // ld's --build-id=sha1, not security
        Assert.Equal(SHA1.HashData(zeroed), id.ToArray());
#pragma warning restore CA5350
        Assert.Contains(Readelf.Notes(first.Output), n => n.Section == PayloadSections.BuildId && n.BuildId == Convert.ToHexStringLower(id.Span));
    }

    [Fact]
    public void Arm64_payloads_get_abs64_relocations_and_load()
    {
        var image = LivepatchFixtures.Image("aarch64");
        var b = BuildOk("hello_arm64", "--target", image.Path, Compile("hello", Hello, "aarch64"));
        var rela = Readelf.Relocations(b.Output).Single(r => r.Name == ".rela.livepatch.funcs");
        Assert.All(rela.Entries, e => Assert.Equal("R_AARCH64_ABS64", e.Type));
        var report = Check("hello_arm64", b.Bytes, image);
        Assert.True(report.Accepted, report.Error?.ToString());
    }

    [Fact]
    public void The_seed_profile_writes_version_1_entries_and_no_xen_depends()
    {
        var image = LivepatchFixtures.Image();
        var b = BuildOk("seed", "--target", image.Path, "--profile", "seed-2016", Compile("hello", Hello));
        Assert.DoesNotContain(Readelf.Sections(b.Output), s => s.Name == PayloadSections.XenDepends);
        Assert.Equal(64UL, Readelf.Sections(b.Output).Single(s => s.Name == PayloadSections.Funcs).Size);
        Assert.Equal((byte)1, Assert.Single(Funcs(b.Bytes, 1)).Version);
        var report = Check("seed", b.Bytes, image, LivepatchProfile.Seed2016);
        Assert.True(report.Accepted, report.Error?.ToString());
        Assert.Equal(XenErrno.EINVAL, Check("seed", b.Bytes, image).Error?.Errno); // Xen 4.17 wants .livepatch.xen_depends
    }

    private static string XenSyms(TestImage image)
    {
        var table = image.File.GetSymbolTable(image.File.FindSymbolTable());
        var lines = new List<string>();
        for (int i = 1; i < table.Count; i++)
        {
            var s = table[i];
            string name = table.GetName(s);
            if (name.Length == 0 || s.Type is ElfSymbolType.File or ElfSymbolType.Section || s.Value == 0)
                continue;
            lines.Add($"{s.Value:x16} {(s.Type == ElfSymbolType.Func ? 'T' : 'D')} {name}");
        }
        string path = Path.Combine(Repo.TempDirectory("xensyms"), "xensyms");
        File.WriteAllLines(path, lines.OrderBy(l => l, StringComparer.Ordinal));
        return path;
    }

    [Fact]
    public void Against_xensyms_old_size_is_the_distance_to_the_next_symbol_unless_given()
    {
        var image = LivepatchFixtures.Image();
        string xensyms = XenSyms(image);
        Assert.True(HypervisorSymbolTable.TryFromXenSyms(File.ReadAllText(xensyms), out var table, out _));
        Assert.True(table.TryGet("xen_extra_version", out var old));
        ulong distance = table.SizeOf(old);
        string obj = Compile("hello", Hello);
        string[] target = ["--symbols", xensyms, "--build-id", Convert.ToHexStringLower(image.BuildId)];

        var b = BuildOk("xensyms", [.. target, obj]);
        Assert.Equal((uint)distance, Assert.Single(Funcs(b.Bytes)).OldSize);
        Assert.True(Check("xensyms", b.Bytes, image).Accepted);

        var sized = BuildOk("sized", [.. target, "--old-size", "xen_extra_version=7", obj]);
        Assert.Equal(7u, Assert.Single(Funcs(sized.Bytes)).OldSize);
    }

    [Fact]
    public void Replace_nop_expect_and_resolve_shape_the_entries()
    {
        var image = LivepatchFixtures.Image();
        string obj = Compile("minor", """
            int my_minor_version(void)
            {
                return 18;
            }
            """);
        var b = BuildOk("shaped", "--target", image.Path, "--replace", "xen_minor_version=my_minor_version",
            "--nop", "xen_major_version:-1", "--expect", "xen_minor_version:4", "--resolve", obj);
        var funcs = Funcs(b.Bytes);
        Assert.Equal(2, funcs.Count);
        var minor = funcs[0];
        Assert.Equal((image.Address("xen_minor_version"), (uint)image.Size("xen_minor_version")), (minor.OldAddr, minor.OldSize));
        Assert.True(minor.Expect.Enabled);
        Assert.Equal(image.Bytes(image.Address("xen_minor_version"), 4), minor.Expect.Data.Span[..4].ToArray());
        var nop = funcs[1];
        Assert.Equal((0UL, (uint)image.Size("xen_major_version") - 1, image.Address("xen_major_version")), (nop.NewAddr, nop.NewSize, nop.OldAddr));

        var report = Check("shaped", b.Bytes, image);
        Assert.True(report.Accepted, report.Error?.ToString());
        Assert.Equal(["xen_minor_version", "xen_major_version"], report.Loaded!.Functions.Select(f => f.Name));
        // A symbol at a function's new_addr overrides it, whatever its name: Xen does not export it.
        Assert.Contains(report.Loaded.Symbols, s => s.Name == "my_minor_version" && !s.IsNew);

        var explicitBytes = BuildOk("explicit", "--target", image.Path, "--replace", "xen_minor_version=my_minor_version", "--expect", "xen_minor_version=deadbeef", obj);
        Assert.Equal(new byte[] { 0xde, 0xad, 0xbe, 0xef }, Assert.Single(Funcs(explicitBytes.Bytes)).Expect.Data.Span[..4].ToArray());
        Assert.Contains("APPLY would fail", explicitBytes.Run.Stdout, StringComparison.Ordinal);
    }

    [Fact]
    public void Depends_on_stacks_on_a_payload_whose_symbols_the_objects_may_use()
    {
        var image = LivepatchFixtures.Image();
        var lower = BuildOk("lower", "--target", image.Path, Compile("lower", """
            int lower_helper(void)
            {
                return 41;
            }
            const char *xen_extra_version(void)
            {
                return "lower";
            }
            """));
        string upper = Compile("upper", """
            int lower_helper(void);
            int xen_minor_version(void)
            {
                return lower_helper() + 1;
            }
            """);
        var stacked = BuildOk("upper", "--target", image.Path, "--depends-on", lower.Output, upper);
        byte[] lowerId = ElfFile.Read(lower.Bytes).TryGetGnuBuildId(out var id, out _) ? id.ToArray() : [];
        var report = Check("upper", stacked.Bytes, image, applied: [new StackedPayload("lower", lower.Bytes)]);
        Assert.True(report.Accepted, report.Error?.ToString());
        Assert.Equal(lowerId, report.Loaded!.Depends.ToArray());
        Assert.Contains("depends on lower", stacked.Run.Stdout, StringComparison.Ordinal);

        var alone = Build("alone", "--target", image.Path, upper);
        AssertRefused(alone, "unknown symbol: lower_helper (used by upper.o)");
    }

    private static void AssertRefused(Built b, string message, int code = OwnExitCodes.DataError)
    {
        Assert.True(b.Run.ExitCode == code, $"exit {b.Run.ExitCode}, expected {code}:\n{b.Run.Stdout}{b.Run.Stderr}");
        Assert.Equal("", b.Run.Stdout);
        Assert.Contains(message, b.Run.Stderr, StringComparison.Ordinal);
        Assert.StartsWith("xen-livepatch build: ", b.Run.Stderr, StringComparison.Ordinal);
        // Nothing is left behind: no payload, no temporary file.
        Assert.Empty(Directory.GetFileSystemEntries(b.Directory));
    }

    [Fact]
    public void A_function_too_small_to_patch_is_refused_with_what_to_do()
    {
        var image = LivepatchFixtures.Image();
        var b = Build("tiny", "--target", image.Path, Compile("tiny", "void xen_tiny(void) { }"));
        AssertRefused(b, "tiny: xen_tiny is 1 byte in the hypervisor, too small to patch: a jump needs 5 bytes (Xen: EINVAL)");
        Assert.Contains("patch the functions that call xen_tiny instead", b.Run.Stderr, StringComparison.Ordinal);

        // After an ENDBR64 a jump needs 9 bytes (cet_short starts with one).
        var cet = Build("cet", "--target", image.Path, "--old-size", "cet_short=8", Compile("cet", "void cet_short(void) { }"));
        AssertRefused(cet, "cet: cet_short is 8 bytes in the hypervisor, too small to patch: a jump needs 9 bytes after its ENDBR64");
        Assert.Contains("or correct --old-size", cet.Run.Stderr, StringComparison.Ordinal);
    }

    [Fact]
    public void Unknown_names_are_refused_with_a_hint()
    {
        var image = LivepatchFixtures.Image();
        string obj = Compile("hello", Hello);
        AssertRefused(Build("unknown", "--target", image.Path, "--replace", "no_such_function=xen_extra_version", obj),
            "unknown: --replace no_such_function=xen_extra_version: the hypervisor has no symbol no_such_function");
        AssertRefused(Build("missing", "--target", image.Path, "--replace", "xen_minor_version=not_in_objects", obj),
            "no object defines a function not_in_objects");
        AssertRefused(Build("nop", "--target", image.Path, "--nop", "nowhere:3", obj), "--nop nowhere: the hypervisor has no symbol nowhere");
        AssertRefused(Build("data", "--target", image.Path, "--nop", "hv_counter:3", obj), "hv_counter is not a function in the hypervisor");
        AssertRefused(Build("undef", "--target", image.Path, Compile("undef", "void nowhere(void); const char *xen_extra_version(void) { nowhere(); return 0; }")),
            "unknown symbol: nowhere (used by undef.o); the hypervisor does not define it (Xen: ENOENT)");
        AssertRefused(Build("nothing", "--target", image.Path, Compile("nothing", "static int unused(void) { return 1; } int (*keep)(void) = unused;")),
            "nothing to patch");
    }

    [Fact]
    public void A_writable_and_executable_section_is_refused()
    {
        var image = LivepatchFixtures.Image();
        string dir = Repo.TempDirectory("wx");
        string source = Path.Combine(dir, "wx.S");
        File.WriteAllText(source, ".section .text.wx,\"awx\",@progbits\n.globl xen_extra_version\n.type xen_extra_version,@function\nxen_extra_version:\n  xor %eax,%eax\n  ret\n.size xen_extra_version,.-xen_extra_version\n");
        string obj = Path.Combine(dir, "wx.o");
        Tool.Run("gcc", "-c", source, "-o", obj).EnsureSuccess();
        var b = Build("wx", "--target", image.Path, obj);
        AssertRefused(b, "wx: section .text.wx of wx.o is both writable and executable; Xen refuses such a payload (EOPNOTSUPP)");
    }

    [Fact]
    public void Symbols_that_clash_with_the_hypervisors_are_refused_as_xen_would_with_EEXIST()
    {
        var image = LivepatchFixtures.Image();
        var b = Build("clash", "--target", image.Path, Compile("clash", """
            static char hv_buffer[4];
            int hv_counter = 1;
            const char *xen_extra_version(void)
            {
                hv_buffer[0] = (char)hv_counter;
                return hv_buffer;
            }
            """));
        AssertRefused(b, "clash: symbols that Xen would refuse as duplicate (EEXIST): static hv_buffer in clash.o (the hypervisor has hv_buffer); hv_counter in clash.o (the hypervisor has hv_counter)");
        Assert.Contains("rename them", b.Run.Stderr, StringComparison.Ordinal);
    }

    [Fact]
    public void Wrong_command_lines_exit_64_and_unreadable_inputs_66()
    {
        var image = LivepatchFixtures.Image();
        string obj = Compile("hello", Hello);
        var noOutput = CliRun.Ours("build", "--target", image.Path, obj);
        Assert.Equal((64, "xen-livepatch build: where to? give -o <out.livepatch>\n(see 'xen-livepatch build --help')\n"), (noOutput.ExitCode, noOutput.Stderr));
        AssertRefused(Build("notarget", obj), "give the hypervisor: --target <image>", OwnExitCodes.Usage);
        AssertRefused(Build("badnop", "--target", image.Path, "--nop", "xen_tiny", obj), "--nop 'xen_tiny': give <func>:<len>", OwnExitCodes.Usage);
        AssertRefused(Build("both", "--target", image.Path, "--depends", "00", "--depends-on", "x.livepatch", obj), "give one", OwnExitCodes.Usage);
        AssertRefused(Build("unreadable", "--target", image.Path, "/nonexistent/x.o"), "cannot read /nonexistent/x.o", OwnExitCodes.NoInput);
        AssertRefused(Build("notelf", "--target", image.Path, "/etc/hostname"), "/etc/hostname is not an ELF file", OwnExitCodes.NoInput);
    }

    [Fact]
    public void Hook_sections_of_the_objects_are_kept()
    {
        var image = LivepatchFixtures.Image();
        string obj = Compile("hooks", """
            typedef void (*hook_t)(void);
            static int count;
            static void count_up(void) { count++; }
            static hook_t __attribute__((section(".livepatch.hooks.load"), used)) load_hook = count_up;
            const char *xen_extra_version(void) { return count ? "counted" : "not yet"; }
            """);
        var b = BuildOk("hooks", "--target", image.Path, obj);
        var report = Check("hooks", b.Bytes, image);
        Assert.True(report.Accepted, report.Error?.ToString());
        Assert.Single(report.Loaded!.Hooks.Load);
        Assert.NotEqual(0UL, report.Loaded.Hooks.Load[0]);
    }
}
