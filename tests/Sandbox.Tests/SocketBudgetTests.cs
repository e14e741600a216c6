using System.Buffers.Binary;
using System.Net.Sockets;
using System.Text;
using XenLivepatch.Abi;
using XenLivepatch.TestKit;

namespace XenLivepatch.Sandbox.Tests;

/// <summary>
/// What a peer can make the socket server hold is bounded. A request's out-buffers may add up to what one reply
/// carries (once, 16 buffers of 4 MiB each made a 412-byte request cost a 64 MiB reply); an unprivileged peer
/// gets no buffer back; peers that ask for maximal replies and never read them hold at most the server's budget,
/// give it back when they go, and the server serves everyone else meanwhile.
/// </summary>
[Collection("sandbox")]
public class SocketBudgetTests
{
    private static readonly XenLivepatchName s_foo = new(0x10000, 4);

    private static byte[] Framed(SysctlLivepatchOp op, IReadOnlyList<WireBuffer> buffers)
    {
        byte[] request = SocketWire.EncodeRequest(XenSysctl.EncodeLivepatch(LivepatchAbi.Xen417, op), buffers);
        var framed = new byte[4 + request.Length];
        BinaryPrimitives.WriteInt32LittleEndian(framed, request.Length);
        request.CopyTo(framed, 4);
        return framed;
    }

    // A LIST whose out-buffers add up to outBytes, split over count buffers.
    private static byte[] BigList(int outBytes, int count = 1)
    {
        var buffers = Enumerable.Range(0, count).Select(i => new WireBuffer(0x100000UL * (ulong)(i + 1) << 8, new byte[outBytes / count], false, true)).ToArray();
        return Framed(new SysctlLivepatchOp { Cmd = LivepatchSubOp.List, List = new SysctlLivepatchList { Nr = 1, Status = buffers[0].Address } }, buffers);
    }

    private static byte[] Get() => Framed(new SysctlLivepatchOp { Cmd = LivepatchSubOp.Get, Get = new SysctlLivepatchGet(s_foo, default) },
        [new WireBuffer(s_foo.Name, Encoding.ASCII.GetBytes("foo\0"), true, false)]);

    // A socket path in a folder other users can reach (the socket's own mode then decides).
    private static string ReachableSocketPath(out string dir)
    {
        dir = Repo.TempDirectory("sock");
        File.SetUnixFileMode(dir, (UnixFileMode)0b111_101_101);
        return Path.Combine(dir, "s.sock");
    }

    private static Socket Connect(string path)
    {
        var s = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        s.Connect(new UnixDomainSocketEndPoint(path));
        return s;
    }

    // One call: the reply's rc, or null when the server closed the connection.
    private static int? Call(Socket s, byte[] framed)
    {
        s.Send(framed);
        var header = new byte[4];
        if (!Receive(s, header))
            return null;
        var reply = new byte[BinaryPrimitives.ReadInt32LittleEndian(header)];
        if (!Receive(s, reply))
            return null;
        Assert.True(SocketWire.TryDecodeReply(reply, out int rc, out _, out _, out string why), why);
        return rc;
    }

    private static bool Receive(Socket s, byte[] into)
    {
        for (int at = 0; at < into.Length;)
        {
            int n = s.Receive(into, at, into.Length - at, SocketFlags.None);
            if (n == 0)
                return false;
            at += n;
        }
        return true;
    }

