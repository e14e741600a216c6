using System.Text;
using XenLivepatch.Abi;
using XenLivepatch.TestKit;

namespace XenLivepatch.Sandbox.Tests;

/// <summary>
/// The sysctl socket answers like the hypercall: an unprivileged peer (by SO_PEERCRED) gets -EPERM on every
/// sub-op, after the interface-version check (-EACCES), as XTF's livepatch-priv-check expects of Xen; root
/// gets real answers. The unprivileged peer is a real process running as nobody (setpriv).
/// </summary>
[Collection("sandbox")]
public class SocketPrivilegeTests
{
    // A minimal client: sends one framed request, prints the framed reply (compiled at test time).
    private const string Client = """
        #include <stdint.h>
        #include <stdio.h>
        #include <stdlib.h>
        #include <string.h>
        #include <sys/socket.h>
        #include <sys/un.h>
        #include <unistd.h>
        static void all(int fd, void *b, size_t n, int out) {
            for (size_t d = 0; d < n;) {
                ssize_t r = out ? write(fd, (char *)b + d, n - d) : read(fd, (char *)b + d, n - d);
                if (r <= 0) { perror("socket"); exit(2); }
                d += (size_t)r;
            }
        }
        int main(int argc, char **argv) {
            static unsigned char req[1 << 20], rep[1 << 20];
            FILE *f = fopen(argv[2], "rb");
            if (!f) { perror(argv[2]); return 2; }
            uint32_t n = (uint32_t)fread(req, 1, sizeof req, f);
            fclose(f);
            int s = socket(AF_UNIX, SOCK_STREAM, 0);
            struct sockaddr_un a = { .sun_family = AF_UNIX };
            strncpy(a.sun_path, argv[1], sizeof a.sun_path - 1);
            if (connect(s, (struct sockaddr *)&a, sizeof a)) { perror("connect"); return 2; }
            all(s, &n, 4, 1);
            all(s, req, n, 1);
            uint32_t m;
            all(s, &m, 4, 0);
            all(s, rep, m, 0);
            fwrite(rep, 1, m, stdout);
            return 0;
        }
        """;

    private static readonly Lazy<string> s_client = new(() =>
    {
        string dir = Repo.TempDirectory("client");
        File.SetUnixFileMode(dir, (UnixFileMode)0b111_101_101);
        string c = Path.Combine(dir, "client.c");
        string exe = Path.Combine(dir, "client");
        File.WriteAllText(c, Client);
        Tool.Run("gcc", "-O2", "-o", exe, c).EnsureSuccess();
        File.SetUnixFileMode(exe, (UnixFileMode)0b111_101_101);
        return exe;
    });

    private static byte[] Request(SysctlLivepatchOp op, uint interfaceVersion, IReadOnlyList<WireBuffer> buffers)
    {
        var abi = LivepatchAbi.Xen417 with { InterfaceVersion = interfaceVersion };
        return SocketWire.EncodeRequest(XenSysctl.EncodeLivepatch(abi, op), buffers);
    }

    private static int Call(string socket, byte[] request, bool asNobody, int opSize = XenSysctl.SizeOf)
    {
        string dir = Repo.TempDirectory("request");
        string req = Path.Combine(dir, "request");
        File.WriteAllBytes(req, request);
        File.SetUnixFileMode(dir, (UnixFileMode)0b111_101_101);
        File.SetUnixFileMode(req, (UnixFileMode)0b110_100_100);
        string[] args = asNobody
            ? ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", s_client.Value, socket, req]
            : [s_client.Value, socket, req];
        var psi = new System.Diagnostics.ProcessStartInfo(args[0]) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (string a in args[1..])
            psi.ArgumentList.Add(a);
        using var p = System.Diagnostics.Process.Start(psi)!;
        using var output = new MemoryStream();
        p.StandardOutput.BaseStream.CopyTo(output);
        string err = p.StandardError.ReadToEnd();
        p.WaitForExit();
        Assert.True(p.ExitCode == 0, $"the client failed: {err}");
        Assert.True(SocketWire.TryDecodeReply(output.ToArray(), opSize, out int rc, out _, out _, out string why), why);
        return rc;
    }

