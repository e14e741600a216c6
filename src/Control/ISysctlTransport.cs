using XenLivepatch.Abi;

namespace XenLivepatch.Control;

/// <summary>
/// One way to reach a hypervisor's <c>XEN_SYSCTL_livepatch_op</c>: it takes the 136-byte <c>xen_sysctl</c>
/// exactly as the hypercall does, plus the caller buffers its guest handles point at, and returns the
/// hypercall's result. Every transport carries the same bytes: real Xen through <c>/dev/xen/privcmd</c>
/// (<see cref="PrivcmdTransport"/>), the sandbox's Unix socket (<see cref="SocketTransport"/>), or a hypervisor
/// in this process (<see cref="InProcessTransport"/>).
/// </summary>
public interface ISysctlTransport : IAsyncDisposable
{
    /// <summary>What this transport talks to, for messages ("Xen through /dev/xen/privcmd", "the sandbox at PATH").</summary>
    string Description { get; }

    /// <summary>
    /// The sysctl dialect the hypervisor accepts: its <c>XEN_SYSCTL_INTERFACE_VERSION</c> (found by probing when the
    /// transport opened) and the structure layout that goes with it.
    /// </summary>
    LivepatchAbi Abi { get; }

    /// <summary>
    /// Issues one sysctl. <paramref name="sysctl"/> (136 bytes) is updated with what the hypervisor wrote back,
    /// and every buffer marked <see cref="WireBuffer.Out"/> receives what the hypervisor wrote into it. The guest
    /// handles inside <paramref name="sysctl"/> are the <see cref="WireBuffer.Address"/> values of
    /// <paramref name="buffers"/>; a transport that must place the buffers elsewhere (privcmd) translates them and
    /// hands <paramref name="sysctl"/> back with the caller's addresses.
    /// </summary>
    /// <returns>The hypercall's result: 0, a count (LIST), or a negative Xen errno.</returns>
    /// <exception cref="LivepatchTransportException">The transport itself failed (connection lost, malformed reply).</exception>
    ValueTask<int> CallAsync(byte[] sysctl, IReadOnlyList<WireBuffer> buffers, CancellationToken cancellationToken = default);

    /// <summary>
    /// Issues the <c>xen_version</c> hypercall: <c>HYPERVISOR_xen_version(cmd, arg)</c>, <paramref name="arg"/> being
    /// the buffer its guest handle points at (null for none). A transport that cannot reach it answers -ENOSYS.
    /// </summary>
    /// <returns>The hypercall's result: a size or count, or a negative Xen errno.</returns>
    /// <exception cref="LivepatchTransportException">The transport itself failed.</exception>
    ValueTask<int> XenVersionAsync(int cmd, WireBuffer? arg, CancellationToken cancellationToken = default) =>
        ValueTask.FromResult(-(int)XenErrno.ENOSYS);
}

/// <summary>
/// The transport failed, not the hypervisor: the sandbox closed the connection, a reply was malformed, the
/// privcmd device refused the request. The message says what happened and what to do next.
/// </summary>
public sealed class LivepatchTransportException : IOException
{
    /// <summary>Creates the exception.</summary>
    public LivepatchTransportException() : base("the livepatch transport failed")
    {
    }

    /// <summary>Creates the exception with a message.</summary>
    public LivepatchTransportException(string message) : base(message)
    {
    }

    /// <summary>Creates the exception with a message and its cause.</summary>
    public LivepatchTransportException(string message, Exception innerException) : base(message, innerException)
    {
    }
}
