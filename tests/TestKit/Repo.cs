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

    private static readonly Lazy<string> s_tempRoot = new(() =>
    {
        string root = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "xlp-tests", $"{Environment.ProcessId}-{Guid.NewGuid():N}");
        Directory.CreateDirectory(root);
        if (Environment.GetEnvironmentVariable("XLP_KEEP_TEMP") != "1")
        {
            AppDomain.CurrentDomain.ProcessExit += (_, _) =>
            {
                try { Directory.Delete(root, recursive: true); }
                catch (IOException) { }
                catch (UnauthorizedAccessException) { }
            };
        }
        return root;
    });

    /// <summary>
    /// A fresh temporary directory for one test, under a per-process folder that is removed when the test
    /// process exits (set XLP_KEEP_TEMP=1 to keep it for inspection).
    /// </summary>
    public static string TempDirectory(string hint)
    {
        string dir = System.IO.Path.Combine(s_tempRoot.Value, $"{hint}-{Guid.NewGuid():N}");
        Directory.CreateDirectory(dir);
        return dir;
    }
}
