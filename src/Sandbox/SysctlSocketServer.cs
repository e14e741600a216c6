using System.Buffers.Binary;
using System.Net.Sockets;
using XenLivepatch.Abi;
using XenLivepatch.Hypervisor;
using XenLivepatch.Interop;

namespace XenLivepatch.Sandbox;

/// <summary>
/// What the socket server lets its peers make it hold. A peer's request is read whole before it is answered,
/// and its out-buffers are allocated and echoed: these bound that, for all peers together.
/// </summary>
public sealed record SocketServerLimits
{
    /// <summary>Bytes held for all peers' requests and replies at once (messages, out-buffers, replies).</summary>
    public long HeldBytes { get; init; } = 64 * 1024 * 1024;
    /// <summary>A request and reply this small needs no share of <see cref="HeldBytes"/>: small calls are never kept waiting.</summary>
    public int SmallRequest { get; init; } = 64 * 1024;
    /// <summary>Peers served at once; more wait to be accepted.</summary>
    public int Connections { get; init; } = 256;
    /// <summary>
    /// Connections one uid other than root may hold at once; more from it are closed as they come. With
    /// <see cref="RootReserve"/>, no peer but root can keep the others out by opening connections and idling.
    /// </summary>
    public int ConnectionsPerUser { get; init; } = 32;
    /// <summary>Of <see cref="Connections"/>, how many only root may take (the operator gets in whatever others hold).</summary>
    public int RootReserve { get; init; } = 16;
    /// <summary>How long an unprivileged peer may stay connected between requests (every answer it gets is EPERM).</summary>
    public TimeSpan UnprivilegedIdle { get; init; } = TimeSpan.FromSeconds(10);
    /// <summary>How long a request waits for its share of <see cref="HeldBytes"/> before its connection is closed.</summary>
    public TimeSpan BudgetWait { get; init; } = TimeSpan.FromSeconds(30);
    /// <summary>How long a peer may take to send a request's body, or to take its reply, before it is dropped.</summary>
    public TimeSpan IoTimeout { get; init; } = TimeSpan.FromSeconds(10);
}

/// <summary>
/// Serves the livepatch sysctl on a Unix socket, with the same bytes as the hypercall (<see cref="SocketWire"/>),
/// and the console sysctls and XENVER_build_id the operator's commands use.
/// The socket file is mode 0660, owned by root and by the configured group; a peer is privileged when it
/// runs as uid 0 or belongs to that group (by SO_PEERCRED and its supplementary groups), and every sub-op
/// of an unprivileged peer gets -EPERM, as Xen answers a guest that is not the control domain.
/// Each message on the stream is preceded by its length (u32, little-endian).
/// </summary>
/// <remarks>
/// Bounded whatever the peers do (<see cref="SocketServerLimits"/>): an unprivileged peer's sysctl gets no
/// out-buffer (its answer is EPERM before any is touched), and a request of its larger than a small one is read
/// through a 64 KiB window and never held; a privileged peer's large request takes a share of the held bytes for
/// its message, out-buffers and reply, waiting while others hold them, and gives it back once the reply is sent;
/// a peer that does not send its body or take its reply within the I/O timeout is dropped. No uid but root may
/// hold more than its share of the connections, and a few are kept for root: whoever opens connections and idles
/// on them, the operator gets in; an unprivileged peer (if the socket's mode lets one in) may not idle at all.
/// </remarks>
public sealed class SysctlSocketServer : IAsyncDisposable
{
    private readonly SysctlHandler _handler;
    private readonly Socket _listener;
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _accepting;
    private readonly TextWriter? _log;
    private readonly SocketServerLimits _limits;
    private readonly ByteBudget _budget;
    private readonly SemaphoreSlim _connections;
    private readonly ConnectionAdmission _admission;
    private readonly SysctlRequestLog? _requests;

