using XenLivepatch.Hypervisor;
using XenLivepatch.Interop;

namespace XenLivepatch.Sandbox;

/// <summary>
/// <see cref="PatchingMode.MprotectMembarrier"/>, the benchmark's baseline: each write, in the pause, makes its page
/// writable, writes, makes it read+execute again, and has every thread of the process serialise its instruction
/// stream (membarrier SYNC_CORE).
/// </summary>
internal sealed unsafe class MprotectMembarrierPatching : ITextPatching
{
    private const ulong Page = PayloadAllocation.PageSize;
    private readonly SandboxMapping _memory;
    private readonly IHypervisorMemory _writer;

    /// <summary>Registers the process for membarrier SYNC_CORE; <paramref name="writer"/> is whose WriteText the prepared writes call.</summary>
    public MprotectMembarrierPatching(SandboxMapping memory, IHypervisorMemory writer)
    {
        if (LibC.syscall(LibC.SYS_membarrier, LibC.MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED_SYNC_CORE, 0, 0) != 0)
            throw new IOException($"membarrier(REGISTER_PRIVATE_EXPEDITED_SYNC_CORE) failed: {LibC.LastError()}");
        _memory = memory;
        _writer = writer;
    }

    /// <inheritdoc/>
    public IPreparedPatching Prepare(IReadOnlyList<ulong> pages, IReadOnlyList<TextWrite> writes) => new SequentialWrites(_writer, writes);

    /// <inheritdoc/>
    public bool WriteText(ulong address, ReadOnlySpan<byte> bytes)
    {
        ulong start = address & ~(Page - 1);
        ulong length = ((address + (ulong)bytes.Length + Page - 1) & ~(Page - 1)) - start;
        if (!_memory.Contains(start, length))
            return false;
        if (LibC.mprotect((nint)start, (nuint)length, LibC.PROT_READ | LibC.PROT_WRITE) != 0)
            return false;
        bytes.CopyTo(new Span<byte>((byte*)address, bytes.Length));
        LibC.mprotect((nint)start, (nuint)length, LibC.PROT_READ | LibC.PROT_EXEC);
        LibC.syscall(LibC.SYS_membarrier, LibC.MEMBARRIER_CMD_PRIVATE_EXPEDITED_SYNC_CORE, 0, 0);
        return true;
    }
}
