using System.Buffers.Binary;

namespace XenLivepatch.Abi.Tests;

/// <summary>
/// The sandbox socket's framing: sysctls still travel as version 1 frames (so a sandbox from before version 2
/// serves today's tools), xen_version travels as version 2 frames that name the hypercall and keep to a small
/// size budget, and a decoder that knows only version 1 refuses version 2 cleanly.
/// </summary>
public class SocketWireTests
{
    [Fact]
    public void A_sysctl_request_is_a_version_1_frame_and_decodes_the_same_either_way()
    {
        var sysctl = new byte[XenSysctl.SizeOf];
        sysctl[0] = 27;
        var buffers = new[] { new WireBuffer(0x1000, [1, 2, 3], In: true, Out: false), new WireBuffer(0x3000, new byte[8], In: false, Out: true) };
        byte[] m = SocketWire.EncodeRequest(sysctl, buffers);
        Assert.Equal(1u, BinaryPrimitives.ReadUInt32LittleEndian(m.AsSpan(4)));
        Assert.True(SocketWire.TryDecode(m, out var request, out string error), error);
        Assert.Equal(SocketWire.SysctlHypercall, request.Hypercall);
        Assert.Equal(sysctl, request.Op);
        Assert.Equal([(0x1000ul, 3, true, false), (0x3000ul, 8, false, true)], request.Buffers.Select(b => (b.Address, b.Data.Length, b.In, b.Out)));
        Assert.True(SocketWire.TryDecodeRequest(m, out byte[] again, out _, out error), error);
        Assert.Equal(sysctl, again);
    }

    [Fact]
    public void A_xen_version_request_is_a_version_2_frame_naming_the_hypercall_that_old_decoders_refuse()
    {
        var arg = new WireBuffer(0x10_0000, XenBuildId.Request(64), In: true, Out: true);
        byte[] m = SocketWire.EncodeXenVersionRequest(XenVersion.BuildId, arg);
        Assert.Equal((2u, 17u), (BinaryPrimitives.ReadUInt32LittleEndian(m.AsSpan(4)), BinaryPrimitives.ReadUInt32LittleEndian(m.AsSpan(16))));
        Assert.True(SocketWire.TryDecode(m, out var request, out string error), error);
        Assert.Equal((XenVersion.Hypercall, XenVersion.BuildId, 0x10_0000ul), (request.Hypercall, request.XenVersionCmd, request.XenVersionArg));
        Assert.Equal(arg.Data, Assert.Single(request.Buffers).Data);

        Assert.False(SocketWire.TryDecodeRequest(m, out _, out _, out error));
        Assert.Equal("unknown protocol version", error);

        // The reply carries the 16-byte op back.
        byte[] reply = SocketWire.EncodeReply(20, request.Op, request.Buffers);
        Assert.True(SocketWire.TryDecodeReply(reply, SocketWire.XenVersionOpSize, out int rc, out _, out var outs, out error), error);
        Assert.Equal((20, 0x10_0000ul), (rc, Assert.Single(outs).Address));
        Assert.False(SocketWire.TryDecodeReply(reply, out _, out _, out _, out _));
    }

    [Fact]
    public void A_xen_version_request_over_its_budget_or_for_another_hypercall_is_refused()
    {
        byte[] big = SocketWire.EncodeXenVersionRequest(XenVersion.BuildId, new WireBuffer(0x1000, new byte[SocketWire.MaxXenVersionBuffer + 1], true, true));
        Assert.False(SocketWire.TryDecode(big, out _, out string error));
        Assert.Equal("xen_version request over its size budget", error);

        // An out-only buffer declaring a huge length: refused before anything is allocated for it.
        byte[] m = SocketWire.EncodeXenVersionRequest(XenVersion.BuildId, new WireBuffer(0x1000, new byte[16], false, true));
        BinaryPrimitives.WriteUInt32LittleEndian(m.AsSpan(24 + SocketWire.XenVersionOpSize + 8), 64 * 1024 * 1024);
        Assert.False(SocketWire.TryDecode(m, out _, out error));
        Assert.Equal("buffer too large", error);

        byte[] two = SocketWire.EncodeXenVersionRequest(XenVersion.BuildId, new WireBuffer(0x1000, new byte[16], false, true));
        BinaryPrimitives.WriteUInt32LittleEndian(two.AsSpan(12), 2);
        Assert.False(SocketWire.TryDecode(two, out _, out error));

        byte[] other = SocketWire.EncodeXenVersionRequest(XenVersion.BuildId, null);
        BinaryPrimitives.WriteUInt32LittleEndian(other.AsSpan(16), 36);
        Assert.False(SocketWire.TryDecode(other, out _, out error));
        Assert.Equal("hypercall 36 is not served", error);

        Assert.False(SocketWire.TryDecode(other.AsSpan(0, 20), out _, out error));
    }
}
