using XenLivepatch.Abi;

namespace XenLivepatch.Control;

/// <summary>
/// A hypervisor's sysctl entry point in this process: takes the 136-byte <c>xen_sysctl</c> (updated in place)
/// and the caller buffers, returns the hypercall's result. The livepatch core's <c>SysctlHandler</c> fits:
/// <c>(sysctl, buffers) =&gt; handler.Handle(sysctl, new GuestBuffers(buffers), privileged: true)</c>.
/// </summary>
public delegate int SysctlEntryPoint(Span<byte> sysctl, IReadOnlyList<WireBuffer> buffers);

/// <summary>
/// Calls a hypervisor that lives in this process (the livepatch core over an offline or sandbox target) with the
/// same bytes as the hypercall: for tests, and for tools that host the core themselves. The buffers are handed
/// over as they are; the hypervisor reads and writes them through the guest handles.
/// </summary>
public sealed class InProcessTransport : ISysctlTransport, IPayloadSignatureQuery
{
    private readonly SysctlEntryPoint _entry;

    private InProcessTransport(SysctlEntryPoint entry, LivepatchAbi abi, string description)
    {
        _entry = entry;
        Abi = abi;
        Description = description;
    }

    /// <summary>
    /// A transport to <paramref name="entry"/>. With <paramref name="abi"/> null, the interface version is probed as
    /// on real Xen (see <see cref="InterfaceProbe"/>); the result says why when no version is accepted.
    /// </summary>
    public static async Task<TransportOpenResult> OpenAsync(SysctlEntryPoint entry, LivepatchAbi? abi = null,
        string description = "the hypervisor in this process", CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(entry);
        if (abi != null)
            return TransportOpenResult.Opened(Create(entry, abi, description));
        var probe = await InterfaceProbe.RunAsync(version => ValueTask.FromResult(entry(InterfaceProbe.Request(version), [])), cancellationToken).ConfigureAwait(false);
        return probe.Abi == null
            ? TransportOpenResult.Failed(probe.Problem!, probe.Advice!)
            : TransportOpenResult.Opened(new InProcessTransport(entry, probe.Abi, description), probe.Warning);
    }

    /// <summary>A transport to <paramref name="entry"/> speaking <paramref name="abi"/> (no probe).</summary>
    public static InProcessTransport Create(SysctlEntryPoint entry, LivepatchAbi abi, string description = "the hypervisor in this process")
    {
        ArgumentNullException.ThrowIfNull(entry);
        ArgumentNullException.ThrowIfNull(abi);
        return new InProcessTransport(entry, abi, description);
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
    public ValueTask DisposeAsync() => ValueTask.CompletedTask;
}
