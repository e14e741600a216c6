using System.Collections.Concurrent;
using XenLivepatch.Elf;

namespace XenLivepatch.TestKit;

/// <summary>A test hypervisor image (like xen-syms) built from tests/Data/hypervisor.</summary>
public sealed record TestImage(string Arch, string Path, ElfFile File)
{
    /// <summary>The image's GNU build-id.</summary>
    public byte[] BuildId => File.TryGetGnuBuildId(out var id, out _) ? id.ToArray() : [];

    /// <summary>The address of a symbol of the image.</summary>
    public ulong Address(string name)
    {
        var table = File.GetSymbolTable(File.FindSymbolTable());
        for (int i = 1; i < table.Count; i++)
        {
            if (table.GetName(table[i]) == name)
                return table[i].Value;
        }
        throw new KeyNotFoundException($"{name} is not a symbol of {Path}");
    }

    /// <summary>The size of a symbol of the image.</summary>
    public ulong Size(string name)
    {
        var table = File.GetSymbolTable(File.FindSymbolTable());
        for (int i = 1; i < table.Count; i++)
        {
            if (table.GetName(table[i]) == name)
                return table[i].Size;
        }
        throw new KeyNotFoundException($"{name} is not a symbol of {Path}");
    }

    /// <summary>The bytes of the image at an address (from its sections).</summary>
    public byte[] Bytes(ulong address, int length)
    {
        for (int i = 1; i < File.SectionCount; i++)
        {
            var sh = File.SectionHeaders[i];
            if (sh.Type == ElfSectionType.ProgBits && address >= sh.Address && address + (ulong)length <= sh.Address + sh.Size)
                return File.GetSectionData(i).Slice((int)(address - sh.Address), length).ToArray();
        }
        throw new ArgumentOutOfRangeException(nameof(address), $"0x{address:x} is not in a section of {Path}");
    }
}

/// <summary>
/// Builds the livepatch test inputs with the real toolchain: the test hypervisor images
/// (tests/Data/hypervisor/build.sh) and payloads (tools/payload/build-payload.sh, Xen's recipe).
/// </summary>
public static class LivepatchFixtures
{
    private static readonly ConcurrentDictionary<string, Lazy<TestImage>> s_images = new();

    /// <summary>The test hypervisor image for "x86_64" or "aarch64" (built once per test process).</summary>
    public static TestImage Image(string arch = "x86_64") => s_images.GetOrAdd(arch, a => new Lazy<TestImage>(() =>
    {
        string path = System.IO.Path.Combine(Repo.TempDirectory("hypervisor-" + a), "xen-syms");
        Tool.Run("bash", Repo.Path("tests", "Data", "hypervisor", "build.sh"), a, path).EnsureSuccess();
        return new TestImage(a, path, ElfFile.Load(path));
    })).Value;

    /// <summary>A source file of tests/Data/payloads.</summary>
    public static string PayloadSource(string file) => Repo.Path("tests", "Data", "payloads", file);

    /// <summary>
    /// Builds a payload from <paramref name="sources"/> (file names under tests/Data/payloads, or full
    /// paths) for <paramref name="image"/>; <paramref name="options"/> are build-payload.sh options.
    /// Returns the payload's path.
    /// </summary>
    public static string BuildPayload(TestImage image, string name, string[] sources, params string[] options)
    {
        string dir = Repo.TempDirectory("payload-" + name);
        string output = System.IO.Path.Combine(dir, name + ".livepatch");
        var args = new List<string> { Repo.Path("tools", "payload", "build-payload.sh"), "--arch", image.Arch, "--image", image.Path, "--out", output };
        args.AddRange(options);
        args.AddRange(sources.Select(s => System.IO.Path.IsPathRooted(s) ? s : PayloadSource(s)));
        Tool.Run("bash", args).EnsureSuccess();
        return output;
    }

    /// <summary>Writes C or assembly source text to a temporary file and returns its path.</summary>
    public static string SourceFile(string text, string extension = ".c")
    {
        string path = System.IO.Path.Combine(Repo.TempDirectory("src"), "payload" + extension);
        File.WriteAllText(path, text);
        return path;
    }
}