    [Fact]
    public async Task An_unprivileged_peer_gets_EPERM_on_every_sub_op()
    {
        using var host = SandboxArtifacts.Boot(vcpus: 0);
        string socket = Path.Combine(Repo.TempDirectory("sock"), "sandbox.sock");
        File.SetUnixFileMode(Path.GetDirectoryName(socket)!, (UnixFileMode)0b111_101_101);
        var server = Sandbox.SysctlSocketServer.Start(host.Handler, socket);
        try
        {
            // Let anyone connect, so that the check under test is SO_PEERCRED's, not the file mode's.
            File.SetUnixFileMode(socket, (UnixFileMode)0b110_110_110);
            ulong nameAt = 0x10000, payloadAt = 0x20000;
            var name = new WireBuffer(nameAt, Encoding.ASCII.GetBytes("foo\0"), In: true, Out: false);
            var xname = new XenLivepatchName(nameAt, 4);
            var ops = new (string What, SysctlLivepatchOp Op, WireBuffer[] Buffers)[]
            {
                ("UPLOAD", new() { Cmd = LivepatchSubOp.Upload, Upload = new SysctlLivepatchUpload(xname, 4096, payloadAt) }, [name, new WireBuffer(payloadAt, new byte[4096], true, false)]),
                ("LIST", new() { Cmd = LivepatchSubOp.List, List = new SysctlLivepatchList { Nr = 8, Status = 0x30000, Name = 0x40000, Len = 0x50000, Metadata = 0x60000, MetadataLen = 0x70000 } },
                    [new WireBuffer(0x30000, new byte[64], false, true), new WireBuffer(0x40000, new byte[1024], false, true), new WireBuffer(0x50000, new byte[32], false, true), new WireBuffer(0x60000, new byte[1024], false, true), new WireBuffer(0x70000, new byte[32], false, true)]),
                ("GET", new() { Cmd = LivepatchSubOp.Get, Get = new SysctlLivepatchGet(xname, default) }, [name]),
                ("UNLOAD", Action(xname, LivepatchAction.Unload), [name]),
                ("REVERT", Action(xname, LivepatchAction.Revert), [name]),
                ("APPLY", Action(xname, LivepatchAction.Apply), [name]),
                ("REPLACE", Action(xname, LivepatchAction.Replace), [name]),
            };
            foreach (var (what, op, buffers) in ops)
            {
                Assert.Equal((what, -(int)XenErrno.EPERM), (what, Call(socket, Request(op, 0x15, buffers), asNobody: true)));
                Assert.NotEqual(-(int)XenErrno.EPERM, Call(socket, Request(op, 0x15, buffers), asNobody: false));
            }
            // The interface version is checked first: probing it works even unprivileged (XTF does so).
            Assert.Equal(-(int)XenErrno.EACCES, Call(socket, Request(ops[2].Op, 0x14, ops[2].Buffers), asNobody: true));
            Assert.Equal(-(int)XenErrno.ENOENT, Call(socket, Request(ops[2].Op, 0x15, ops[2].Buffers), asNobody: false));
            Assert.Empty(host.Core.Payloads);
        }
        finally
        {
            await server.DisposeAsync();
        }
    }

