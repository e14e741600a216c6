using System.Buffers;

namespace XenLivepatch.Sandbox;

/// <summary>A <see cref="Memory{T}"/> over native memory that someone else maps and unmaps.</summary>
internal sealed unsafe class UnmanagedMemory : MemoryManager<byte>
{
    private readonly byte* _pointer;
    private readonly int _length;

    public UnmanagedMemory(IntPtr pointer, int length)
    {
        _pointer = (byte*)pointer;
        _length = length;
    }

    public override Span<byte> GetSpan() => new(_pointer, _length);

    public override MemoryHandle Pin(int elementIndex = 0) => new(_pointer + elementIndex);

    public override void Unpin() { }

    protected override void Dispose(bool disposing) { }
}
