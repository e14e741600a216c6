using System.Buffers.Binary;
using System.Net.Sockets;
using XenLivepatch.Abi;
using XenLivepatch.Hypervisor;
using XenLivepatch.Interop;

namespace XenLivepatch.Sandbox;

/// <summary>Who is on the other end of a connection (SO_PEERCRED, plus the peer's supplementary groups).</summary>
public readonly record struct PeerCredentials(int Pid, uint Uid, uint Gid, IReadOnlyList<uint> Groups);

/// <summary>
/// Serves the livepatch sysctl on a Unix socket, with the same bytes as the hypercall (<see cref="SocketWire"/>),
/// and the console sysctls and XENVER_build_id the operator's commands use.
/// The socket file is mode 0660, owned by root and by the configured group; a peer is privileged when it
/// runs as uid 0 or belongs to that group (by SO_PEERCRED and its supplementary groups), and every sub-op
/// of an unprivileged peer gets -EPERM, as Xen answers a guest that is not the control domain.
/// Each message on the stream is preceded by its length (u32, little-endian).
/// </summary>
public sealed class SysctlSocketServer : IAsyncDisposable
{
    private readonly SysctlHandler _handler;
    private readonly Socket _listener;
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _accepting;
    private readonly TextWriter? _log;

    private SysctlSocketServer(SysctlHandler handler, string path, uint? group, TextWriter? log)
    {
        _handler = handler;
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
    public static SysctlSocketServer Start(SysctlHandler handler, string path, uint? privilegedGroup = null, TextWriter? log = null) =>
        new(handler, path, privilegedGroup, log);

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
                client = await _listener.AcceptAsync(_stop.Token).ConfigureAwait(false);
            }
            catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException or SocketException)
            {
                return;
            }
            _ = Task.Run(() => Serve(client));
        }
    }

    /// <summary>The credentials of a connected peer.</summary>
    public static PeerCredentials Credentials(Socket socket)
    {
        Span<byte> ucred = stackalloc byte[12];
        int n = socket.GetRawSocketOption(1 /* SOL_SOCKET */, 17 /* SO_PEERCRED */, ucred);
        if (n < 12)
            throw new IOException("SO_PEERCRED returned too little");
        int pid = BinaryPrimitives.ReadInt32LittleEndian(ucred);
        uint uid = BinaryPrimitives.ReadUInt32LittleEndian(ucred[4..]);
        uint gid = BinaryPrimitives.ReadUInt32LittleEndian(ucred[8..]);
        var groups = new List<uint>();
        try
        {
            foreach (string line in File.ReadLines($"/proc/{pid}/status"))
            {
                if (!line.StartsWith("Groups:", StringComparison.Ordinal))
                    continue;
                foreach (string g in line["Groups:".Length..].Split(' ', '\t', StringSplitOptions.RemoveEmptyEntries))
                {
                    if (uint.TryParse(g, out uint v))
                        groups.Add(v);
                }
            }
        }
        catch (IOException)
        {
            // The peer went away: its primary group is all we know.
        }
        return new PeerCredentials(pid, uid, gid, groups);
    }

    private async Task Serve(Socket client)
    {
        using (client)
        {
            PeerCredentials peer;
            try
            {
                peer = Credentials(client);
            }
            catch (Exception e) when (e is IOException or SocketException)
            {
                return;
            }
            bool privileged = IsPrivileged(peer);
            await using var stream = new NetworkStream(client, ownsSocket: false);
            var header = new byte[4];
            while (!_stop.IsCancellationRequested)
            {
                try
                {
                    await stream.ReadExactlyAsync(header, _stop.Token).ConfigureAwait(false);
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
                var message = new byte[length];
                try
                {
                    await stream.ReadExactlyAsync(message, _stop.Token).ConfigureAwait(false);
                }
                catch (Exception e) when (e is EndOfStreamException or IOException or OperationCanceledException)
                {
                    return;
                }
                byte[] reply;
                if (SocketWire.IsStatusRequest(message))
                {
                    if (!SocketWire.TryDecodeStatusRequest(message, out string name, out string bad))
                    {
                        _log?.WriteLine($"sysctl: pid {peer.Pid} uid {peer.Uid}: {bad}; closing");
                        return;
                    }
                    reply = StatusReply(name, privileged);
                }
                else
                {
                    if (!SocketWire.TryDecode(message, out var request, out string why))
                    {
                        _log?.WriteLine($"sysctl: pid {peer.Pid} uid {peer.Uid}: {why}; closing");
                        return;
                    }
                    byte[] op = request.Op;
                    int rc;
                    if (request.Hypercall == XenVersion.Hypercall)
                    {
                        rc = _handler.XenVersion(request.XenVersionCmd, request.XenVersionArg, new GuestBuffers(request.Buffers), privileged);
                        LogXenVersion(peer, privileged, request.XenVersionCmd, rc);
                    }
                    else
                    {
                        rc = _handler.Handle(op, new GuestBuffers(request.Buffers), privileged);
                        Log(peer, privileged, op, rc);
                    }
                    reply = SocketWire.EncodeReply(rc, op, request.Buffers);
                }
                var prefix = new byte[4];
                BinaryPrimitives.WriteInt32LittleEndian(prefix, reply.Length);
                try
                {
                    await stream.WriteAsync(prefix, _stop.Token).ConfigureAwait(false);
                    await stream.WriteAsync(reply, _stop.Token).ConfigureAwait(false);
                }
                catch (Exception e) when (e is IOException or OperationCanceledException)
                {
                    return;
                }
            }
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

    private void Log(in PeerCredentials peer, bool privileged, byte[] sysctl, int rc)
    {
        if (_log == null)
            return;
        uint cmd = XenSysctl.ReadHeader(sysctl).Cmd;
        string what;
        if (cmd == Livepatch.SysctlCommand)
        {
            var op = XenSysctl.ReadLivepatch(sysctl, _handler.Core.Profile.Abi.Layout);
            // GET and LIST that succeed change nothing, and tools poll GET while an action runs.
            if (rc >= 0 && privileged && op.Cmd is LivepatchSubOp.Get or LivepatchSubOp.List)
                return;
            what = op.Cmd switch
            {
                LivepatchSubOp.Action => $"ACTION {(LivepatchAction)op.Action.Cmd}",
                _ => op.Cmd.ToString().ToUpperInvariant(),
            };
        }
        else
        {
            // Reading the console changes nothing either.
            if (rc >= 0 && privileged && cmd == SysctlCommands.ReadConsole)
                return;
            what = cmd switch
            {
                SysctlCommands.DebugKeys => "DEBUG_KEYS",
                SysctlCommands.ReadConsole => "READCONSOLE",
                _ => $"sysctl {cmd}",
            };
        }
        _log.WriteLine($"sysctl: pid {peer.Pid} uid {peer.Uid}{(privileged ? "" : " (unprivileged)")}: {what} -> {Result(rc)}");
    }

    private void LogXenVersion(in PeerCredentials peer, bool privileged, int cmd, int rc)
    {
        if (_log == null || (rc >= 0 && privileged))
            return;
        _log.WriteLine($"xen_version: pid {peer.Pid} uid {peer.Uid}{(privileged ? "" : " (unprivileged)")}: cmd {cmd} -> {Result(rc)}");
    }

    private static string Result(int rc) =>
        rc < 0 ? $"-{(XenErrno)(-rc)}" : rc.ToString(System.Globalization.CultureInfo.InvariantCulture);

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
    }
}
