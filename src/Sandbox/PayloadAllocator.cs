using System.Buffers;
using XenLivepatch.Hypervisor;
using XenLivepatch.Interop;

namespace XenLivepatch.Sandbox;

/// <summary>
/// Payload memory in the window after the image (<c>vmalloc_xen</c> as <c>move_payload</c> uses it): first fit,
/// page granular. A payload is loaded through a read+write view of its pages while the pages themselves stay
/// inaccessible; <c>secure_payload</c> gives them their protections and drops the view.
/// </summary>
internal sealed unsafe class PayloadAllocator : IDisposable
{
    private const ulong Page = PayloadAllocation.PageSize;
    private readonly SandboxMapping _mapping;
    private readonly ReadableRanges _readable;
    private readonly ulong _windowStart;
    private readonly ulong _windowSize;
    private readonly Lock _lock = new();
    private readonly AddressRanges<Allocation> _allocations;

    private sealed class Allocation(PayloadAllocation payload, SafeMapping loadingView, ulong bytes)
    {
        public PayloadAllocation Payload { get; } = payload;
        // Until the payload is secured: where it is written while it loads.
        public SafeMapping? LoadingView { get; set; } = loadingView;
        public ulong Bytes { get; } = bytes;
        public ulong Start => Payload.BaseAddress;
        public ulong End => Start + Bytes;
    }

    public PayloadAllocator(SandboxMapping mapping, ReadableRanges readable, ulong windowStart, ulong windowSize)
    {
        _mapping = mapping;
        _readable = readable;
        _windowStart = windowStart;
        _windowSize = windowSize;
        _allocations = new(windowStart, 0);
    }

    /// <summary>The lowest free run of <paramref name="pages"/> pages, mapped for loading; null when none is free.</summary>
    public PayloadAllocation? Allocate(ulong textSize, ulong rwSize, ulong roSize, ulong pages)
    {
        if (pages > _windowSize / Page)
            return null;
        ulong bytes = pages * Page;
        lock (_lock)
        {
            ulong at = _allocations.FreeRuns().First(run => run.To - run.From >= bytes).From;
            if (at + bytes > _windowStart + _windowSize)
                return null;
            var view = _mapping.MapView(at, bytes);
            if (view.IsInvalid)
            {
                view.Dispose();
                return null;
            }
            var memory = new MappedMemory(view).Memory;
            memory.Span.Clear(); // pages freed by an earlier payload keep its bytes
            var allocation = new PayloadAllocation(at, memory, textSize, rwSize, roSize);
            _allocations.Add(at, at + bytes, new Allocation(allocation, view, bytes));
            return allocation;
        }
    }

    /// <summary><c>secure_payload</c>: text read+execute, rw read+write, ro read-only; the loading view goes.</summary>
    public void Secure(PayloadAllocation allocation)
    {
        lock (_lock)
        {
            var a = Find(allocation);
            ulong text = PayloadAllocation.PageAlign(allocation.TextSize);
            ulong rw = PayloadAllocation.PageAlign(allocation.RwSize);
            _mapping.Protect(allocation.TextAddress, text, LibC.PROT_READ | LibC.PROT_EXEC);
            _mapping.Protect(allocation.RwAddress, rw, LibC.PROT_READ | LibC.PROT_WRITE);
            _mapping.Protect(allocation.RoAddress, a.End - allocation.RoAddress, LibC.PROT_READ);
            a.LoadingView?.Dispose();
            a.LoadingView = null;
            _readable.Add(a.Start, a.End);
        }
    }

    /// <summary>Returns a payload's pages to the window, inaccessible again.</summary>
    public void Free(PayloadAllocation allocation)
    {
        lock (_lock)
        {
            var a = Find(allocation);
            a.LoadingView?.Dispose();
            _readable.Remove(a.Start, a.End);
            _mapping.Protect(a.Start, a.Bytes, LibC.PROT_NONE);
            _allocations.Remove(a.Start, a);
        }
    }

    private Allocation Find(PayloadAllocation allocation) =>
        _allocations.TryFindAtOrBelow(allocation.BaseAddress, out var a) && a.Payload == allocation ? a
        : throw new InvalidOperationException($"no payload memory at 0x{allocation.BaseAddress:x}");

    /// <summary>Reads a payload that is still loading, through its loading view.</summary>
    public bool TryReadLoading(ulong address, Span<byte> destination)
    {
        ulong length = (ulong)destination.Length;
        lock (_lock)
        {
            if (_allocations.TryFindAtOrBelow(address, out var a) && a.LoadingView is { } view && address < a.End && length <= a.End - address)
            {
                new ReadOnlySpan<byte>((byte*)view.Address + (address - a.Start), destination.Length).CopyTo(destination);
                return true;
            }
        }
        return false;
    }

    /// <inheritdoc/>
    public void Dispose()
    {
        lock (_lock)
        {
            foreach (var a in _allocations.Values)
                a.LoadingView?.Dispose();
            while (_allocations.Values.Count > 0)
                _allocations.Remove(_allocations.Values[^1].Start, _allocations.Values[^1]);
        }
    }

    // A payload's loading view as the core's Memory<byte>; a use after the view is gone throws rather than faults.
    private sealed class MappedMemory(SafeMapping view) : MemoryManager<byte>
    {
        public override Span<byte> GetSpan()
        {
            ObjectDisposedException.ThrowIf(view.IsClosed, this);
            return new((byte*)view.Address, (int)view.Length);
        }

        public override MemoryHandle Pin(int elementIndex = 0)
        {
            bool added = false;
            view.DangerousAddRef(ref added);
            return new MemoryHandle((byte*)view.Address + elementIndex, default, this);
        }

        public override void Unpin() => view.DangerousRelease();

        protected override void Dispose(bool disposing)
        {
        }
    }
}
