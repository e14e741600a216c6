using XenLivepatch.Elf;
using XenLivepatch.Tooling.Sources;

namespace XenLivepatch.TestKit;

/// <summary>
/// The diff tests' small hypervisor source tree (tests/Data/diff: unit.c, other.c, xen.h, entry.S and its
/// Makefile), built by gcc with Xen's flags that matter here (-ffunction-sections -fdata-sections, -fpic,
/// ENDBR64), as it stands and with one of cases/*.patch applied; its xen-syms is the "running hypervisor"
/// that payloads are built and checked against.
/// </summary>
public sealed class DiffTree
{
    public static readonly string[] Objects = ["unit.o", "other.o", "entry.o"];

    /// <summary>The files of the tree.</summary>
    public static readonly string[] Sources = ["unit.c", "other.c", "xen.h", "entry.S", "Makefile"];

    private static readonly Lazy<DiffTree> s_original = new(() => Build("original", null));

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

    /// <summary>A copy of the sources (for build-source, which builds it itself).</summary>
    public static string Copy(string hint)
    {
        string dir = Repo.TempDirectory("diff-" + hint);
        foreach (string f in Sources)
            File.Copy(Repo.Path("tests", "Data", "diff", f), System.IO.Path.Combine(dir, f));
        return dir;
    }

    /// <summary>
    /// Copies the sources, applies <paramref name="patch"/> (when given) and builds them with the Makefile's flags
    /// (plus <paramref name="extraFlags"/>, which come last and so win) and <paramref name="compiler"/>.
    /// </summary>
    public static DiffTree Build(string hint, SourcePatch? patch, string extraFlags = "", string compiler = "gcc")
    {
        string dir = Copy(hint);
        if (patch != null && !patch.TryApply(dir, out _, out var failure))
            throw new InvalidOperationException(failure.ToString());
        Tool.Run("make", ["-s", "CC=" + compiler, "EXTRA_CFLAGS=" + extraFlags], dir).EnsureSuccess();
        return new DiffTree(dir);
    }

    /// <summary>The objects linked at Xen's address with a GNU build-id, as xen-syms is (the Makefile's link).</summary>
    public string Image => Path("xen-syms");

    public ElfFile Read(string obj) => ElfFile.Read(File.ReadAllBytes(Path(obj)));
}
