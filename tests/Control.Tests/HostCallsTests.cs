using System.Text;
using XenLivepatch.Abi;
using XenLivepatch.Hypervisor;
using XenLivepatch.TestKit;

namespace XenLivepatch.Control.Tests;

/// <summary>
/// The calls beside the livepatch sysctl: XENVER_build_id (xen_version) and debug key 'x' read back from the
/// console ring (XEN_SYSCTL_debug_keys, XEN_SYSCTL_readconsole), against the real core through the in-process
/// transport and the sandbox socket, with Xen's answers for every error.
/// </summary>
public class HostCallsTests
{
    private static readonly Lazy<string> s_hello = new(() =>
        LivepatchFixtures.BuildPayload(LivepatchFixtures.Image(), "xen_hello_world", ["hello_world.c"], "--modinfo", "LIVEPATCH_RULEZ"));

    public static TheoryData<string> Transports => new() { "in-process", "socket" };

    private static Task<(LivepatchClient Client, OfflineXen Xen, IAsyncDisposable? Server)> Connect(string how) => ClientTests.Connect(how);

    [Theory, MemberData(nameof(Transports))]
    public async Task The_build_id_is_the_hypervisors(string how)
    {
        var (client, xen, server) = await Connect(how);
        await using var _ = client;
        await using var __ = server;
        var id = await client.GetBuildIdAsync();
        Assert.True(id.Result.Succeeded, id.Result.ToString());
        Assert.Equal(xen.Target.BuildId.ToArray(), id.BuildId);
        Assert.Equal(id.BuildId.Length, id.Result.Rc);
        Assert.Equal(Convert.ToHexStringLower(xen.Target.BuildId.Span), id.Hex);
    }

    [Fact]
    public void Xen_version_answers_as_do_xen_version_does()
    {
        var xen = OfflineXen.Create();
        int size = xen.Target.BuildId.Length;
        int Call(int cmd, WireBuffer? arg, bool privileged = true) =>
            xen.Handler.XenVersion(cmd, arg?.Address ?? 0, new GuestBuffers(arg == null ? [] : [arg]), privileged);
        WireBuffer Arg(int room) => new(0x1000, XenBuildId.Request(room), true, true);

        Assert.Equal(size, Call(XenVersion.BuildId, null));
        Assert.Equal(-(int)XenErrno.EINVAL, Call(XenVersion.BuildId, Arg(0)));
        Assert.Equal(-(int)XenErrno.ENOBUFS, Call(XenVersion.BuildId, Arg(size - 1)));
        Assert.Equal(size, Call(XenVersion.BuildId, Arg(size)));
        Assert.Equal(-(int)XenErrno.EPERM, Call(XenVersion.BuildId, Arg(size), privileged: false));
        Assert.Equal(-(int)XenErrno.ENOSYS, Call(1, Arg(size)));
        // A handle outside the caller's buffers faults.
        Assert.Equal(-(int)XenErrno.EFAULT, xen.Handler.XenVersion(XenVersion.BuildId, 0x9000, new GuestBuffers([]), true));
    }

