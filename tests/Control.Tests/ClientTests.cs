using System.Net.Sockets;
using XenLivepatch.Abi;
using XenLivepatch.Hypervisor;
using XenLivepatch.Sandbox;
using XenLivepatch.TestKit;

namespace XenLivepatch.Control.Tests;

/// <summary>
/// The client against the real livepatch core, through the in-process transport and through the sandbox socket
/// (<see cref="SysctlSocketServer"/>): the same calls give the same results either way.
/// </summary>
public class ClientTests
{
    private static readonly Lazy<string> s_hello = new(() =>
        LivepatchFixtures.BuildPayload(LivepatchFixtures.Image(), "xen_hello_world", ["hello_world.c"], "--modinfo", "LIVEPATCH_RULEZ"));

    public static TheoryData<string> Transports => new() { "in-process", "socket" };

    internal static async Task<(LivepatchClient Client, OfflineXen Xen, IAsyncDisposable? Server)> Connect(string how)
    {
        var xen = OfflineXen.Create();
        if (how == "in-process")
        {
            var opened = await InProcessTransport.OpenAsync(xen.Sysctl, xenVersion: xen.XenVersion);
            Assert.Null(opened.Problem);
            return (new LivepatchClient(opened.Transport!), xen, null);
        }
        string path = Path.Combine(Repo.TempDirectory("sock"), "sandbox.sock");
        var server = SysctlSocketServer.Start(xen.Handler, path);
        var socket = await SocketTransport.OpenAsync(path);
        Assert.True(socket.Transport != null, socket.Problem);
        Assert.Null(socket.Warning);
        return (new LivepatchClient(socket.Transport), xen, server);
    }

    [Theory, MemberData(nameof(Transports))]
    public async Task Upload_get_list_apply_revert_unload_round_trip(string how)
    {
        var (client, xen, server) = await Connect(how);
        await using var _ = client;
        await using var __ = server;
        byte[] payload = File.ReadAllBytes(s_hello.Value);

        Assert.Equal("xen-4.17", client.Abi.Name);
        Assert.Equal(0, (await client.UploadAsync("xen_hello_world", payload)).Rc);
        Assert.Equal(-(int)XenErrno.EEXIST, (await client.UploadAsync("xen_hello_world", payload)).Rc);
        var get = await client.GetAsync("xen_hello_world");
        Assert.Equal((0, LivepatchState.Checked, 0), (get.Result.Rc, get.State, get.Status.Rc));

        Assert.Equal(0, (await client.ApplyAsync("xen_hello_world", LivepatchClient.ToolTimeoutNs)).Rc);
        var applied = await client.WaitAsync("xen_hello_world", TimeSpan.FromMilliseconds(10), TimeSpan.FromSeconds(5));
        Assert.Equal(LivepatchState.Applied, applied.State);

        var list = await client.ListAllAsync();
        var entry = Assert.Single(list.Entries);
        Assert.Equal(("xen_hello_world", LivepatchState.Applied, 0), (entry.Name, entry.State, entry.Status.Rc));
        Assert.Equal(["LIVEPATCH_RULEZ"], entry.MetadataStrings);
        Assert.Equal(xen.Core.Version, list.Version);

        Assert.Equal(-(int)XenErrno.EINVAL, (await client.UnloadAsync("xen_hello_world")).Rc);
        Assert.Equal(0, (await client.RevertAsync("xen_hello_world")).Rc);
        Assert.Equal(LivepatchState.Checked, (await client.GetAsync("xen_hello_world")).State);
        Assert.Equal(0, (await client.UnloadAsync("xen_hello_world")).Rc);
        Assert.Equal(-(int)XenErrno.ENOENT, (await client.GetAsync("xen_hello_world")).Result.Rc);
        Assert.Empty((await client.ListAllAsync()).Entries);
    }

