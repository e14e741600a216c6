using System.Runtime.InteropServices;
using XenLivepatch.Control;
using XenLivepatch.Elf;
using XenLivepatch.Tooling;

namespace XenLivepatch.Host;

/// <summary>The running hypervisor as an offline target, or why it could not be had.</summary>
/// <param name="Target">The target (null on failure).</param>
/// <param name="Description">What it is ("Xen through /dev/xen/privcmd, build-id …; symbols from /proc/xen/xensyms").</param>
/// <param name="Problem">Why there is none.</param>
/// <param name="Advice">What to do.</param>
public sealed record RunningTargetResult(OfflineTarget? Target, string Description, string? Problem, string? Advice);

/// <summary>
/// The hypervisor that runs here, as <c>build</c>, <c>check</c> and <c>info</c> take a target: its build-id from
/// XENVER_build_id through the control library and its symbols from <c>/proc/xen/xensyms</c> on real Xen, or, for
/// the sandbox, the image whose build-id is the running one among the images the caller knows of.
/// </summary>
public static class RunningTarget
{
    /// <summary>Where a Xen control domain lists the hypervisor's symbols (xenfs).</summary>
    public const string XenSymsPath = "/proc/xen/xensyms";

    /// <summary>
    /// Finds the running hypervisor through the transport <paramref name="choice"/> (and sandbox socket
    /// <paramref name="sandboxPath"/>) opens; <paramref name="sandboxImages"/> are the images a sandbox may run.
    /// </summary>
    public static async Task<RunningTargetResult> FindAsync(TransportChoice choice, string? sandboxPath, IEnumerable<string> sandboxImages,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(sandboxImages);
        var opened = await LivepatchTransports.OpenAsync(choice, sandboxPath, null, cancellationToken).ConfigureAwait(false);
        if (opened.Transport == null)
            return new RunningTargetResult(null, "", $"no running hypervisor to default to: {opened.Problem}", $"give --target IMAGE or --symbols FILE --build-id HEX, or {opened.Advice}");
        await using var client = new LivepatchClient(opened.Transport);
        return await FindAsync(client, sandboxImages, XenSymsPath, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>The running hypervisor behind <paramref name="client"/>.</summary>
    public static async Task<RunningTargetResult> FindAsync(LivepatchClient client, IEnumerable<string> sandboxImages, string xenSymsPath = XenSymsPath,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(client);
        ArgumentNullException.ThrowIfNull(sandboxImages);
        var id = await client.GetBuildIdAsync(cancellationToken).ConfigureAwait(false);
        string where = client.Transport.Description;
        if (!id.Result.Succeeded)
        {
            return new RunningTargetResult(null, where, $"{where} did not give its build-id ({XenErrors.Name(id.Result.Errno)}: {XenErrors.Message(id.Result.Errno)})",
                "give --target IMAGE or --symbols FILE --build-id HEX");
        }
        if (client.Transport is PrivcmdTransport)
        {
            string listing;
            try
            {
                listing = await File.ReadAllTextAsync(xenSymsPath, cancellationToken).ConfigureAwait(false);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                return new RunningTargetResult(null, where, $"cannot read the hypervisor's symbols at {xenSymsPath}: {e.Message}",
                    "mount xenfs on /proc/xen (mount -t xenfs xenfs /proc/xen), or give --symbols FILE --build-id HEX");
            }
            var machine = RuntimeInformation.OSArchitecture == Architecture.Arm64 ? ElfMachine.AArch64 : ElfMachine.X86_64;
            string description = $"the running hypervisor ({where}, build-id {id.Hex}; symbols from {xenSymsPath})";
            return OfflineTarget.TryFromXenSyms(description, listing, id.BuildId, machine, out var target, out string? why)
                ? new RunningTargetResult(target, description, null, null)
                : new RunningTargetResult(null, where, $"{xenSymsPath}: {why}", "give --symbols FILE --build-id HEX");
        }
        var tried = new List<string>();
        foreach (string image in sandboxImages.Distinct(StringComparer.Ordinal))
        {
            if (!File.Exists(image))
                continue;
            tried.Add(image);
            if (!ElfFile.TryRead(await File.ReadAllBytesAsync(image, cancellationToken).ConfigureAwait(false), out var elf, out _))
                continue;
            if (!elf.TryGetGnuBuildId(out var imageId, out _) || !imageId.Span.SequenceEqual(id.BuildId))
                continue;
            string description = $"the running hypervisor ({where}, build-id {id.Hex}; image {image})";
            if (OfflineTarget.TryFromImage(Path.GetFileName(image), elf, out var target, out _))
                return new RunningTargetResult(target, description, null, null);
        }
        return new RunningTargetResult(null, where,
            $"{where} runs build-id {id.Hex}, and no image it may run has that build-id" + (tried.Count > 0 ? $" (looked at {string.Join(", ", tried)})" : ""),
            "give --target IMAGE (the image the sandbox runs), or set XEN_LIVEPATCH_SANDBOX_IMAGE");
    }
}
