using XenLivepatch.Abi;

namespace XenLivepatch.Control;

/// <summary>Which transport to open.</summary>
public enum TransportChoice
{
    /// <summary>Real Xen when <c>/dev/xen/privcmd</c> exists, else the sandbox socket.</summary>
    Auto,
    /// <summary>Real Xen through <c>/dev/xen/privcmd</c> only.</summary>
    Xen,
    /// <summary>The sandbox socket only.</summary>
    Sandbox,
}

/// <summary>
/// Picks and opens the transport a tool should use: real Xen through <c>/dev/xen/privcmd</c> when that device
/// exists, otherwise the sandbox hypervisor's socket at <see cref="DefaultSandboxSocket"/> (or the path in
/// <see cref="SandboxEnvironmentVariable"/>). A caller may insist on one (<see cref="TransportChoice"/>) and give
/// the socket's path.
/// </summary>
public static class LivepatchTransports
{
    /// <summary>Xen's privcmd device: its presence means "this is a Xen domain".</summary>
    public const string PrivcmdDevice = "/dev/xen/privcmd";

    /// <summary>Where the sandbox hypervisor listens unless told otherwise.</summary>
    public const string DefaultSandboxSocket = "/run/xen-livepatch/sandbox.sock";

    /// <summary>The environment variable naming another sandbox socket.</summary>
    public const string SandboxEnvironmentVariable = "XEN_LIVEPATCH_SANDBOX";

    /// <summary>The sandbox socket to use: <paramref name="explicitPath"/>, else $XEN_LIVEPATCH_SANDBOX, else the default.</summary>
    public static string SandboxSocket(string? explicitPath = null) =>
        explicitPath is { Length: > 0 } ? explicitPath
        : Environment.GetEnvironmentVariable(SandboxEnvironmentVariable) is { Length: > 0 } env ? env
        : DefaultSandboxSocket;

    /// <summary>
    /// Opens the transport <paramref name="choice"/> asks for. With <see cref="TransportChoice.Auto"/>: privcmd when
    /// <c>/dev/xen/privcmd</c> exists (its failure is reported, not hidden by a fallback), else the sandbox socket;
    /// when neither is there the result says both and what to do.
    /// </summary>
    public static async Task<TransportOpenResult> OpenAsync(TransportChoice choice = TransportChoice.Auto, string? sandboxPath = null,
        LivepatchAbi? abi = null, CancellationToken cancellationToken = default)
    {
        bool privcmd = OperatingSystem.IsLinux() && File.Exists(PrivcmdDevice);
        if (choice == TransportChoice.Xen || (choice == TransportChoice.Auto && privcmd))
        {
            if (!OperatingSystem.IsLinux())
                return TransportOpenResult.Failed("real Xen is reached through /dev/xen/privcmd, which only Linux has", "run in Xen's control domain (dom0)");
            return await PrivcmdTransport.OpenAsync(abi, cancellationToken).ConfigureAwait(false);
        }
        string socket = SandboxSocket(sandboxPath);
        var opened = await SocketTransport.OpenAsync(socket, abi, cancellationToken).ConfigureAwait(false);
        if (opened.Transport != null || choice == TransportChoice.Sandbox)
            return opened;
        // Auto, and neither is there.
        return TransportOpenResult.Failed(
            $"no hypervisor to talk to: {PrivcmdDevice} is absent (this is not Xen's control domain) and {opened.Problem}",
            "run this in dom0 as root, or start the sandbox hypervisor with 'xen-livepatch sandbox' " +
            $"(--sandbox PATH or {SandboxEnvironmentVariable}=PATH name another socket)");
    }
}
