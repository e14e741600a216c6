namespace XenLivepatch.TestKit;

/// <summary>
/// Boots a real arm64 Xen 4.17.3 with live patching (built from source by tests/qemu-arm64/fetch.sh; Debian's
/// arm64 hypervisor has no live patching) under qemu-system-aarch64 with Debian's arm64 dom0, runs a shell
/// script in dom0 and returns its output files, as <see cref="XenQemu"/> does for x86 (same run.sh, same
/// result). A boot takes 3-5 s on an idle 2-core machine; the first use builds Xen and downloads the dom0's
/// packages (about a minute).
/// </summary>
public static class XenQemuArm64
{
    private static readonly Lazy<bool> s_fetched = new(Fetch);

    /// <summary>Where tests/qemu-arm64/fetch.sh keeps what it builds and downloads ($XEN_QEMU_ARM64_CACHE, or artifacts/qemu-arm64).</summary>
    public static string CacheDirectory =>
        Environment.GetEnvironmentVariable("XEN_QEMU_ARM64_CACHE") is { Length: > 0 } cache ? cache : Repo.Path("artifacts", "qemu-arm64");

    /// <summary>The booting hypervisor's ELF with symbols (payloads are built against it). Call <see cref="EnsureFetched"/> first.</summary>
    public static string XenSyms => Path.Combine(CacheDirectory, "xen-syms");

    /// <summary>The booting hypervisor's build-id (hex).</summary>
    public static string BuildId => File.ReadAllText(Path.Combine(CacheDirectory, "build-id")).Trim();

    /// <summary>The hypervisor's symbols as "address type name" lines (what x86's <c>/proc/xen/xensyms</c> lists).</summary>
    public static string XenSymsListing => File.ReadAllText(Path.Combine(CacheDirectory, "xensyms"));

    /// <summary>Runs tests/qemu-arm64/fetch.sh once per process (builds and downloads on first use, then returns at once).</summary>
    public static void EnsureFetched() => _ = s_fetched.Value;

    private static bool Fetch()
    {
        var r = XenQemu.Exec("bash", [Repo.Path("tests", "qemu-arm64", "fetch.sh"), CacheDirectory], TimeSpan.FromMinutes(30));
        if (r.ExitCode != 0)
            throw new InvalidOperationException($"tests/qemu-arm64/fetch.sh failed with exit code {r.ExitCode}:\n{r.Stdout}\n{r.Stderr}");
        return true;
    }

    /// <summary>
    /// Boots arm64 Xen with a dom0 whose <c>/work</c> holds a copy of <paramref name="filesDirectory"/>, runs
    /// <paramref name="script"/> there and returns what it wrote under <c>/work/out</c>: see <see cref="XenQemu.Run"/>.
    /// ELF programs for arm64 among the files get their shared libraries from Debian's arm64 packages.
    /// </summary>
    public static XenQemuResult Run(string filesDirectory, string script, TimeSpan? timeout = null, IReadOnlyList<string>? options = null)
    {
        EnsureFetched();
        return XenQemu.Boot("arm64", CacheDirectory, filesDirectory, script, timeout ?? TimeSpan.FromMinutes(3), options);
    }
}
