using System.Text;
using XenLivepatch.TestKit;

namespace XenLivepatch.Abi.Tests;

/// <summary>
/// Our encoders write the same bytes as gcc lays out a structure filled with the same values (for both
/// layouts, the payload structures and the expectation bitfield), and decode them back to those values.
/// </summary>
public class EncodingTests
{
    private static readonly XenLivepatchName s_name = new(0x1122334455667788, 16);

    private const string CName = "{ .name.q = 0x1122334455667788ULL, .size = 16 }";

    private static Dictionary<string, byte[]> CompileAndDump(SysctlLayout layout)
    {
        bool seed = layout == SysctlLayout.Seed2016;
        var c = new StringBuilder();
        c.AppendLine(CStructs.Common);
        c.AppendLine(CStructs.Layout(seed));
        c.AppendLine("""
            static void dump(const char *what, const void *p, size_t n) {
                const unsigned char *b = p;
                printf("%s ", what);
                for (size_t i = 0; i < n; i++) printf("%02x", b[i]);
                printf("\n");
            }
            int main(void) {
            """);
        c.AppendLine($$"""
                struct xen_sysctl_livepatch_upload up; memset(&up, 0, sizeof up);
                up = (struct xen_sysctl_livepatch_upload){ .name = {{CName}}, .size = 0x0102030405060708ULL, .payload.q = 0xA1A2A3A4A5A6A7A8ULL };
                dump("upload", &up, sizeof up);
                struct xen_sysctl_livepatch_get get; memset(&get, 0, sizeof get);
                get = (struct xen_sysctl_livepatch_get){ .name = {{CName}}, .status = { .state = 2, .rc = -22 } };
                dump("get", &get, sizeof get);
                struct xen_sysctl_livepatch_list_L list; memset(&list, 0, sizeof list);
                list.version = 0x11; list.idx = 0x22; list.nr = 0x33; list.pad = 0;
                list.status.q = 0x1000000000000001ULL; list.name.q = 0x2000000000000002ULL; list.len.q = 0x3000000000000003ULL;
                {{(seed ? "" : "list.name_total_size = 0x44; list.metadata_total_size = 0x55; list.metadata.q = 0x4000000000000004ULL; list.metadata_len.q = 0x5000000000000005ULL;")}}
                dump("list", &list, sizeof list);
                struct xen_sysctl_livepatch_action_L act; memset(&act, 0, sizeof act);
                act.name = (struct xen_livepatch_name){{CName}}; act.cmd = 3; act.timeout = 30000000;
                {{(seed ? "" : "act.flags = 1;")}}
                dump("action", &act, sizeof act);
                struct xen_sysctl_L sys; memset(&sys, 0, sizeof sys);
                sys.cmd = 27; sys.interface_version = {{(seed ? "0x0D" : "0x15")}};
                sys.u.livepatch.cmd = 3; {{(seed ? "" : "sys.u.livepatch.flags = 1;")}}
                sys.u.livepatch.u.action = act;
                dump("sysctl", &sys, sizeof sys);
                struct livepatch_func_v1 f1; memset(&f1, 0, sizeof f1);
                f1.name = (const char *)0x1111; f1.new_addr = (void *)0x2222; f1.old_addr = (void *)0x3333;
                f1.new_size = 8; f1.old_size = 12; f1.version = 1; f1.opaque[0] = 0xAA; f1.opaque[30] = 0xBB;
                dump("func1", &f1, sizeof f1);
                struct livepatch_func_v2 f2; memset(&f2, 0, sizeof f2);
                f2.name = (const char *)0x1111; f2.new_addr = (void *)0x2222; f2.old_addr = (void *)0x3333;
                f2.new_size = 8; f2.old_size = 12; f2.version = 2; f2._pad[38] = 0x5A;
                f2.expect.enabled = 1; f2.expect.len = 8; f2.expect.rsv = 2;
                for (int i = 0; i < 31; i++) f2.expect.data[i] = (uint8_t)(i + 1);
                dump("func2", &f2, sizeof f2);
                return 0;
            }
            """);
        string dir = Repo.TempDirectory("abi-encoding");
        string src = Path.Combine(dir, "dump.c");
        string exe = Path.Combine(dir, "dump");
        File.WriteAllText(src, c.ToString());
        Tool.Run("gcc", "-std=gnu11", "-Wall", "-Werror", "-o", exe, src).EnsureSuccess();
        return Tool.Run(exe).EnsureSuccess().Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries)
            .Select(l => l.Split(' ')).ToDictionary(p => p[0], p => Convert.FromHexString(p[1]));
    }

    private static SysctlLivepatchAction Action(SysctlLayout layout) =>
        new() { Name = s_name, Cmd = 3, Timeout = 30_000_000, Flags = layout == SysctlLayout.Seed2016 ? 0u : 1u };

    private static byte[] Encode(int size, SpanAction write)
    {
        var b = new byte[size];
        write(b);
        return b;
    }

    private delegate void SpanAction(Span<byte> d);

    [Theory]
    [InlineData(SysctlLayout.Seed2016)]
    [InlineData(SysctlLayout.Xen414)]
    public void Encoders_write_what_gcc_lays_out_and_decoders_read_it_back(SysctlLayout layout)
    {
        var c = CompileAndDump(layout);
        bool seed = layout == SysctlLayout.Seed2016;

        var upload = new SysctlLivepatchUpload(s_name, 0x0102030405060708, 0xA1A2A3A4A5A6A7A8);
        Assert.Equal(c["upload"], Encode(SysctlLivepatchUpload.SizeOf, d => upload.Write(d)));
        Assert.Equal(upload, SysctlLivepatchUpload.Read(c["upload"]));

        var get = new SysctlLivepatchGet(s_name, new XenLivepatchStatus(2, -22));
        Assert.Equal(c["get"], Encode(SysctlLivepatchGet.SizeOf, d => get.Write(d)));
        Assert.Equal(get, SysctlLivepatchGet.Read(c["get"]));

        var list = new SysctlLivepatchList
        {
            Version = 0x11, Idx = 0x22, Nr = 0x33, Status = 0x1000000000000001, Name = 0x2000000000000002, Len = 0x3000000000000003,
            NameTotalSize = seed ? 0u : 0x44, MetadataTotalSize = seed ? 0u : 0x55,
            Metadata = seed ? 0ul : 0x4000000000000004, MetadataLen = seed ? 0ul : 0x5000000000000005,
        };
        Assert.Equal(c["list"], Encode(SysctlLivepatchList.SizeOf(layout), d => list.Write(d, layout)));
        Assert.Equal(list, SysctlLivepatchList.Read(c["list"], layout));

        var action = Action(layout);
        Assert.Equal(c["action"], Encode(SysctlLivepatchAction.SizeOf(layout), d => action.Write(d, layout)));
        Assert.Equal(action, SysctlLivepatchAction.Read(c["action"], layout));

        var op = new SysctlLivepatchOp { Cmd = LivepatchSubOp.Action, Flags = seed ? 0u : 1u, Action = action };
        var abi = seed ? LivepatchAbi.Seed2016 : LivepatchAbi.Xen417;
        Assert.Equal(c["sysctl"], XenSysctl.EncodeLivepatch(abi, op));
        Assert.Equal(new XenSysctl(27, abi.InterfaceVersion), XenSysctl.ReadHeader(c["sysctl"]));
        Assert.Equal(op, XenSysctl.ReadLivepatch(c["sysctl"], layout));
    }

    [Fact]
    public void Payload_functions_and_the_expectation_bitfield_match_gcc()
    {
        var c = CompileAndDump(SysctlLayout.Xen414);
        var opaque = new byte[31];
        opaque[0] = 0xAA;
        opaque[30] = 0xBB;
        var f1 = new LivepatchFunc { Name = 0x1111, NewAddr = 0x2222, OldAddr = 0x3333, NewSize = 8, OldSize = 12, Version = 1, Pad = opaque };
        Assert.Equal(c["func1"], Encode(64, d => f1.Write(d, 1)));
        var back1 = LivepatchFunc.Read(c["func1"], 1);
        Assert.Equal((f1.Name, f1.NewAddr, f1.OldAddr, f1.NewSize, f1.OldSize, f1.Version), (back1.Name, back1.NewAddr, back1.OldAddr, back1.NewSize, back1.OldSize, back1.Version));
        Assert.Equal(opaque, back1.Pad.ToArray());

        var pad = new byte[39];
        pad[38] = 0x5A;
        byte[] data = Enumerable.Range(1, 31).Select(i => (byte)i).ToArray();
        var f2 = new LivepatchFunc
        {
            Name = 0x1111, NewAddr = 0x2222, OldAddr = 0x3333, NewSize = 8, OldSize = 12, Version = 2, Pad = pad,
            Expect = new LivepatchExpectation(true, 8, 2, data),
        };
        Assert.Equal(c["func2"], Encode(104, d => f2.Write(d, 2)));
        var back2 = LivepatchFunc.Read(c["func2"], 2);
        Assert.Equal((true, (byte)8, (byte)2), (back2.Expect.Enabled, back2.Expect.Length, back2.Expect.Reserved));
        Assert.Equal(data, back2.Expect.Data.ToArray());
    }

    [Fact]
    public void Layout_specific_members_cannot_be_written_in_the_2016_layout()
    {
        var action = new SysctlLivepatchAction { Name = s_name, Cmd = 3, Flags = 1 };
        Assert.Throws<ArgumentException>(() => action.Write(new byte[24], SysctlLayout.Seed2016));
        var list = new SysctlLivepatchList { MetadataTotalSize = 1 };
        Assert.Throws<ArgumentException>(() => list.Write(new byte[40], SysctlLayout.Seed2016));
    }

    [Fact]
    public void Every_sub_op_round_trips_through_a_sysctl_buffer()
    {
        foreach (var abi in LivepatchAbi.All)
        {
            var seed = abi.Layout == SysctlLayout.Seed2016;
            SysctlLivepatchOp[] ops =
            [
                new() { Cmd = LivepatchSubOp.Upload, Flags = seed ? 0u : 1u, Upload = new SysctlLivepatchUpload(s_name, 4096, 0xdead0000) },
                new() { Cmd = LivepatchSubOp.Get, Get = new SysctlLivepatchGet(s_name, new XenLivepatchStatus(1, -11)) },
                new() { Cmd = LivepatchSubOp.List, List = new SysctlLivepatchList { Nr = 8, Status = 1, Name = 2, Len = 3, Metadata = seed ? 0ul : 4 } },
                new() { Cmd = LivepatchSubOp.Action, Action = Action(abi.Layout) },
                new() { Cmd = (LivepatchSubOp)9 },
            ];
            foreach (var op in ops)
            {
                byte[] buffer = XenSysctl.EncodeLivepatch(abi, op);
                Assert.Equal(136, buffer.Length);
                Assert.Equal(op, XenSysctl.ReadLivepatch(buffer, abi.Layout));
                Assert.True(buffer.AsSpan(8 + SysctlLivepatchOp.SizeOf(abi.Layout)).IndexOfAnyExcept((byte)0) < 0, "bytes past the op are zero");
            }
        }
    }
}