    [Theory, MemberData(nameof(Transports))]
    public async Task The_x_dump_shows_each_payload_as_the_core_holds_it(string how)
    {
        var (client, xen, server) = await Connect(how);
        await using var _ = client;
        await using var __ = server;
        Assert.Equal(0, (await client.UploadAsync("xen_hello_world", File.ReadAllBytes(s_hello.Value))).Rc);
        Assert.Equal(0, (await client.ApplyAsync("xen_hello_world")).Rc);

        var dump = await client.DumpAsync();
        Assert.True(dump.Dump != null, dump.Problem ?? dump.Result.ToString());
        var p = xen.Core.Find("xen_hello_world")!;
        Assert.Equal(Convert.ToHexStringLower(xen.Target.BuildId.Span), dump.Dump.BuildId);
        var d = Assert.Single(dump.Dump.Payloads);
        Assert.Equal(("xen_hello_world", "APPLIED", 2), (d.Name, d.State, d.StateValue));
        Assert.Equal((p.Memory.TextAddress, p.Memory.RwAddress, p.Memory.RoAddress), (d.Text, d.Data, d.Rodata));
        Assert.Equal(["LIVEPATCH_RULEZ"], d.Metadata);
        Assert.Equal(p.Functions.Select(f => (f.Name, f.OldAddress, f.Entry.OldSize, f.NewAddress, f.Entry.NewSize)),
            d.Functions.Select(f => (f.Name, f.OldAddress, f.OldSize, f.NewAddress, f.NewSize)));
        Assert.Equal((Convert.ToHexStringLower(p.BuildId.Span), Convert.ToHexStringLower(p.Depends.Span), Convert.ToHexStringLower(p.XenDepends.Span)),
            (d.BuildId, d.DependsOn, d.DependsOnXen));
        // The text is Xen's, line for line (xen/common/livepatch.c, livepatch_printall).
        string text = dump.Dump.ToString();
        Assert.StartsWith($"'x' pressed - Dumping all livepatch patches\nbuild-id: {dump.Dump.BuildId}\n name=xen_hello_world state=APPLIED(2) {p.Memory.TextAddress:x16} (.data={p.Memory.RwAddress:x16}, .rodata={p.Memory.RoAddress:x16}) using ",
            text, StringComparison.Ordinal);
        Assert.Contains("livepatch: module metadata:\nlivepatch:   LIVEPATCH_RULEZ\n", text, StringComparison.Ordinal);
        Assert.Matches(@"\n    [a-z_]+ patch [0-9a-f]{16}\(\d+\) with [0-9a-f]{16} \(\d+\)\n", text);
        // The console ring holds it with Xen's prefix, after the core's own log lines.
        Assert.Contains("(XEN) 'x' pressed - Dumping all livepatch patches\n", xen.Handler.Console.Text, StringComparison.Ordinal);
        Assert.Contains("(XEN) livepatch: xen_hello_world: Applying 1 functions\n", xen.Handler.Console.Text, StringComparison.Ordinal);
    }

    [Fact]
    public void The_console_ring_reads_incrementally_wraps_and_clears_as_Xens()
    {
        var ring = new XenConsole(64);
        var buffer = new WireBuffer(0x1000, new byte[256], false, true);
        var guest = new GuestBuffers([buffer]);
        string Read(ref SysctlReadConsole op)
        {
            Assert.Equal(0, ring.Read(ref op, guest));
            return Encoding.ASCII.GetString(buffer.Data, 0, (int)op.Count);
        }

        ring.PrintLine("one");
        var op = new SysctlReadConsole(0, 0, 0, 0x1000, 256);
        Assert.Equal("(XEN) one\n", Read(ref op));
        uint end = op.Index;
        ring.PrintLine("two");
        op = new SysctlReadConsole(0, 1, end, 0x1000, 256);
        Assert.Equal("(XEN) two\n", Read(ref op));

        // Over 64 bytes: the oldest are gone; an index that fell out of the ring reads from the oldest kept.
        for (int i = 0; i < 10; i++)
            ring.PrintLine($"line {i}");
        op = new SysctlReadConsole(0, 1, end, 0x1000, 256);
        string all = Read(ref op);
        Assert.Equal(64, all.Length);
        Assert.EndsWith("(XEN) line 9\n", all, StringComparison.Ordinal);
        // A short buffer reads what fits; the index says where to go on.
        op = new SysctlReadConsole(0, 0, 0, 0x1000, 10);
        Assert.Equal(all[..10], Read(ref op));
        // clear: what was read is forgotten.
        op = new SysctlReadConsole(1, 0, 0, 0x1000, 256);
        Read(ref op);
        op = new SysctlReadConsole(0, 0, 0, 0x1000, 256);
        Assert.Equal("", Read(ref op));
        // A buffer that is not the caller's faults.
        op = new SysctlReadConsole(0, 0, 0, 0x8000, 256);
        ring.PrintLine("x");
        Assert.Equal(-(int)XenErrno.EFAULT, ring.Read(ref op, guest));
    }

