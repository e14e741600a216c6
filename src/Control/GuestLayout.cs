using XenLivepatch.Abi;

namespace XenLivepatch.Control;

/// <summary>
/// Places a call's buffers at made-up guest addresses: page-aligned, with an unmapped page between two
/// buffers, so that a hypervisor writing past one faults (-EFAULT) instead of spilling into the next.
/// </summary>
internal sealed class GuestLayout
{
    private const ulong Page = 4096;
    private ulong _next = 0x10_0000;

    public List<WireBuffer> Buffers { get; } = [];

    public WireBuffer In(byte[] data) => Add(data, input: true, output: false);

    public WireBuffer Out(int length) => Add(new byte[length], input: false, output: true);

    private WireBuffer Add(byte[] data, bool input, bool output)
    {
        var b = new WireBuffer(_next, data, input, output);
        Buffers.Add(b);
        _next += ((ulong)data.Length + Page - 1) / Page * Page + Page;
        return b;
    }
}
