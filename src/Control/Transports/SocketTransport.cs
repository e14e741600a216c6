using System.Buffers.Binary;
using System.Net.Sockets;
using XenLivepatch.Abi;

namespace XenLivepatch.Control;

/// <summary>
/// The sandbox hypervisor's Unix socket: each sysctl travels as a <see cref="SocketWire"/> request (the
/// 136-byte <c>xen_sysctl</c> and the caller buffers), each message preceded by its length (u32, little-endian);
/// the reply brings back the structure, the hypercall's result and the buffers the hypervisor wrote.
/// </summary>
public sealed class SocketTransport : ISysctlTransport, IPayloadSignatureQuery
{
    private readonly Socket _socket;
    private readonly byte[] _header = new byte[4];

    private SocketTransport(Socket socket, string path, LivepatchAbi abi)
    {
        _socket = socket;
        Path = path;
        Abi = abi;
    }

    /// <summary>The socket's path.</summary>
    public string Path { get; }

    /// <inheritdoc/>
    public string Description => $"the sandbox hypervisor at {Path}";

    /// <inheritdoc/>
    public LivepatchAbi Abi { get; private set; }

    /// <summary>
    /// Connects to the sandbox at <paramref name="path"/> and probes its interface version (or uses
    /// <paramref name="abi"/>). Fails, saying what to do, when nothing listens there.
    /// </summary>
    public static async Task<TransportOpenResult> OpenAsync(string path, LivepatchAbi? abi = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(path);
        if (PathProblem(path) is { } tooLong)
            return TransportOpenResult.Failed(tooLong, "give a shorter path, or a symbolic link with a shorter path to the socket");
        var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        try
        {
            await socket.ConnectAsync(new UnixDomainSocketEndPoint(path), cancellationToken).ConfigureAwait(false);
        }
        catch (SocketException e)
        {
            socket.Dispose();
            string why = !File.Exists(path) ? $"no sandbox socket at {path}" : e.SocketErrorCode switch
            {
                SocketError.ConnectionRefused => $"nothing listens on {path} (a sandbox that has stopped left it behind)",
                SocketError.AccessDenied => $"no permission to connect to {path}",
                _ => $"cannot connect to {path}: {e.Message}",
            };
            string advice = e.SocketErrorCode == SocketError.AccessDenied
                ? "run as root, or as a member of the group that owns the socket"
                : "start the sandbox hypervisor with 'xen-livepatch sandbox', or point --sandbox PATH (or XEN_LIVEPATCH_SANDBOX) at its socket";
            return TransportOpenResult.Failed(why, advice);
        }
        var transport = new SocketTransport(socket, path, abi ?? LivepatchAbi.Xen417);
        return await InterfaceProbe.OpenAsync(transport, abi, static (t, a) => t.Abi = a,
            "check that the sandbox at that path is running and is ours ('xen-livepatch sandbox')", path, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>The longest socket path a Unix socket address holds (sun_path's 108 bytes, less the NUL).</summary>
    public const int MaxPathBytes = 107;

    /// <summary>Why <paramref name="path"/> cannot be a Unix socket address, or null when it can.</summary>
    public static string? PathProblem(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        if (path.Length == 0)
            return "the socket path is empty";
        int bytes = System.Text.Encoding.UTF8.GetByteCount(path);
        return bytes > MaxPathBytes ? $"the socket path {path} is {bytes} bytes; a Unix socket address holds at most {MaxPathBytes}" : null;
    }

    /// <inheritdoc/>
    public async ValueTask<int> CallAsync(byte[] sysctl, IReadOnlyList<WireBuffer> buffers, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(sysctl);
        ArgumentNullException.ThrowIfNull(buffers);
        byte[] request = SocketWire.EncodeRequest(sysctl, buffers);
        if (request.Length > SocketWire.MaxMessage)
            throw new LivepatchTransportException($"a sysctl of {request.Length} bytes is larger than the sandbox accepts ({SocketWire.MaxMessage})");
        long outBytes = buffers.Where(b => !b.In).Sum(b => (long)b.Data.Length);
        if (outBytes > SocketWire.MaxOutBytes)
            throw new LivepatchTransportException($"a sysctl asking for {outBytes} bytes of buffers back is larger than the sandbox answers ({SocketWire.MaxOutBytes})");
        return await ExchangeAsync(request, sysctl, buffers, null, cancellationToken).ConfigureAwait(false);
    }

    /// <inheritdoc/>
    public async ValueTask<int> XenVersionAsync(int cmd, WireBuffer? arg, CancellationToken cancellationToken = default)
    {
        if (arg != null && arg.Data.Length > SocketWire.MaxXenVersionBuffer)
            throw new LivepatchTransportException($"a xen_version buffer of {arg.Data.Length} bytes is larger than the sandbox accepts ({SocketWire.MaxXenVersionBuffer})");
        byte[] request = SocketWire.EncodeXenVersionRequest(cmd, arg);
        var op = request.AsSpan(24, SocketWire.XenVersionOpSize).ToArray();
        return await ExchangeAsync(request, op, arg == null ? [] : [arg],
            "it predates xen_version over the socket: restart it with this version of xen-livepatch", cancellationToken).ConfigureAwait(false);
    }

    // One request and its reply; the reply's op (as long as op) is copied back into op, its buffers into the caller's.
    private async Task<int> ExchangeAsync(byte[] request, byte[] op, IReadOnlyList<WireBuffer> buffers, string? ifClosed, CancellationToken cancellationToken)
    {
        byte[] framed = new byte[4 + request.Length];
        BinaryPrimitives.WriteInt32LittleEndian(framed, request.Length);
        request.CopyTo(framed, 4);
        byte[] reply = await ExchangeFramedAsync(framed, ifClosed, cancellationToken).ConfigureAwait(false);
        if (!SocketWire.TryDecodeReply(reply, op.Length, out int rc, out byte[] back, out var outs, out string error))
            throw new LivepatchTransportException($"the sandbox at {Path} sent a malformed reply ({error})");
        back.AsSpan(0, Math.Min(back.Length, op.Length)).CopyTo(op);
        foreach (var (address, data) in outs)
        {
            var target = buffers.FirstOrDefault(b => b.Out && b.Address == address && b.Data.Length == data.Length)
                ?? throw new LivepatchTransportException($"the sandbox at {Path} returned a buffer at 0x{address:x} that was not sent");
            data.CopyTo(target.Data, 0);
        }
        return rc;
    }

    /// <inheritdoc/>
    public async ValueTask<PayloadSignatureStatus?> GetSignatureStatusAsync(string name, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(name);
        byte[] request = SocketWire.EncodeStatusRequest(name);
        byte[] framed = new byte[4 + request.Length];
        BinaryPrimitives.WriteInt32LittleEndian(framed, request.Length);
        request.CopyTo(framed, 4);
        byte[] reply = await ExchangeFramedAsync(framed, "it predates signature status requests: restart it with this version of xen-livepatch", cancellationToken).ConfigureAwait(false);
        if (!SocketWire.TryDecodeStatusReply(reply, out int rc, out var fields, out string error))
            throw new LivepatchTransportException($"the sandbox at {Path} sent a malformed status reply ({error})");
        return rc == 0 ? PayloadSignatureStatus.FromFields(fields) : null;
    }

    // Sends one framed message and returns the reply's bytes; ifClosed says why a sandbox may hang up on it.
    private async Task<byte[]> ExchangeFramedAsync(byte[] framed, string? ifClosed, CancellationToken cancellationToken)
    {
        try
        {
            await SendAllAsync(framed, cancellationToken).ConfigureAwait(false);
            await ReceiveExactlyAsync(_header, cancellationToken).ConfigureAwait(false);
            int length = BinaryPrimitives.ReadInt32LittleEndian(_header);
            if (length is <= 0 or > SocketWire.MaxMessage)
                throw new LivepatchTransportException($"the sandbox at {Path} sent a reply of {length} bytes; is this socket a livepatch sandbox?");
            var reply = new byte[length];
            await ReceiveExactlyAsync(reply, cancellationToken).ConfigureAwait(false);
            return reply;
        }
        catch (SocketException e)
        {
            throw new LivepatchTransportException($"the connection to the sandbox at {Path} failed: {e.Message}; is it still running?", e);
        }
        catch (LivepatchTransportException e) when (ifClosed != null && e.Message.Contains("closed the connection", StringComparison.Ordinal))
        {
            throw new LivepatchTransportException($"the sandbox at {Path} closed the connection: {ifClosed}", e);
        }
    }

    private async Task SendAllAsync(ReadOnlyMemory<byte> data, CancellationToken cancellationToken)
    {
        while (!data.IsEmpty)
        {
            int n = await _socket.SendAsync(data, SocketFlags.None, cancellationToken).ConfigureAwait(false);
            data = data[n..];
        }
    }

    private async Task ReceiveExactlyAsync(Memory<byte> into, CancellationToken cancellationToken)
    {
        while (!into.IsEmpty)
        {
            int n = await _socket.ReceiveAsync(into, SocketFlags.None, cancellationToken).ConfigureAwait(false);
            if (n == 0)
                throw new LivepatchTransportException($"the sandbox at {Path} closed the connection; is it still running?");
            into = into[n..];
        }
    }

    /// <inheritdoc/>
    public ValueTask DisposeAsync()
    {
        _socket.Dispose();
        return ValueTask.CompletedTask;
    }
}