    [Fact]
    public async Task Keys_other_than_x_print_nothing_and_an_unprivileged_caller_gets_EPERM()
    {
        var xen = OfflineXen.Create();
        var client = xen.Client();
        string before = xen.Handler.Console.Text;
        Assert.Equal(0, (await client.DebugKeysAsync("qh")).Rc);
        Assert.Equal(before, xen.Handler.Console.Text);
        xen.Privileged = false;
        Assert.Equal(-(int)XenErrno.EPERM, (await client.DebugKeysAsync("x")).Rc);
        Assert.Equal(-(int)XenErrno.EPERM, (await client.ReadConsoleAsync()).Result.Rc);
        Assert.Equal(-(int)XenErrno.EPERM, (await client.GetBuildIdAsync()).Result.Rc);
    }

    [Fact]
    public void Real_xens_x_output_parses_into_its_payloads()
    {
        string serial = string.Concat(File.ReadAllLines(Repo.Path("tests", "Data", "xen-4.17", "operator", "x-key.serial"))
            .Where(l => !l.StartsWith('#')).Select(l => l + "\n"));
        var dump = LivepatchDump.Parse(serial)!;
        Assert.Equal("151b373fd64b321593bf987fd923cd10dabadac4", dump.BuildId);
        Assert.Equal(["xen_op_hello", "xen_op_bye"], dump.Payloads.Select(p => p.Name));
        var hello = dump.Payloads[0];
        Assert.Equal(("APPLIED", 2, 0xffff82d0405b0000ul, 0xffff82d0405b1000ul, 2ul), (hello.State, hello.StateValue, hello.Text, hello.Data, hello.Pages));
        Assert.Equal(["OP_HELLO"], hello.Metadata);
        Assert.Equal(new DumpedFunction("xen_extra_version", 0xffff82d040234b20, 16, 0xffff82d0405b0000, 8), Assert.Single(hello.Functions));
        Assert.Equal(("264410f01c1cb61d1328707e62470b23d2a0a323", dump.BuildId, dump.BuildId), (hello.BuildId, hello.DependsOn, hello.DependsOnXen));
        Assert.Equal(hello.BuildId, dump.Payloads[1].DependsOn);
        Assert.Empty(dump.Payloads[1].Metadata);
        // What dump prints is Xen's lines without the console's prefix, the core's other lines left out.
        Assert.Equal(serial.Split('\n').Where(l => l.Length > 0).Skip(2).Select(l => l["(XEN) ".Length..]), dump.Lines);
    }

    [Fact]
    public void The_dump_parser_keeps_the_dump_and_leaves_other_console_lines_out()
    {
        string console = """
            (XEN) [   12.000000] something else
            (XEN) 'x' pressed - Dumping all livepatch patches
            (XEN) build-id: 151b373fd64b321593bf987fd923cd10dabadac4
            (XEN)  name=xen hello state=CHECKED(1) ffff82d040800000 (.data=ffff82d040801000, .rodata=ffff82d040802000) using 3 pages.
            (XEN)     xen_extra_version patch ffff82d04022a1c0(12) with ffff82d040800000 (16)
            (XEN)      patch ffff82d04022a200(10) with 0000000000000000 (9)
            (XEN) d1v0 a guest says hello
            (XEN) build-id=aaaa
            (XEN) depend-on=151b373fd64b321593bf987fd923cd10dabadac4
            (XEN) depend-on-xen=151b373fd64b321593bf987fd923cd10dabadac4
            """;
        var dump = LivepatchDump.Parse(console)!;
        var p = Assert.Single(dump.Payloads);
        Assert.Equal(("xen hello", "CHECKED", 1, 3ul, "aaaa"), (p.Name, p.State, p.StateValue, p.Pages, p.BuildId));
        Assert.Equal([("xen_extra_version", 12u, 16u), ("", 10u, 9u)], p.Functions.Select(f => (f.Name, f.OldSize, f.NewSize)));
        Assert.DoesNotContain(dump.Lines, l => l.Contains("guest", StringComparison.Ordinal) || l.Contains("something", StringComparison.Ordinal));
        Assert.Null(LivepatchDump.Parse("(XEN) no dump here\n"));
        Assert.True(LivepatchDump.Parse("(XEN) 'x' pressed - Dumping all livepatch patches\n(XEN) Lock held. Try again.\n")!.LockHeld);
    }
}