    [Fact]
    public async Task An_unprivileged_peer_gets_EPERM_on_the_build_id_and_the_console_sysctls()
    {
        using var host = SandboxArtifacts.Boot(vcpus: 0);
        string socket = Path.Combine(Repo.TempDirectory("sock"), "sandbox.sock");
        File.SetUnixFileMode(Path.GetDirectoryName(socket)!, (UnixFileMode)0b111_101_101);
        var server = Sandbox.SysctlSocketServer.Start(host.Handler, socket);
        try
        {
            File.SetUnixFileMode(socket, (UnixFileMode)0b110_110_110);
            var arg = new WireBuffer(0x1000, XenBuildId.Request(64), In: true, Out: true);
            byte[] buildId = SocketWire.EncodeXenVersionRequest(XenVersion.BuildId, arg);
            Assert.Equal(-(int)XenErrno.EPERM, Call(socket, buildId, asNobody: true, SocketWire.XenVersionOpSize));
            Assert.Equal(host.Image.BuildId.Length, Call(socket, buildId, asNobody: false, SocketWire.XenVersionOpSize));

            var keys = new WireBuffer(0x1000, "x"u8.ToArray(), In: true, Out: false);
            byte[] debugKeys = SocketWire.EncodeRequest(SysctlCommands.Encode(SysctlCommands.DebugKeys, 0x15, u => new SysctlDebugKeys(0x1000, 1).Write(u)), [keys]);
            var ring = new WireBuffer(0x1000, new byte[4096], In: false, Out: true);
            byte[] read = SocketWire.EncodeRequest(SysctlCommands.Encode(SysctlCommands.ReadConsole, 0x15, u => new SysctlReadConsole(0, 0, 0, 0x1000, 4096).Write(u)), [ring]);
            Assert.Equal(-(int)XenErrno.EPERM, Call(socket, debugKeys, asNobody: true));
            Assert.Equal(-(int)XenErrno.EPERM, Call(socket, read, asNobody: true));
            Assert.DoesNotContain("'x' pressed", host.Handler.Console.Text, StringComparison.Ordinal);
            Assert.Equal(0, Call(socket, debugKeys, asNobody: false));
            Assert.Contains("(XEN) 'x' pressed - Dumping all livepatch patches\n", host.Handler.Console.Text, StringComparison.Ordinal);
            Assert.Equal(0, Call(socket, read, asNobody: false));
            // A xen_version request over its budget: the connection is closed, nothing answered.
            byte[] big = SocketWire.EncodeXenVersionRequest(XenVersion.BuildId, new WireBuffer(0x1000, new byte[SocketWire.MaxXenVersionBuffer + 4], true, true));
            string dir = Repo.TempDirectory("request");
            File.WriteAllBytes(Path.Combine(dir, "request"), big);
            var closed = Tool.Run(s_client.Value, socket, Path.Combine(dir, "request"));
            Assert.Equal(2, closed.ExitCode);
        }
        finally
        {
            await server.DisposeAsync();
        }
    }

    [Fact]
    public async Task The_socket_is_only_open_to_root_and_the_configured_group()
    {
        using var host = SandboxArtifacts.Boot(vcpus: 0);
        string socket = Path.Combine(Repo.TempDirectory("sock"), "sandbox.sock");
        var server = Sandbox.SysctlSocketServer.Start(host.Handler, socket, privilegedGroup: 4242);
        try
        {
            Assert.Equal((UnixFileMode)0b110_110_000, File.GetUnixFileMode(socket));
            Assert.True(server.IsPrivileged(new Sandbox.PeerCredentials(1, 0, 0, [])));
            Assert.True(server.IsPrivileged(new Sandbox.PeerCredentials(1, 1000, 4242, [])));
            Assert.True(server.IsPrivileged(new Sandbox.PeerCredentials(1, 1000, 100, [27, 4242])));
            Assert.False(server.IsPrivileged(new Sandbox.PeerCredentials(1, 1000, 100, [27])));
        }
        finally
        {
            await server.DisposeAsync();
        }
    }

    private static SysctlLivepatchOp Action(XenLivepatchName name, LivepatchAction a) =>
        new() { Cmd = LivepatchSubOp.Action, Action = new SysctlLivepatchAction { Name = name, Cmd = (uint)a } };
}
