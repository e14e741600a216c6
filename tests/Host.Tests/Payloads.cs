using XenLivepatch.Elf;
using XenLivepatch.TestKit;

namespace XenLivepatch.Host.Tests;

/// <summary>The sandbox's sample payloads (built once per test process) and variants of them made with objcopy.</summary>
internal static class Payloads
{
    /// <summary>A sample payload's path, or one of <see cref="s_built"/>'s (made on first use).</summary>
    public static string Path(string name) => s_built.TryGetValue(name, out var built) ? built.Value : SandboxBuild.PayloadPath(name);

    // More payloads for the sandbox, made here by 'xen-livepatch build' from C: they patch other functions or stack
    // further, and define no static function (Xen refuses a payload whose functions another loaded one defines,
    // so xen_hello_world and xen_action_hooks, which both have an apply_hook, cannot be loaded together).
    private static readonly Dictionary<string, Lazy<string>> s_built = new()
    {
        ["xen_major_nine"] = new(() => Build("xen_major_nine", "int xen_major_version(void) { return 9; }")),
        ["xen_bye_again"] = new(() => Build("xen_bye_again", "const char *xen_extra_version(void) { return \"Bye Again\"; }",
            "--depends", File("xen_bye_world").BuildId)),
    };

    private static string Build(string name, string source, params string[] options)
    {
        string dir = Repo.TempDirectory("built-" + name);
        string c = System.IO.Path.Combine(dir, name + ".c"), o = System.IO.Path.Combine(dir, name + ".o");
        string output = System.IO.Path.Combine(dir, name + ".livepatch");
        System.IO.File.WriteAllText(c, source + "\n");
        Tool.Run("gcc", "-O2", "-ffreestanding", "-fno-common", "-fno-stack-protector", "-fno-asynchronous-unwind-tables", "-ffunction-sections",
            "-fpic", "-mno-red-zone", "-fcf-protection=none", "-c", c, "-o", o).EnsureSuccess();
        var stdout = new StringWriter();
        var stderr = new StringWriter();
        int code = Cli.XenLivepatchTool.Run(["build", "--target", SandboxBuild.Image, "-o", output, .. options, o], stdout, stderr);
        Assert.True(code == 0, $"building {name}: {stdout}{stderr}");
        return output;
    }

    /// <summary>A sample payload, read.</summary>
    public static PayloadFile File(string name)
    {
        Assert.True(PayloadFile.TryRead(Path(name), null, out var f, out string? error), error);
        return f;
    }

    /// <summary>The sandbox image's build-id (hex).</summary>
    public static string XenBuildId
    {
        get
        {
            var elf = ElfFile.Load(SandboxBuild.Image);
            Assert.True(elf.TryGetGnuBuildId(out var id, out _));
            return Convert.ToHexStringLower(id.Span);
        }
    }

    /// <summary>
    /// A copy of sample <paramref name="name"/> in <paramref name="directory"/> whose <c>.livepatch.xen_depends</c>
    /// names another hypervisor (and whose own build-id differs, so it is another payload).
    /// </summary>
    public static string ForAnotherHypervisor(string name, string directory) => PayloadVariants.ForAnotherHypervisor(Path(name), directory);
}