    [Theory, MemberData(nameof(Transports))]
    public async Task Hypervisor_errors_come_back_as_negative_errno(string how)
    {
        var (client, _, server) = await Connect(how);
        await using var _c = client;
        await using var _s = server;
        Assert.Equal(new LivepatchResult(LivepatchCall.Get, -(int)XenErrno.ENOENT), (await client.GetAsync("nope")).Result);
        Assert.Equal(new LivepatchResult(LivepatchCall.Action, -(int)XenErrno.ENOENT), await client.RevertAsync("nope"));
        // An ELF that is not a payload: Xen's upload checks refuse it.
        var upload = await client.UploadAsync("junk", new byte[64]);
        Assert.False(upload.Succeeded);
        Assert.False(upload.Local);
        // Xen 4.17's livepatch_op still has a pad word where 4.19 put the flags: FORCE is -EINVAL there.
        Assert.Equal(-(int)XenErrno.EINVAL, (await client.UploadAsync("forced", File.ReadAllBytes(s_hello.Value), force: true)).Rc);
    }

    [Fact]
    public async Task Names_longer_than_Xen_takes_are_refused_before_any_hypercall()
    {
        var xen = OfflineXen.Create();
        await using var client = xen.Client();
        string name127 = new('n', 127), name128 = new('n', 128);
        Assert.Equal(-(int)XenErrno.ENOENT, (await client.GetAsync(name127)).Result.Rc);
        Assert.Equal(1, xen.Calls);
        Assert.Equal(new LivepatchResult(LivepatchCall.Get, -(int)XenErrno.EINVAL, Local: true), (await client.GetAsync(name128)).Result);
        Assert.Equal(new LivepatchResult(LivepatchCall.Upload, -(int)XenErrno.EINVAL, Local: true), await client.UploadAsync(name128, new byte[8]));
        Assert.Equal(new LivepatchResult(LivepatchCall.Action, -(int)XenErrno.EINVAL, Local: true), await client.ApplyAsync(name128));
        Assert.Equal(1, xen.Calls);
    }

    [Fact]
    public async Task The_sysctl_carries_libxcs_fields()
    {
        var seen = new List<byte[]>();
        var transport = InProcessTransport.Create((s, b) =>
        {
            seen.Add(s.ToArray());
            return 0;
        }, LivepatchAbi.Xen417);
        await using var client = new LivepatchClient(transport);
        await client.UploadAsync("abc", new byte[] { 1, 2, 3 }, force: true);
        await client.ApplyAsync("abc", 30_000_000, LivepatchActionFlags.ApplyNoDeps);
        var upload = XenSysctl.ReadLivepatch(seen[0], SysctlLayout.Xen414);
        Assert.Equal((Livepatch.SysctlCommand, 0x15u), (XenSysctl.ReadHeader(seen[0]).Cmd, XenSysctl.ReadHeader(seen[0]).InterfaceVersion));
        Assert.Equal((LivepatchSubOp.Upload, 1u, (ushort)4, 3ul), (upload.Cmd, upload.Flags, upload.Upload.Name.Size, upload.Upload.Size));
        var apply = XenSysctl.ReadLivepatch(seen[1], SysctlLayout.Xen414).Action;
        Assert.Equal(((uint)LivepatchAction.Apply, 30_000_000u, 1u, 0u), (apply.Cmd, apply.Timeout, apply.Flags, apply.Pad));
    }

    [Fact]
    public async Task The_interface_version_is_probed_as_XTF_does()
    {
        var seed = OfflineXen.Create(profile: LivepatchProfile.Seed2016);
        var opened = await InProcessTransport.OpenAsync(seed.Sysctl);
        Assert.Equal("seed-2016", opened.Transport!.Abi.Name);
        // 0x15 (EACCES), 0x16 (EACCES), then 0x0D.
        Assert.Equal(3, seed.Calls);

        var foreign = await InProcessTransport.OpenAsync((s, _) => XenSysctl.ReadHeader(s).InterfaceVersion == 0x14 ? 0 : -(int)XenErrno.EACCES);
        Assert.Equal((SysctlLayout.Xen414, 0x14u), (foreign.Transport!.Abi.Layout, foreign.Transport.Abi.InterfaceVersion));

        var none = await InProcessTransport.OpenAsync((_, _) => -(int)XenErrno.EACCES);
        Assert.Null(none.Transport);
        Assert.Contains("accepted none of the sysctl interface versions", none.Problem, StringComparison.Ordinal);
    }

