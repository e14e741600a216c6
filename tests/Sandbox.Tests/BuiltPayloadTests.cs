using XenLivepatch.Abi;
using XenLivepatch.Cli;
using XenLivepatch.Elf;
using XenLivepatch.Hypervisor;
using XenLivepatch.TestKit;

namespace XenLivepatch.Sandbox.Tests;

/// <summary>
/// The sample payloads made by <c>xen-livepatch build</c> (src/Sandbox/build-artifacts.sh) against the same
/// samples made by Xen's recipe with gcc, objcopy and ld (tools/payload/build-payload.sh, with the function
/// entries written in C in payloads/*_funcs.c): the same sections with the same contents and relocations, and
/// the same functions once loaded. The other sandbox tests apply the built payloads while the vCPUs run.
/// </summary>
[Collection("sandbox")]
public class BuiltPayloadTests
{
    private static string Sources => Repo.Path("src", "Sandbox", "payloads");

    // payload name, sample source (null: none), the recipe's options
    public static TheoryData<string, string?, string[]> Samples => new()
    {
        { "xen_hello_world", "hello_world", ["--modinfo", "LIVEPATCH_RULEZ"] },
        { "xen_bye_world", "bye_world", ["--depends-on", SandboxArtifacts.PayloadPath("xen_hello_world"), "--cflags", "-DRESOLVED"] },
        { "xen_replace_world", "replace_world", [] },
        { "xen_nop", null, [] },
        { "xen_prepost_hooks", "prepost_hooks", [] },
        { "xen_prepost_hooks_fail", "prepost_hooks_fail", [] },
        { "xen_action_hooks", "action_hooks", [] },
        { "xen_action_hooks_noapply", "action_hooks_noapply", [] },
        { "xen_expectations", "expectations", ["--cflags", "-DEXPECT_HERE"] },
        { "xen_expectations_fail", "expectations_fail", ["--cflags", "-DEXPECT_WRONG"] },
    };

    // The recipe links the sample with its function entry in C: payloads/extra_version_funcs.c, or, for the
    // NOP payload, which has no sample, payloads/nop_funcs.c alone.
    private static string Oracle(string name, string? sample, string[] options)
    {
        string dir = Repo.TempDirectory("oracle-" + name);
        string output = Path.Combine(dir, name + ".livepatch");
        string[] sources = sample == null
            ? [Path.Combine(Sources, "nop_funcs.c")]
            : [Path.Combine(Sources, sample + ".c"), Path.Combine(Sources, "extra_version_funcs.c")];
        Tool.Run("bash", [Repo.Path("tools", "payload", "build-payload.sh"), "--arch", "x86_64", "--image", SandboxArtifacts.Image, "--out", output, .. options, .. sources]).EnsureSuccess();
        return output;
    }

    private static Payload Load(string name, string path)
    {
        Assert.True(OfflineHypervisor.TryFromImage(ElfFile.Load(SandboxArtifacts.Image), out var target, out string? why), why);
        var report = PayloadCheck.Run(name, File.ReadAllBytes(path), target, LivepatchProfile.Xen417);
        return report.Loaded ?? throw new InvalidOperationException($"{path} does not load: {report.Error}");
    }

    [Theory]
    [MemberData(nameof(Samples))]
    public void Built_payload_has_the_sections_of_xens_recipe_with_the_same_contents_and_relocations(string name, string? sample, string[] options)
    {
        string built = SandboxArtifacts.PayloadPath(name);
        string oracle = Oracle(name, sample, options);

        var ours = Readelf.Sections(built);
        var theirs = Readelf.Sections(oracle);
        // Without a sample there is no object to link: the recipe's empty sections and .comment come from
        // compiling the function entry in C.
        bool Kept(ReadelfSection s) => sample != null || (s.Size != 0 && s.Name != ".comment");
        Assert.Equal(theirs.Where(Kept).Select(s => s.Name).Order(StringComparer.Ordinal), ours.Where(Kept).Select(s => s.Name).Order(StringComparer.Ordinal));
        var ourFile = ElfFile.Load(built);
        var theirFile = ElfFile.Load(oracle);
        foreach (var t in theirs.Where(s => s.Flags.Contains('A', StringComparison.Ordinal) && Kept(s)))
        {
            var o = ours.Single(s => s.Name == t.Name);
            Assert.True((t.Type, t.Flags, t.Size) == (o.Type, o.Flags, o.Size), $"{name} {t.Name}: recipe {t.Type} {t.Flags} {t.Size}, build {o.Type} {o.Flags} {o.Size}");
            // The build-ids differ: each is a hash of its own file.
            if (t.Name == PayloadSections.BuildId || t.Type == "NOBITS")
                continue;
            Assert.True(theirFile.GetSectionData(t.Index).Span.SequenceEqual(ourFile.GetSectionData(o.Index).Span), $"{name} {t.Name}: contents differ");
        }
        Assert.Equal(Relocations(oracle), Relocations(built));
        Assert.Equal(Readelf.Notes(oracle).Where(n => n.Section != PayloadSections.BuildId).Select(n => n.BuildId),
            Readelf.Notes(built).Where(n => n.Section != PayloadSections.BuildId).Select(n => n.BuildId));
    }

