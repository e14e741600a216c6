using System.Runtime.CompilerServices;
using XenLivepatch.Hypervisor;
using XenLivepatch.Interop;

namespace XenLivepatch.Sandbox;

/// <summary>
/// Read+write views of the pages one action patches, one per run of adjacent pages, mapped before the CPUs stop
/// and unmapped after they run again. Each is referenced (<see cref="System.Runtime.InteropServices.SafeHandle.DangerousAddRef"/>)
/// for as long as this object lives, so that the pause writes through raw pointers.
/// </summary>
internal sealed unsafe class WritableViews : IDisposable
{
    private const ulong Page = PayloadAllocation.PageSize;
    private readonly List<SafeMapping> _mappings = [];
    private readonly View[] _views;

    private readonly struct View(ulong start, ulong length, byte* pointer)
    {
        public readonly ulong Start = start;
        public readonly ulong Length = length;
        public readonly byte* Pointer = pointer;
    }

    /// <summary>Maps views of <paramref name="pages"/> (sorted, page aligned, inside <paramref name="memory"/>).</summary>
    public WritableViews(SandboxMapping memory, IReadOnlyList<ulong> pages)
    {
        var views = new List<View>();
        try
        {
            ulong runStart = 0, runEnd = 0;
            foreach (ulong p in pages)
            {
                if (p != runEnd)
                {
                    Map(runStart, runEnd);
                    runStart = p;
                }
                runEnd = p + Page;
            }
            Map(runStart, runEnd);
        }
        catch
        {
            Dispose();
            throw;
        }
        _views = [.. views];

        void Map(ulong start, ulong end)
        {
            if (end == start)
                return;
            // MAP_POPULATE: the page tables are filled now, so the writes in the pause take no page fault.
            var mapping = memory.MapView(start, end - start, populate: true);
            if (mapping.IsInvalid)
                throw new IOException($"cannot map a writable view of 0x{start:x}: {LibC.LastError()}");
            bool added = false;
            mapping.DangerousAddRef(ref added);
            _mappings.Add(mapping);
            views.Add(new View(start, end - start, (byte*)mapping.Address));
        }
    }

    /// <summary>Where [address, address + length) is written through a view; null when no view holds all of it.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public byte* Translate(ulong address, int length)
    {
        foreach (var v in _views)
        {
            if (address >= v.Start && (ulong)length <= v.Length && address - v.Start <= v.Length - (ulong)length)
                return v.Pointer + (address - v.Start);
        }
        return null;
    }

    /// <inheritdoc/>
    public void Dispose()
    {
        foreach (var mapping in _mappings)
        {
            mapping.DangerousRelease();
            mapping.Dispose();
        }
        _mappings.Clear();
    }
}
