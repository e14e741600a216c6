namespace XenLivepatch.TestKit;

/// <summary>Paths inside the repository, found from the test assembly's location.</summary>
public static class Repo
{
    private static readonly Lazy<string> s_root = new(() =>
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir != null; dir = dir.Parent)
        {
            if (File.Exists(System.IO.Path.Combine(dir.FullName, "global.json")) && Directory.Exists(System.IO.Path.Combine(dir.FullName, "tests")))
                return dir.FullName;
        }
        throw new InvalidOperationException("cannot find the repository root above " + AppContext.BaseDirectory);
    });

    /// <summary>The repository root (the folder holding global.json).</summary>
    public static string Root => s_root.Value;

    /// <summary>A path relative to the root.</summary>
    public static string Path(params string[] parts) => System.IO.Path.Combine([Root, .. parts]);

    /// <summary>A fresh temporary directory for one test, removed by the OS's tmp cleaning.</summary>
    public static string TempDirectory(string hint)
    {
        string dir = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "xlp-tests", $"{hint}-{Environment.ProcessId}-{Guid.NewGuid():N}");
        Directory.CreateDirectory(dir);
        return dir;
    }
}
