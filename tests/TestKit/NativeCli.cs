namespace XenLivepatch.TestKit;

/// <summary>
/// The NativeAOT tool ./build.sh publishes: the front, <c>xen-livepatch</c>, and the whole tool it runs for every
/// command but Xen's, <c>xen-livepatch-full</c>, side by side (the front also carries a copy of the whole tool). A
/// test that takes the tool elsewhere (a dom0) takes both, as install.sh installs both.
/// </summary>
public static class NativeCli
{
    /// <summary>The publish folder for <paramref name="rid"/> (linux-x64 or linux-arm64).</summary>
    public static string Directory(string rid = "linux-x64") =>
        Repo.Path("artifacts", "publish", rid == "linux-x64" ? "xen-livepatch" : "xen-livepatch-" + rid);

    /// <summary>The front's path, asserting both programs are there.</summary>
    public static string Path(string rid = "linux-x64")
    {
        string dir = Directory(rid);
        foreach (string name in new[] { "xen-livepatch", "xen-livepatch-full" })
        {
            string file = System.IO.Path.Combine(dir, name);
            if (!File.Exists(file))
                throw new FileNotFoundException($"the NativeAOT CLI ({rid}) is missing at {file}: run ./build.sh", file);
        }
        return System.IO.Path.Combine(dir, "xen-livepatch");
    }

    /// <summary>Copies both programs into <paramref name="directory"/> (made if missing); returns the front's copy.</summary>
    public static string CopyTo(string directory, string rid = "linux-x64")
    {
        string front = Path(rid);
        System.IO.Directory.CreateDirectory(directory);
        foreach (string name in new[] { "xen-livepatch", "xen-livepatch-full" })
        {
            string copy = System.IO.Path.Combine(directory, name);
            File.Copy(System.IO.Path.Combine(Directory(rid), name), copy, overwrite: true);
            File.SetUnixFileMode(copy, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute
                | UnixFileMode.GroupRead | UnixFileMode.GroupExecute | UnixFileMode.OtherRead | UnixFileMode.OtherExecute);
        }
        return System.IO.Path.Combine(directory, System.IO.Path.GetFileName(front));
    }
}
