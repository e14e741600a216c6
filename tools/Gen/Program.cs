// The table generator: every constant table of the project (ELF constants, relocation types, Xen errno
// values) is written once, in tools/Gen/Tables/*.tbl, and this program emits the C# files from them.
//   dotnet run --project tools/Gen            regenerate every output
//   dotnet run --project tools/Gen -- --check  exit 1 when a committed output is stale
namespace XenLivepatch.Tools.Gen;

internal static class Program
{
    private static int Main(string[] args)
    {
        bool check = args.Contains("--check");
        if (args.Contains("--help") || args.Contains("-h"))
        {
            Console.WriteLine("usage: gen [--check] [--root DIR]");
            Console.WriteLine("Regenerates the *.g.cs files from tools/Gen/Tables/*.tbl (--check: only compare).");
            return 0;
        }
        int rootAt = Array.IndexOf(args, "--root");
        string root = rootAt >= 0 && rootAt + 1 < args.Length ? args[rootAt + 1] : FindRoot();
        int stale = 0;
        foreach (var (path, text) in TableGenerator.GenerateAll(root))
        {
            string full = Path.Combine(root, path);
            string? existing = File.Exists(full) ? File.ReadAllText(full) : null;
            if (existing == text)
                continue;
            if (check)
            {
                Console.Error.WriteLine($"stale: {path} (run: dotnet run --project tools/Gen)");
                stale++;
                continue;
            }
            Directory.CreateDirectory(Path.GetDirectoryName(full)!);
            File.WriteAllText(full, text);
            Console.WriteLine($"wrote {path}");
        }
        return stale == 0 ? 0 : 1;
    }

    private static string FindRoot()
    {
        for (var dir = new DirectoryInfo(Directory.GetCurrentDirectory()); dir != null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "global.json")))
                return dir.FullName;
        }
        throw new InvalidOperationException("cannot find the repository root (global.json); pass --root DIR");
    }
}