    // Every relocation as "section offset type target addend", with section symbols named by their section.
    private static List<string> Relocations(string path) => Readelf.Relocations(path)
        .SelectMany(s => s.Entries.Select(e => $"{s.Name} {e.Offset:x} {e.Type} {e.SymbolName} {e.Addend}"))
        .Order(StringComparer.Ordinal).ToList();

    [Theory]
    [MemberData(nameof(Samples))]
    public void Built_payload_loads_with_the_same_functions_as_xens_recipe(string name, string? sample, string[] options)
    {
        var ours = Load(name, SandboxArtifacts.PayloadPath(name));
        var theirs = Load(name, Oracle(name, sample, options));
        static string Describe(PatchFunction f) =>
            $"{f.Name} old 0x{f.OldAddress:x}/{f.Entry.OldSize} new 0x{f.NewAddress:x}/{f.Entry.NewSize} v{f.Entry.Version} " +
            $"expect {f.Entry.Expect.Enabled}/{f.Entry.Expect.Length}/{Convert.ToHexString(f.Entry.Expect.Data.Span)}";
        Assert.Equal(theirs.Functions.Select(Describe), ours.Functions.Select(Describe));
        Assert.NotEmpty(ours.Functions);
        Assert.Equal(theirs.Depends.ToArray(), ours.Depends.ToArray());
        Assert.Equal(theirs.XenDepends.ToArray(), ours.XenDepends.ToArray());
        Assert.Equal(theirs.Metadata.ToArray(), ours.Metadata.ToArray());
        Assert.Equal((theirs.Hooks.Load.Count, theirs.Hooks.Unload.Count, theirs.Hooks.PreApply != 0, theirs.Hooks.Apply != 0, theirs.Hooks.PostApply != 0, theirs.Hooks.PreRevert != 0, theirs.Hooks.Revert != 0, theirs.Hooks.PostRevert != 0),
            (ours.Hooks.Load.Count, ours.Hooks.Unload.Count, ours.Hooks.PreApply != 0, ours.Hooks.Apply != 0, ours.Hooks.PostApply != 0, ours.Hooks.PreRevert != 0, ours.Hooks.Revert != 0, ours.Hooks.PostRevert != 0));
        Assert.Equal(theirs.SafeToReapply, ours.SafeToReapply);
    }

    [Theory]
    [MemberData(nameof(Samples))]
    public void Built_payload_passes_check_as_its_sample_should(string name, string? sample, string[] options)
    {
        _ = sample;
        _ = options;
        var stdout = new StringWriter();
        var stderr = new StringWriter();
        string[] under = name == "xen_bye_world" ? ["--applied", SandboxArtifacts.PayloadPath("xen_hello_world")] : [];
        int code = XenLivepatchTool.Run(["check", SandboxArtifacts.PayloadPath(name), "--target", SandboxArtifacts.Image, .. under], stdout, stderr);
        if (name == "xen_expectations_fail")
        {
            // Built to fail at APPLY, as Xen's xen_expectations_fail does.
            Assert.Equal(1, code);
            Assert.StartsWith($"error {(int)XenErrno.EINVAL} (EINVAL)", stderr.ToString(), StringComparison.Ordinal);
            Assert.Contains("expectation failed", stderr.ToString(), StringComparison.Ordinal);
            return;
        }
        Assert.True(code == 0, $"check {name} exited {code}:\n{stdout}{stderr}");
        Assert.StartsWith("OK\n", stdout.ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public void A_payload_built_from_a_new_source_patches_the_running_sandbox_until_reverted()
    {
        string dir = Repo.TempDirectory("built-in-test");
        string source = Path.Combine(dir, "greeting.c");
        File.WriteAllText(source, "#include \"livepatch.h\"\nconst char *xen_extra_version(void)\n{\n    return \"Built by build\";\n}\n");
        string obj = Tool.CompileC(File.ReadAllText(source), dir, "greeting", "gcc", "-O2", "-ffreestanding", "-fno-stack-protector",
            "-fno-asynchronous-unwind-tables", "-ffunction-sections", "-fpic", "-mno-red-zone", "-fcf-protection=none", "-I" + Sources);
        string payload = Path.Combine(dir, "greeting.livepatch");
        var stdout = new StringWriter();
        var stderr = new StringWriter();
        Assert.Equal(0, XenLivepatchTool.Run(["build", "-o", payload, "--target", SandboxArtifacts.Image, "--metadata", "origin=test", obj], stdout, stderr));
        Assert.Contains("xen_extra_version", stdout.ToString(), StringComparison.Ordinal);

        using var host = SandboxArtifacts.Boot();
        var d = new Driver(host);
        string original = d.Seen();
        Assert.Null(host.Core.Upload("greeting", File.ReadAllBytes(payload)));
        Assert.Equal((0, (int?)0, (LivepatchState?)LivepatchState.Applied), d.Act("greeting", LivepatchAction.Apply));
        Assert.Equal("Built by build", d.Seen());
        Assert.Equal((0, (int?)0, (LivepatchState?)LivepatchState.Checked), d.Act("greeting", LivepatchAction.Revert));
        Assert.Equal(original, d.Seen());
        Assert.Equal(0, host.Core.Action("greeting", LivepatchAction.Unload));
        Assert.Equal(0, host.Bugs);
    }
}