    [Fact]
    public async Task An_unprivileged_caller_is_told_why_every_call_will_fail()
    {
        var xen = OfflineXen.Create();
        xen.Privileged = false;
        var opened = await InProcessTransport.OpenAsync(xen.Sysctl);
        Assert.Equal("xen-4.17", opened.Transport!.Abi.Name);
        Assert.Contains("only the control domain", opened.Warning, StringComparison.Ordinal);
        await using var client = new LivepatchClient(opened.Transport);
        Assert.Equal(-(int)XenErrno.EPERM, (await client.GetListSizesAsync()).Result.Rc);
    }

    [Fact]
    public async Task Without_a_sandbox_the_socket_transport_says_what_to_do()
    {
        string dir = Repo.TempDirectory("nosock");
        var missing = await SocketTransport.OpenAsync(Path.Combine(dir, "none.sock"));
        Assert.Null(missing.Transport);
        Assert.Equal($"no sandbox socket at {Path.Combine(dir, "none.sock")}", missing.Problem);
        Assert.Contains("xen-livepatch sandbox", missing.Advice, StringComparison.Ordinal);

        // A socket file nobody listens on (bound, never listening: connecting is refused).
        string stale = Path.Combine(dir, "stale.sock");
        using var s = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        s.Bind(new UnixDomainSocketEndPoint(stale));
        var refused = await SocketTransport.OpenAsync(stale);
        Assert.Contains("nothing listens on", refused.Problem, StringComparison.Ordinal);
    }

    [OutsideXenFact]
    public async Task Auto_selection_without_privcmd_or_sandbox_names_both_and_the_way_out()
    {
        string path = Path.Combine(Repo.TempDirectory("auto"), "x.sock");
        var r = await LivepatchTransports.OpenAsync(TransportChoice.Auto, path);
        Assert.Null(r.Transport);
        Assert.Equal($"no hypervisor to talk to: /dev/xen/privcmd is absent (this is not Xen's control domain) and no sandbox socket at {path}", r.Problem);
        Assert.Contains("run this in dom0 as root, or start the sandbox hypervisor with 'xen-livepatch sandbox'", r.Advice, StringComparison.Ordinal);

        var xen = await LivepatchTransports.OpenAsync(TransportChoice.Xen);
        Assert.StartsWith("/dev/xen/privcmd is absent", xen.Problem, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Auto_selection_finds_the_sandbox_at_the_path_given()
    {
        var xen = OfflineXen.Create();
        string path = Path.Combine(Repo.TempDirectory("auto"), "s.sock");
        await using var server = SysctlSocketServer.Start(xen.Handler, path);
        var r = await LivepatchTransports.OpenAsync(TransportChoice.Auto, path);
        await using var transport = r.Transport!;
        Assert.Equal($"the sandbox hypervisor at {path}", transport.Description);
        Assert.Equal(path, LivepatchTransports.SandboxSocket(path));
    }

    [Fact]
    public void Handles_move_with_their_buffers_and_unknown_ones_become_null()
    {
        var buffers = new List<WireBuffer> { new(0x1000, new byte[16], true, false), new(0x9000, new byte[4], false, true) };
        var map = SysctlHandles.Forward(buffers, [0x7f0000000000, 0x7f0000004000]);
        var op = new SysctlLivepatchOp
        {
            Cmd = LivepatchSubOp.List,
            List = new SysctlLivepatchList { Status = 0x1000, Name = 0x1008, Len = 0x9004, Metadata = 0, MetadataLen = 0x5000 },
        };
        var moved = SysctlHandles.Map(op, map).List;
        Assert.Equal((0x7f0000000000ul, 0x7f0000000008ul, 0x7f0000004004ul, 0ul, 0ul), (moved.Status, moved.Name, moved.Len, moved.Metadata, moved.MetadataLen));
    }
}
