namespace XenLivepatch.TestKit;

/// <summary>
/// Upstream Xen's sources for building hypervisors from source (../shared/xen-src beside the checkout): the
/// 4.17.3 release tarball and the stable series of commits to 4.17.4. <c>XLP_XEN_SRC</c> points elsewhere.
/// </summary>
public static class XenSource
{
    private static readonly Lazy<string?> s_root = new(() =>
    {
        if (Environment.GetEnvironmentVariable("XLP_XEN_SRC") is { Length: > 0 } given)
            return Directory.Exists(given) ? Path.GetFullPath(given) : null;
        for (var dir = new DirectoryInfo(Repo.Root); dir != null; dir = dir.Parent)
        {
            string candidate = Path.Combine(dir.FullName, "shared", "xen-src");
            if (Directory.Exists(candidate))
                return candidate;
        }
        return null;
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