    private SysctlSocketServer(SysctlHandler handler, string path, uint? group, TextWriter? log, SocketServerLimits? limits)
    {
        _handler = handler;
        _limits = limits ?? new SocketServerLimits();
        _budget = new ByteBudget(_limits.HeldBytes);
        _connections = new SemaphoreSlim(_limits.Connections);
        _admission = new ConnectionAdmission(_limits, log);
        _requests = log == null ? null : new SysctlRequestLog(log, handler.Core);
        Path = path;
        PrivilegedGroup = group;
        _log = log;
        RemoveStaleSocket(path);
        _listener = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        _listener.Bind(new UnixDomainSocketEndPoint(path));
        File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.GroupWrite);
        if (group is uint g && LibC.chown(path, uint.MaxValue, g) != 0)
            throw new IOException($"cannot give {path} to group {g}: {LibC.LastError()}");
        _listener.Listen(16);
        _accepting = Task.Run(AcceptLoop);
    }

    // A socket file nobody listens on is left from a sandbox that did not stop cleanly: replace it. A live
    // one, or anything that is not a socket, is not ours to remove.
    private static void RemoveStaleSocket(string path)
    {
        if (!File.Exists(path))
            return;
        if (!LibC.IsSocket(path))
            throw new IOException($"{path} exists and is not a socket");
        using (var probe = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified))
        {
            try
            {
                probe.Connect(new UnixDomainSocketEndPoint(path));
                throw new IOException($"another sandbox is serving {path}");
            }
            catch (SocketException e) when (e.SocketErrorCode == SocketError.ConnectionRefused)
            {
            }
        }
        File.Delete(path);
    }

    /// <summary>The socket's path.</summary>
    public string Path { get; }

    /// <summary>The group whose members may use the sysctl besides root; null when only root may.</summary>
    public uint? PrivilegedGroup { get; }

    /// <summary>Starts serving <paramref name="handler"/> at <paramref name="path"/>.</summary>
    public static SysctlSocketServer Start(SysctlHandler handler, string path, uint? privilegedGroup = null, TextWriter? log = null, SocketServerLimits? limits = null) =>
        new(handler, path, privilegedGroup, log, limits);

    /// <summary>The bytes held for peers' requests and replies right now (at most <see cref="SocketServerLimits.HeldBytes"/>).</summary>
    public long HeldBytes => _budget.Held;

    /// <summary>The connections of peers other than root served right now (at most <see cref="SocketServerLimits.Connections"/> less the root reserve).</summary>
    public int OthersConnections => _admission.OthersConnections;

    /// <summary>Whether a peer may use the sysctl.</summary>
    public bool IsPrivileged(in PeerCredentials peer) =>
        peer.Uid == 0 || (PrivilegedGroup is uint g && (peer.Gid == g || peer.Groups.Contains(g)));

    private async Task AcceptLoop()
    {
        while (!_stop.IsCancellationRequested)
        {
            Socket client;
            try
            {
                await _connections.WaitAsync(_stop.Token).ConfigureAwait(false);
                client = await _listener.AcceptAsync(_stop.Token).ConfigureAwait(false);
            }
            catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException or SocketException)
            {
                return;
            }
            _ = Task.Run(async () =>
            {
                try
                {
                    await Serve(client).ConfigureAwait(false);
                }
                finally
                {
                    _connections.Release();
                }
            });
        }
    }

    private async Task Serve(Socket client)
    {
        using (client)
        {
            PeerCredentials peer;
            try
            {
                peer = PeerCredentials.Of(client);
            }
            catch (Exception e) when (e is IOException or SocketException)
            {
                return;
            }
            if (!_admission.TryAdmit(peer))
                return;
            try
            {
                await Serve(client, peer).ConfigureAwait(false);
            }
            finally
            {
                _admission.Leave(peer);
            }
        }
    }

    private async Task Serve(Socket client, PeerCredentials peer)
    {
        await using var stream = new NetworkStream(client, ownsSocket: false);
        await ServeStream(stream, peer).ConfigureAwait(false);
    }

    // One peer's conversation: length-prefixed messages until it closes, sends a bad frame or is dropped. Any
    // stream serves (the fuzzing harness, fuzz/, feeds it hostile bytes without a socket).
    internal async Task ServeStream(Stream stream, PeerCredentials peer)
    {
        bool privileged = IsPrivileged(peer);
        var header = new byte[4];
        while (!_stop.IsCancellationRequested)
        {
            // An unprivileged peer may not hold its connection idle: it has nothing to wait for.
            using var idle = privileged ? null : CancellationTokenSource.CreateLinkedTokenSource(_stop.Token);
            idle?.CancelAfter(_limits.UnprivilegedIdle);
            try
            {
                await stream.ReadExactlyAsync(header, idle?.Token ?? _stop.Token).ConfigureAwait(false);
            }
            catch (Exception e) when (e is EndOfStreamException or IOException or OperationCanceledException)
            {
                return;
            }
            int length = BinaryPrimitives.ReadInt32LittleEndian(header);
            if (length is <= 0 or > SocketWire.MaxMessage)
            {
                _log?.WriteLine($"sysctl: pid {peer.Pid} uid {peer.Uid}: message of {length} bytes refused; closing");
                return;
            }
            if (!await (privileged ? ServePrivileged(stream, peer, length) : ServeUnprivileged(stream, peer, length)).ConfigureAwait(false))
                return;
        }
    }

    // An unprivileged peer's sysctl fails before it touches a buffer: none is allocated. A message of its larger
    // than a small one (an upload's) is read through a small window and only its xen_sysctl kept.
    private async Task<bool> ServeUnprivileged(Stream stream, PeerCredentials peer, int length)
    {
        if (length <= _limits.SmallRequest)
        {
            byte[]? small = await ReadMessage(stream, length).ConfigureAwait(false);
            byte[]? answer = small == null ? null : Answer(small, peer, privileged: false);
            return answer != null && await Reply(stream, answer).ConfigureAwait(false);
        }
        const int Head = 16 + XenSysctl.SizeOf;
        var window = new byte[_limits.SmallRequest];
        var head = new byte[Head];
        int read = 0;
        using (var timeout = Timeout())
        {
            try
            {
                while (read < length)
                {
                    int n = Math.Min(window.Length, length - read);
                    await stream.ReadExactlyAsync(window.AsMemory(0, n), timeout.Token).ConfigureAwait(false);
                    if (read < Head)
                        window.AsSpan(0, Math.Min(n, Head - read)).CopyTo(head.AsSpan(read));
                    read += n;
                }
            }
            catch (Exception e) when (e is EndOfStreamException or IOException or OperationCanceledException)
            {
                return false;
            }
        }
        if (BinaryPrimitives.ReadUInt32LittleEndian(head) != SocketWire.RequestMagic ||
            BinaryPrimitives.ReadUInt32LittleEndian(head.AsSpan(4)) != SocketWire.Version ||
            BinaryPrimitives.ReadUInt32LittleEndian(head.AsSpan(8)) != XenSysctl.SizeOf)
        {
            _log?.WriteLine($"sysctl: pid {peer.Pid} uid {peer.Uid}: a large message that is not a sysctl request; closing");
            return false;
        }
        byte[] sysctl = SocketWire.Sysctl(head);
        int rc = _handler.Handle(sysctl, new GuestBuffers([]), privileged: false);
        _requests?.Sysctl(peer, false, sysctl, rc);
        return await Reply(stream, SocketWire.EncodeReply(rc, sysctl, [])).ConfigureAwait(false);
    }

    // A privileged peer's large message, and its out-buffers and reply, take their share of the held bytes (none
    // when small), and give it back once the reply is sent or the peer is dropped.
    private async Task<bool> ServePrivileged(Stream stream, PeerCredentials peer, int length)
    {
        // The message, and the in-buffers copied out of it.
        long messageShare = length > _limits.SmallRequest ? 2L * length : 0;
        if (!await Take(peer, messageShare, "a message").ConfigureAwait(false))
            return false;
        long outShare = 0;
        try
        {
            byte[]? message = await ReadMessage(stream, length).ConfigureAwait(false);
            if (message == null)
                return false;
            // The out-buffers, and the reply that echoes them (sysctls: xen_version's are at most 4 KiB).
            if (message.Length >= 16 && BinaryPrimitives.ReadUInt32LittleEndian(message.AsSpan(4)) == SocketWire.Version &&
                SocketWire.TryReadRequest(message, out _, out int outBytes, out _) && outBytes > _limits.SmallRequest)
            {
                if (!await Take(peer, 2L * outBytes, $"{outBytes} bytes of out-buffers").ConfigureAwait(false))
                    return false;
                outShare = 2L * outBytes;
            }
            byte[]? reply = Answer(message, peer, privileged: true);
            message = null;
            return reply != null && await Reply(stream, reply).ConfigureAwait(false);
        }
        finally
        {
            _budget.Give(messageShare + outShare);
        }
    }

    // The reply to one message, or null (logged) when it is malformed and the connection is to be closed.
    private byte[]? Answer(byte[] message, PeerCredentials peer, bool privileged)
    {
        if (SocketWire.IsStatusRequest(message))
        {
            if (!SocketWire.TryDecodeStatusRequest(message, out string name, out string bad))
            {
                _log?.WriteLine($"sysctl: pid {peer.Pid} uid {peer.Uid}: {bad}; closing");
                return null;
            }
            return StatusReply(name, privileged);
        }
        if (!SocketWire.TryDecode(message, out var request, out string why, sysctlOutBuffers: privileged))
        {
            _log?.WriteLine($"sysctl: pid {peer.Pid} uid {peer.Uid}: {why}; closing");
            return null;
        }
        byte[] op = request.Op;
        int rc;
        if (request.Hypercall == XenVersion.Hypercall)
        {
            rc = _handler.XenVersion(request.XenVersionCmd, request.XenVersionArg, new GuestBuffers(request.Buffers), privileged);
            _requests?.XenVersion(peer, privileged, request.XenVersionCmd, rc);
            return SocketWire.EncodeReply(rc, op, request.Buffers);
        }
        rc = _handler.Handle(op, new GuestBuffers(request.Buffers), privileged);
        _requests?.Sysctl(peer, privileged, op, rc);
        // An unprivileged peer's out-buffers were never allocated: its reply carries none.
        return SocketWire.EncodeReply(rc, op, privileged ? request.Buffers : []);
    }

    private async Task<byte[]?> ReadMessage(Stream stream, int length)
    {
        var message = new byte[length];
        using var timeout = Timeout();
        try
        {
            await stream.ReadExactlyAsync(message, timeout.Token).ConfigureAwait(false);
            return message;
        }
        catch (Exception e) when (e is EndOfStreamException or IOException or OperationCanceledException)
        {
            return null;
        }
    }

    private async Task<bool> Take(PeerCredentials peer, long bytes, string what)
    {
        if (bytes == 0)
            return true;
        try
        {
            if (await _budget.TakeAsync(bytes, _limits.BudgetWait, _stop.Token).ConfigureAwait(false))
                return true;
        }
        catch (OperationCanceledException)
        {
            return false;
        }
        _log?.WriteLine($"sysctl: pid {peer.Pid} uid {peer.Uid}: {what} waited {_limits.BudgetWait.TotalSeconds:0} s for room (other peers hold {_budget.Held} bytes); closing");
        return false;
    }

    private CancellationTokenSource Timeout()
    {
        var timeout = CancellationTokenSource.CreateLinkedTokenSource(_stop.Token);
        timeout.CancelAfter(_limits.IoTimeout);
        return timeout;
    }

    // Sends a reply; false when the peer went away or did not take it within the I/O timeout.
    private async Task<bool> Reply(Stream stream, byte[] reply)
    {
        var prefix = new byte[4];
        BinaryPrimitives.WriteInt32LittleEndian(prefix, reply.Length);
        using var timeout = Timeout();
        try
        {
            await stream.WriteAsync(prefix, timeout.Token).ConfigureAwait(false);
            await stream.WriteAsync(reply, timeout.Token).ConfigureAwait(false);
            return true;
        }
        catch (Exception e) when (e is IOException or OperationCanceledException or ObjectDisposedException)
        {
            return false;
        }
    }

    // A payload's signature check, for the privileged: what the registry recorded at its upload.
    private byte[] StatusReply(string name, bool privileged)
    {
        if (!privileged)
            return SocketWire.EncodeStatusReply(-(int)XenErrno.EPERM, []);
        var core = _handler.Core;
        var payload = core.Find(name);
        return payload == null
            ? SocketWire.EncodeStatusReply(-(int)XenErrno.ENOENT, [])
            : SocketWire.EncodeStatusReply(0, SignatureCheck.Status(core.Trust, payload.Signature));
    }

    /// <inheritdoc/>
    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync().ConfigureAwait(false);
        _listener.Dispose();
        try
        {
            await _accepting.ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
        }
        try
        {
            File.Delete(Path);
        }
        catch (IOException)
        {
        }
        _stop.Dispose();
        _connections.Dispose();
    }
}