    [Fact]
    public void Out_buffers_may_add_up_to_one_reply_and_no_more()
    {
        static bool Accepts(byte[] framed) => SocketWire.TryReadRequest(framed.AsSpan(4), out _, out _, out _);
        Assert.True(Accepts(BigList(SocketWire.MaxOutBytes)));
        Assert.False(Accepts(BigList(SocketWire.MaxOutBytes + 1)));
        // The request that once cost a 64 MiB reply: 16 out-buffers of 4 MiB in 412 bytes.
        byte[] amplifier = BigList(16 * SocketWire.MaxMessage, 16);
        Assert.Equal(412, amplifier.Length);
        Assert.False(SocketWire.TryReadRequest(amplifier.AsSpan(4), out _, out _, out string why));
        Assert.Contains("more than a reply carries", why, StringComparison.Ordinal);
        // A buffer neither in nor out is not a buffer.
        byte[] neither = Get();
        BinaryPrimitives.WriteUInt32LittleEndian(neither.AsSpan(4 + 16 + XenSysctl.SizeOf + 12), 0);
        Assert.False(SocketWire.TryReadRequest(neither.AsSpan(4), out _, out _, out _));
    }

    [Fact]
    public async Task The_amplifying_request_closes_its_connection_and_the_server_goes_on()
    {
        using var host = SandboxArtifacts.Boot(vcpus: 0);
        string socket = Path.Combine(Repo.TempDirectory("sock"), "s.sock");
        var log = new StringWriter();
        var server = SysctlSocketServer.Start(host.Handler, socket, log: TextWriter.Synchronized(log));
        try
        {
            using (var hostile = Connect(socket))
                Assert.Null(Call(hostile, BigList(16 * SocketWire.MaxMessage, 16)));
            Assert.Contains("more than a reply carries", log.ToString(), StringComparison.Ordinal);
            using var fine = Connect(socket);
            Assert.Equal(-(int)XenErrno.ENOENT, Call(fine, Get()));
            Assert.Equal(0, server.HeldBytes);
        }
        finally
        {
            await server.DisposeAsync();
        }
    }

    [Fact]
    public async Task Peers_that_never_read_hold_no_more_than_the_budget_and_others_are_served()
    {
        using var host = SandboxArtifacts.Boot(vcpus: 0);
        string socket = Path.Combine(Repo.TempDirectory("sock"), "s.sock");
        var limits = new SocketServerLimits { HeldBytes = 24 * 1024 * 1024, BudgetWait = TimeSpan.FromSeconds(1), IoTimeout = TimeSpan.FromSeconds(3) };
        // The waiters give up (1 s) before the holders are dropped (3 s): with equal times either could come first.
        var log = new StringWriter();
        var server = SysctlSocketServer.Start(host.Handler, socket, log: TextWriter.Synchronized(log), limits: limits);
        var hostile = new List<Socket>();
        try
        {
            byte[] maximal = BigList(SocketWire.MaxOutBytes);
            for (int i = 0; i < 16; i++)
            {
                var s = Connect(socket);
                s.Send(maximal);
                hostile.Add(s);
            }
            long peak = 0;
            var until = DateTime.UtcNow + TimeSpan.FromSeconds(1.5);
            using var fine = Connect(socket);
            int served = 0;
            while (DateTime.UtcNow < until)
            {
                peak = Math.Max(peak, server.HeldBytes);
                // Small calls are never kept waiting by the big ones.
                var started = DateTime.UtcNow;
                Assert.Equal(-(int)XenErrno.ENOENT, Call(fine, Get()));
                Assert.True(DateTime.UtcNow - started < TimeSpan.FromSeconds(1), "a small call waited for the big ones");
                served++;
                Thread.Sleep(20);
            }
            Assert.True(peak > 0, "no request took a share of the budget");
            Assert.True(peak <= limits.HeldBytes, $"held {peak} bytes, more than the budget");
            Assert.True(served > 10);
            // Those that did not get room within BudgetWait, and those whose reply was not taken within IoTimeout,
            // are dropped: everything is given back while they are still connected.
            var giveUp = DateTime.UtcNow + TimeSpan.FromSeconds(30);
            while (server.HeldBytes != 0 && DateTime.UtcNow < giveUp)
                Thread.Sleep(50);
            Assert.Equal(0, server.HeldBytes);
            Assert.Contains("waited 1 s for room", log.ToString(), StringComparison.Ordinal);
            // A privileged peer that reads gets its maximal reply.
            using var reader = Connect(socket);
            Assert.NotNull(Call(reader, maximal));
        }
        finally
        {
            foreach (var s in hostile)
                s.Dispose();
            await server.DisposeAsync();
        }
    }

