using XenLivepatch.Elf;
using XenLivepatch.Tooling.Sources;

namespace XenLivepatch.TestKit;

/// <summary>
/// The diff tests' small hypervisor source tree (tests/Data/diff: unit.c, other.c, xen.h, entry.S), built by
/// gcc with Xen's flags that matter here (-ffunction-sections -fdata-sections, -fpic, ENDBR64), as it stands
/// and with one of cases/*.patch applied; and an image linked from the original objects, the "running
/// hypervisor" that payloads are built and checked against.
/// </summary>
public sealed class DiffTree
{
    /// <summary>The C flags: Xen's code generation (x86 arch.mk, Rules.mk) as far as these sources need it.</summary>
    public static readonly string[] CFlags =
    [
        "-O2", "-fpic", "-mno-red-zone", "-fno-asynchronous-unwind-tables", "-ffunction-sections", "-fdata-sections",
        "-fcf-protection=branch", "-nostdinc", "-fno-builtin", "-fno-common", "-ffreestanding", "-mno-sse", "-mno-mmx",
        "-fno-stack-protector", "-Wall", "-Werror",
    ];

    public static readonly string[] Objects = ["unit.o", "other.o", "entry.o"];

    private static readonly Lazy<DiffTree> s_original = new(() => Build("original", null, CFlags));

    private DiffTree(string directory) => Directory = directory;

    /// <summary>The folder with the sources and their objects.</summary>
    public string Directory { get; }

    /// <summary>The tree as it is, built once per test process.</summary>
    public static DiffTree Original => s_original.Value;

    public string Path(string file) => System.IO.Path.Combine(Directory, file);

    public static string CasePatch(string name) => Repo.Path("tests", "Data", "diff", "cases", name + ".patch");

    /// <summary>The source patch of a case, parsed.</summary>
    public static SourcePatch Patch(string name) =>
        SourcePatch.TryRead(CasePatch(name), out var p, out string? error) ? p : throw new InvalidOperationException(error);

    /// <summary>Copies the sources, applies <paramref name="patch"/> (when given) and compiles them with <paramref name="flags"/>.</summary>
    public static DiffTree Build(string hint, SourcePatch? patch, string[] flags, string compiler = "gcc")
    {
        string dir = Repo.TempDirectory("diff-" + hint);
        foreach (string f in (string[])["unit.c", "other.c", "xen.h", "entry.S"])
            File.Copy(Repo.Path("tests", "Data", "diff", f), System.IO.Path.Combine(dir, f));
        if (patch != null && !patch.TryApply(dir, out _, out var failure))
            throw new InvalidOperationException(failure.ToString());
        foreach (string c in (string[])["unit", "other"])
            Tool.Run(compiler, [.. flags, "-c", c + ".c", "-o", c + ".o"], dir).EnsureSuccess();
        Tool.Run("gcc", ["-c", "entry.S", "-o", "entry.o"], dir).EnsureSuccess();
        return new DiffTree(dir);
    }

    private readonly object _imageLock = new();
    private string? _image;

    /// <summary>
    /// The objects linked at Xen's address with a GNU build-id, as xen-syms is: the hypervisor that payloads
    /// made from this tree's objects are built and checked against.
    /// </summary>
    public string Image
    {
        get
        {
            lock (_imageLock)
            {
                if (_image == null)
                {
                    string image = Path("xen-syms");
                    Tool.Run("ld", ["-o", image, "-e", "xen_extra_version", "-Ttext-segment=0xffff82d040200000", "--build-id=sha1",
                        "-z", "max-page-size=4096", "-z", "noexecstack", .. Objects.Select(Path)]).EnsureSuccess();
                    _image = image;
                }
                return _image;
            }
        }
    }

    public ElfFile Read(string obj) => ElfFile.Read(File.ReadAllBytes(Path(obj)));
}
