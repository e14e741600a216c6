using System.Collections.Concurrent;
using System.Diagnostics;
using Xunit;

namespace XenLivepatch.TestKit;

/// <summary>An upstream Xen hypervisor built here from its release tarball (tests/qemu/build-xen.sh).</summary>
/// <param name="Version">The release, e.g. 4.22.0.</param>
/// <param name="Image">The multiboot image QEMU boots (<c>run.sh --xen</c>).</param>
/// <param name="Syms">Its ELF with symbols (<c>xen-syms</c>).</param>
/// <param name="BuildId">Its build-id (hex).</param>
public sealed record UpstreamXenBuild(string Version, string Image, string Syms, string BuildId);

/// <summary>
/// Upstream Xen hypervisors, built once per machine into <c>artifacts/xen-VERSION</c> by tests/qemu/build-xen.sh from the
/// tarball in the project's shared sources (<c>shared/xen-src</c> above the checkout, or <c>$XLP_XEN_SRC</c>).
/// </summary>
public static class UpstreamXen
{
    /// <summary>Current Xen, the second real oracle beside Debian's 4.17.7.</summary>
    public const string Xen422 = "4.22.0";

    private static readonly ConcurrentDictionary<string, Lazy<UpstreamXenBuild>> s_builds = new();

    /// <summary>Where a version is built (the script's default).</summary>
    public static string CacheDirectory(string version) => Repo.Path("artifacts", "xen-" + version);

    /// <summary>The tarball of <paramref name="version"/>, or null where the shared sources are not at hand.</summary>
    public static string? Tarball(string version)
    {
        string file = $"xen-{version}.tar.xz";
        return XenSource.Root is { } src && File.Exists(Path.Combine(src, file)) ? Path.Combine(src, file) : null;
    }

    /// <summary>Why <paramref name="version"/> cannot be had here: null when it is built or its tarball is at hand.</summary>
    public static string? Missing(string version) =>
        File.Exists(Path.Combine(CacheDirectory(version), "READY")) || Tarball(version) != null ? null
        : $"Xen {version} is neither built ({CacheDirectory(version)}) nor at hand as xen-{version}.tar.xz (shared/xen-src above the checkout, or $XLP_XEN_SRC)";

    /// <summary>Builds <paramref name="version"/> once (a minute or more: progress goes to the script's stderr), then returns it.</summary>
    public static UpstreamXenBuild Get(string version) => s_builds.GetOrAdd(version, v => new Lazy<UpstreamXenBuild>(() => Build(v))).Value;

    private static UpstreamXenBuild Build(string version)
    {
        string dir = CacheDirectory(version);
        var psi = new ProcessStartInfo("bash") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        psi.ArgumentList.Add(Repo.Path("tests", "qemu", "build-xen.sh"));
        psi.ArgumentList.Add(version);
        psi.ArgumentList.Add(dir);
        using var p = Process.Start(psi) ?? throw new InvalidOperationException("cannot start tests/qemu/build-xen.sh");
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        if (!p.WaitForExit(TimeSpan.FromMinutes(40)))
        {
            p.Kill(entireProcessTree: true);
            throw new TimeoutException($"tests/qemu/build-xen.sh {version} did not finish in 40 minutes");
        }
        if (p.ExitCode != 0)
            throw new InvalidOperationException($"tests/qemu/build-xen.sh {version} failed ({p.ExitCode}):\n{stdout.Result}\n{stderr.Result}");
        return new UpstreamXenBuild(version, Path.Combine(dir, "xen"), Path.Combine(dir, "xen-syms"), File.ReadAllText(Path.Combine(dir, "build-id")).Trim());
    }
}

/// <summary>A fact that boots an upstream Xen built here: skipped, saying why, where its sources are not at hand.</summary>
public sealed class UpstreamXenFactAttribute : FactAttribute
{
    /// <summary>Skips when <paramref name="version"/> can be neither found built nor built.</summary>
    public UpstreamXenFactAttribute(string version) => Skip = UpstreamXen.Missing(version);
}