    [Fact]
    public async Task An_unprivileged_peer_is_answered_without_its_buffers()
    {
        using var host = SandboxArtifacts.Boot(vcpus: 0);
        string socket = ReachableSocketPath(out string dir);
        var server = SysctlSocketServer.Start(host.Handler, socket);
        try
        {
            File.SetUnixFileMode(socket, (UnixFileMode)0b110_110_110);
            string request = Path.Combine(dir, "request");
            File.WriteAllBytes(request, BigList(SocketWire.MaxOutBytes));
            File.SetUnixFileMode(request, (UnixFileMode)0b110_100_100);
            // python3 as nobody: sends the framed request, prints the reply's length and rc.
            const string Client = """
                import socket, struct, sys
                s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); s.sendall(open(sys.argv[2], 'rb').read())
                def n(k):
                    b = b''
                    while len(b) < k:
                        c = s.recv(k - len(b)); assert c; b += c
                    return b
                m = struct.unpack('<I', n(4))[0]; r = n(m); print(m, struct.unpack('<i', r[4:8])[0])
                """;
            var run = Tool.Run("setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "/usr/bin/python3", "-c", Client, socket, request);
            run.EnsureSuccess();
            string[] answer = run.Stdout.Trim().Split(' ');
            Assert.Equal(-(int)XenErrno.EPERM, int.Parse(answer[1], System.Globalization.CultureInfo.InvariantCulture));
            // The structure and no buffer: a 4 MiB request costs an unprivileged peer's server nothing.
            Assert.Equal(16 + XenSysctl.SizeOf, int.Parse(answer[0], System.Globalization.CultureInfo.InvariantCulture));
        }
        finally
        {
            await server.DisposeAsync();
        }
    }

    // python3 as another user: opens N connections, then says (in a file, every 0.1 s) how many the server keeps
    // open, and holds them until a release file appears.
    private const string Holder = """
        import os, select, socket, sys, time
        path, count, out, release = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
        kept = []
        for _ in range(count):
            s = socket.socket(socket.AF_UNIX); s.connect(path); kept.append(s)
        closed = set()
        while not os.path.exists(release):
            for s in kept:
                if s not in closed and select.select([s], [], [], 0)[0] and s.recv(1) == b'':
                    closed.add(s)
            open(out + '.new', 'w').write(f'{len(kept) - len(closed)}\n'); os.rename(out + '.new', out)
            time.sleep(0.1)
        """;

    // Starts a holder of count connections as uid; returns once the server has closed all but expected of them
    // (or, when it keeps more, after 30 s with what it kept).
    private static System.Diagnostics.Process Hold(string socket, string dir, int uid, uint group, int count, int expected, out int open)
    {
        string out_ = Path.Combine(dir, $"held-{uid}-{Guid.NewGuid():N}"), release = Path.Combine(dir, "release");
        var psi = new System.Diagnostics.ProcessStartInfo("setpriv");
        foreach (string a in (string[])[$"--reuid={uid}", $"--regid={uid}", $"--groups={group}", "/usr/bin/python3", "-c", Holder, socket,
                     count.ToString(System.Globalization.CultureInfo.InvariantCulture), out_, release])
            psi.ArgumentList.Add(a);
        var p = System.Diagnostics.Process.Start(psi)!;
        var until = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        open = -1;
        while (!p.HasExited && DateTime.UtcNow < until)
        {
            if (File.Exists(out_) && (open = int.Parse(File.ReadAllText(out_).Trim(), System.Globalization.CultureInfo.InvariantCulture)) == expected)
                break;
            Thread.Sleep(50);
        }
        Assert.False(p.HasExited, $"the holder (uid {uid}) exited");
        return p;
    }

    [Fact]
    public async Task No_peer_but_root_can_keep_the_others_out_by_holding_connections()
    {
        using var host = SandboxArtifacts.Boot(vcpus: 0);
        string socket = ReachableSocketPath(out _);
        // Two operators (uids 65534 and 65533, members of the sandbox's group) and root.
        const uint Group = 4242;
        var limits = new SocketServerLimits { Connections = 24, ConnectionsPerUser = 16, RootReserve = 4 };
        var log = new StringWriter();
        var server = SysctlSocketServer.Start(host.Handler, socket, Group, TextWriter.Synchronized(log), limits);
        var holders = new List<System.Diagnostics.Process>();
        string shared = Repo.TempDirectory("holders");
        File.SetUnixFileMode(shared, (UnixFileMode)0b111_111_111);
        string release = Path.Combine(shared, "release");
        try
        {
            // One uid gets its share and no more.
            holders.Add(Hold(socket, shared, 65534, Group, 40, 16, out int first));
            Assert.Equal(16, first);
            Assert.Contains("uid 65534: too many connections (uid 65534 may hold 16", log.ToString(), StringComparison.Ordinal);
            // Another gets what is left to all but root.
            holders.Add(Hold(socket, shared, 65533, Group, 40, 4, out int second));
            Assert.Equal(4, second);
            // Root is served at once meanwhile, on several connections.
            var started = DateTime.UtcNow;
            var roots = Enumerable.Range(0, 3).Select(_ => Connect(socket)).ToList();
            foreach (var r in roots)
                Assert.Equal(-(int)XenErrno.ENOENT, Call(r, Get()));
            Assert.True(DateTime.UtcNow - started < TimeSpan.FromSeconds(5), "root waited behind the held connections");
            roots.ForEach(r => r.Dispose());
            // Once they let go, the slots are theirs again.
            File.WriteAllText(release, "");
            foreach (var h in holders)
                Assert.True(h.WaitForExit(10_000));
            holders.Clear();
            File.Delete(release);
            var drained = DateTime.UtcNow + TimeSpan.FromSeconds(30);
            while (server.OthersConnections != 0 && DateTime.UtcNow < drained)
                Thread.Sleep(50);
            Assert.Equal(0, server.OthersConnections);
            holders.Add(Hold(socket, shared, 65533, Group, 16, 16, out int again));
            Assert.Equal(16, again);
            Thread.Sleep(300);
            Assert.Equal(16, server.OthersConnections);
        }
        finally
        {
            File.WriteAllText(release, "");
            foreach (var h in holders)
            {
                h.WaitForExit(10_000);
                h.Dispose();
            }
            await server.DisposeAsync();
        }
    }

    [Fact]
    public async Task An_unprivileged_peer_may_not_idle_on_its_connection()
    {
        using var host = SandboxArtifacts.Boot(vcpus: 0);
        string socket = ReachableSocketPath(out _);
        var server = SysctlSocketServer.Start(host.Handler, socket, limits: new SocketServerLimits { UnprivilegedIdle = TimeSpan.FromMilliseconds(300) });
        try
        {
            File.SetUnixFileMode(socket, (UnixFileMode)0b110_110_110);
            // As nobody, outside the group: connect, send nothing; the server closes after the idle time.
            const string Idler = """
                import socket, sys, time
                s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); s.settimeout(20)
                t = time.monotonic(); r = s.recv(1); print(len(r), round(time.monotonic() - t, 1))
                """;
            var run = Tool.Run("setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "/usr/bin/python3", "-c", Idler, socket);
            run.EnsureSuccess();
            string[] answer = run.Stdout.Trim().Split(' ');
            Assert.Equal("0", answer[0]);
            Assert.True(double.Parse(answer[1], System.Globalization.CultureInfo.InvariantCulture) < 10, run.Stdout);
        }
        finally
        {
            await server.DisposeAsync();
        }
    }
}
