namespace XenLivepatch.TestKit;

/// <summary>
/// Upstream Xen's sources for building hypervisors from source (shared/xen-src above the checkout or its origin): the
/// 4.17.3 release tarball and the stable series of commits to 4.17.4. <c>XLP_XEN_SRC</c> points elsewhere.
/// </summary>
public static class XenSource
{
    // One lookup for the scripts and the tests: tests/xen-src-dir.sh ($XLP_XEN_SRC, else shared/xen-src above the
    // checkout, else above the repository it was cloned from).
    private static readonly Lazy<string?> s_root = new(() =>
    {
        var r = Tool.Run(Repo.Path("tests", "xen-src-dir.sh"));
        return r.ExitCode == 0 && r.Stdout.Trim() is { Length: > 0 } dir && Directory.Exists(dir) ? dir : null;
    });

    /// <summary>The folder, or null when there is none.</summary>
    public static string? Root => s_root.Value;

    /// <summary>The folder; throws with what to do when there is none.</summary>
    public static string Require() => Root ?? throw new InvalidOperationException(
        "Xen's sources are not found: ../shared/xen-src (xen-4.17.3.tar.xz and series-4.17.3..4.17.4/) beside the checkout, or XLP_XEN_SRC");

    /// <summary>The stable series' patches, in order.</summary>
    public static string[] Series() => Directory.GetFiles(Path.Combine(Require(), "series-4.17.3..4.17.4"), "*.patch").Order(StringComparer.Ordinal).ToArray();

    /// <summary>The 4.17.3 tarball.</summary>
    public static string Tarball417 => Path.Combine(Require(), "xen-4.17.3.tar.xz");
}
