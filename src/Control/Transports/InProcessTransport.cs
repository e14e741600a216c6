using XenLivepatch.Abi;

namespace XenLivepatch.Control;

/// <summary>
/// A hypervisor's sysctl entry point in this process: takes the 136-byte <c>xen_sysctl</c> (updated in place)
/// and the caller buffers, returns the hypercall's result. The livepatch core's <c>SysctlHandler</c> fits:
/// <c>(sysctl, buffers) =&gt; handler.Handle(sysctl, new GuestBuffers(buffers), privileged: true)</c>.
/// </summary>
public delegate int SysctlEntryPoint(Span<byte> sysctl, IReadOnlyList<WireBuffer> buffers);

/// <summary>
/// A hypervisor's <c>xen_version</c> entry point in this process: <c>cmd</c>, the guest handle <c>arg</c> and the
/// caller buffers it may point into. The core's <c>SysctlHandler.XenVersion</c> fits:
/// <c>(cmd, arg, buffers) =&gt; handler.XenVersion(cmd, arg, new GuestBuffers(buffers), privileged: true)</c>.
/// </summary>
public delegate int XenVersionEntryPoint(int cmd, ulong arg, IReadOnlyList<WireBuffer> buffers);

/// <summary>
/// Calls a hypervisor that lives in this process (the livepatch core over an offline or sandbox target) with the
/// same bytes as the hypercall: for tests, and for tools that host the core themselves. The buffers are handed
/// over as they are; the hypervisor reads and writes them through the guest handles.
/// </summary>
public sealed class InProcessTransport : ISysctlTransport, IPayloadSignatureQuery
{
    private readonly SysctlEntryPoint _entry;

    private readonly XenVersionEntryPoint? _xenVersion;

    private InProcessTransport(SysctlEntryPoint entry, LivepatchAbi abi, string description, XenVersionEntryPoint? xenVersion)
    {
        _entry = entry;
        _xenVersion = xenVersion;
        Abi = abi;
        Description = description;
    }

    /// <summary>
    /// A transport to <paramref name="entry"/> (and <paramref name="xenVersion"/>, without which <c>xen_version</c>
    /// answers -ENOSYS). With <paramref name="abi"/> null, the interface version is probed as on real Xen (see
    /// <see cref="InterfaceProbe"/>); the result says why when no version is accepted.
    /// </summary>
    public static async Task<TransportOpenResult> OpenAsync(SysctlEntryPoint entry, LivepatchAbi? abi = null,
        string description = "the hypervisor in this process", XenVersionEntryPoint? xenVersion = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(entry);
        if (abi != null)
            return TransportOpenResult.Opened(Create(entry, abi, description, xenVersion));
        var probe = await InterfaceProbe.RunAsync(version => ValueTask.FromResult(entry(InterfaceProbe.Request(version), [])), cancellationToken).ConfigureAwait(false);
        return probe.Abi == null
            ? TransportOpenResult.Failed(probe.Problem!, probe.Advice!)
            : TransportOpenResult.Opened(new InProcessTransport(entry, probe.Abi, description, xenVersion), probe.Warning);
    }

    /// <summary>A transport to <paramref name="entry"/> (and <paramref name="xenVersion"/>) speaking <paramref name="abi"/> (no probe).</summary>
    public static InProcessTransport Create(SysctlEntryPoint entry, LivepatchAbi abi, string description = "the hypervisor in this process",
        XenVersionEntryPoint? xenVersion = null)
    {
        ArgumentNullException.ThrowIfNull(entry);
        ArgumentNullException.ThrowIfNull(abi);
        return new InProcessTransport(entry, abi, description, xenVersion);
    }

    /// <inheritdoc/>
    public string Description { get; }

    /// <inheritdoc/>
    public LivepatchAbi Abi { get; }

    /// <inheritdoc/>
    public ValueTask<int> CallAsync(byte[] sysctl, IReadOnlyList<WireBuffer> buffers, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(sysctl);
        ArgumentNullException.ThrowIfNull(buffers);
        cancellationToken.ThrowIfCancellationRequested();
        return ValueTask.FromResult(_entry(sysctl, buffers));
    }

    /// <summary>
    /// Where <see cref="GetSignatureStatusAsync"/> reads payload signature checks (the hypervisor in this process);
    /// null when it reports none.
    /// </summary>
    public Func<string, PayloadSignatureStatus?>? SignatureStatus { get; set; }

    /// <inheritdoc/>
    public ValueTask<PayloadSignatureStatus?> GetSignatureStatusAsync(string name, CancellationToken cancellationToken = default) =>
        ValueTask.FromResult(SignatureStatus?.Invoke(name));

    /// <inheritdoc/>
    public ValueTask<int> XenVersionAsync(int cmd, WireBuffer? arg, CancellationToken cancellationToken = default)
    {
        cancellationToken.ThrowIfCancellationRequested();
        if (_xenVersion == null)
            return ValueTask.FromResult(-(int)XenErrno.ENOSYS);
        return ValueTask.FromResult(_xenVersion(cmd, arg?.Address ?? 0, arg == null ? [] : [arg]));
    }

    /// <inheritdoc/>
    public ValueTask DisposeAsync() => ValueTask.CompletedTask;
}
