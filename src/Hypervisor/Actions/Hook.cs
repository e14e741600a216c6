using System.Buffers.Binary;
using System.Runtime.CompilerServices;

namespace XenLivepatch.Hypervisor;

/// <summary>A payload's hook slot: the address of a function pointer in the payload's memory.</summary>
internal static class Hook
{
    /// <summary><c>is_hook_enabled</c>: the slot is set and holds a function pointer, which is returned.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    [RunsInPause]
    public static bool Enabled(IHypervisorMemory memory, ulong slot, out ulong function)
    {
        function = 0;
        if (slot == 0)
            return false;
        Span<byte> b = stackalloc byte[8];
        if (memory.Read(slot, b) != MemoryReadStatus.Ok)
            return false;
        function = BinaryPrimitives.ReadUInt64LittleEndian(b);
        return function != 0;
    }
}
