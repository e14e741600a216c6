using System.Runtime.CompilerServices;
using XenLivepatch.Elf;
using XenLivepatch.Hypervisor;

namespace XenLivepatch.Sandbox;

/// <summary>How code is made writable for patching.</summary>
public enum PatchingMode
{
    /// <summary>
    /// A read+write view of the patched pages is mapped before the rendezvous and unmapped after it; the
    /// vCPUs serialise themselves on release. No system call while they are stopped (the default).
    /// </summary>
    DualMapping,

    /// <summary>
    /// The naive way, kept as the benchmark's baseline: inside the pause, mprotect the page writable, write,
    /// mprotect it back to read+execute, and membarrier(SYNC_CORE) every thread of the process.
    /// </summary>
    MprotectMembarrier,
}

/// <summary>
/// The sandbox hypervisor's memory: one memfd holding the image and a 64 MiB payload window after it,
/// mapped at the image's link address. Text is only ever mapped read+execute; writes (loading a payload,
/// patching) go through read+write views of the same pages, mapped before and unmapped after: W^X holds,
/// and no system call happens while the CPUs are stopped.
/// </summary>
public sealed unsafe class SandboxMemory : IHypervisorSymbols, IHypervisorMemory, IDisposable
{
    /// <summary>Room for payloads after the image.</summary>
    public const ulong WindowSize = 64UL << 20;

    private const ulong Page = PayloadAllocation.PageSize;
    private readonly int _fd;
    private readonly ulong _base;
    private readonly ulong _size;
    private readonly ulong _windowStart;
    private readonly Lock _lock = new();
    private readonly List<(ulong Start, ulong End)> _readable = [];
    // A copy of _readable for reads without the lock (the core reads old code while the CPUs are stopped).
    private volatile (ulong Start, ulong End)[] _readableSnapshot = [];
    private readonly List<Allocation> _allocations = [];
    private List<(ulong Start, ulong Length, IntPtr View)> _patchViews = [];
    private bool _disposed;
    private readonly PatchingMode _patching;

    private sealed class Allocation(PayloadAllocation payload, IntPtr alias, ulong bytes)
    {
        public PayloadAllocation Payload { get; } = payload;
        public IntPtr Alias { get; set; } = alias;
        public ulong Bytes { get; } = bytes;
        public ulong Start => Payload.BaseAddress;
        public ulong End => Start + Bytes;
    }

    /// <summary>Maps <paramref name="image"/> at its link address.</summary>
    public SandboxMemory(SandboxImage image, PatchingMode patching = PatchingMode.DualMapping)
    {
        Image = image;
        _patching = patching;
        if (patching == PatchingMode.MprotectMembarrier &&
            Native.syscall(Native.SYS_membarrier, Native.MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED_SYNC_CORE, 0, 0) != 0)
            throw new IOException($"membarrier(REGISTER_PRIVATE_EXPEDITED_SYNC_CORE) failed: {Native.LastError()}");
        _base = image.Start;
        _windowStart = (image.End + (2UL << 20) - 1) & ~((2UL << 20) - 1);
        _size = _windowStart + WindowSize - _base;
        _fd = Native.memfd_create("xen-livepatch-sandbox", Native.MFD_CLOEXEC);
        if (_fd < 0)
            throw new IOException($"memfd_create failed: {Native.LastError()}");
        if (Native.ftruncate(_fd, (long)_size) != 0)
            throw new IOException($"ftruncate of the sandbox memory failed: {Native.LastError()}");
        var at = Native.mmap((nint)_base, (nuint)_size, Native.PROT_NONE, Native.MAP_SHARED | Native.MAP_FIXED_NOREPLACE, _fd, 0);
        if (at == Native.MapFailed || (ulong)at != _base)
        {
            string why = at == Native.MapFailed ? Native.LastError() : $"the kernel placed it at 0x{(ulong)at:x}";
            Native.close(_fd);
            throw new IOException($"cannot map the sandbox image at its link address 0x{_base:x}: {why}");
        }
        // Copy the segments in through a writable view, then give each its own protection.
        ulong imageSize = image.End - _base;
        var view = Native.mmap(IntPtr.Zero, (nuint)imageSize, Native.PROT_READ | Native.PROT_WRITE, Native.MAP_SHARED, _fd, 0);
        if (view == Native.MapFailed)
            throw new IOException($"cannot map the sandbox image for writing: {Native.LastError()}");
        var data = image.File.Data.Span;
        foreach (var p in image.Segments)
        {
            if (p.FileSize > 0)
                data.Slice((int)p.Offset, (int)p.FileSize).CopyTo(new Span<byte>((byte*)view + (p.VirtualAddress - _base), (int)p.FileSize));
        }
        Native.munmap(view, (nuint)imageSize);
        foreach (var p in image.Segments)
        {
            ulong start = p.VirtualAddress & ~(Page - 1);
            ulong end = (p.VirtualAddress + p.MemorySize + Page - 1) & ~(Page - 1);
            int prot = Native.PROT_READ | ((p.Flags & ElfSegmentFlags.Write) != 0 ? Native.PROT_WRITE : 0) | ((p.Flags & ElfSegmentFlags.Execute) != 0 ? Native.PROT_EXEC : 0);
            if ((prot & Native.PROT_WRITE) != 0 && (prot & Native.PROT_EXEC) != 0)
                throw new InvalidDataException("the sandbox image has a writable and executable segment");
            Protect(start, end - start, prot);
            _readable.Add((start, end));
        }
        _readableSnapshot = [.. _readable];
        // What the core calls in the pause, compiled now rather than there by the first action (its first apply
        // held the vCPUs 1-4 ms). RuntimeHelpers.PrepareMethod leaves these interface methods alone: call them,
        // where they write nothing (no view is mapped, and address 0 is outside the sandbox).
        Read(_base, []);
        WriteText(0, [0]);
        WriteTextNaively(0, [0]);
        using (var none = new PatchViews(this, [], []))
        {
            none.Warm();
            none.WriteAll();
        }
    }

    /// <summary>The image.</summary>
    public SandboxImage Image { get; }

    /// <summary>Where payload memory starts.</summary>
    public ulong WindowStart => _windowStart;

    /// <inheritdoc/>
    public ReadOnlyMemory<byte> BuildId => Image.BuildId;

    /// <inheritdoc/>
    public ulong TextStart => Image.Symbols.TextStart;

    /// <inheritdoc/>
    public ulong TextEnd => Image.Symbols.TextEnd;

    /// <inheritdoc/>
    public bool TryLookup(string name, out ulong address)
    {
        bool found = Image.Symbols.TryGet(name, out var s);
        address = found ? s.Address : 0;
        return found;
    }

    private void Protect(ulong start, ulong length, int prot)
    {
        if (length != 0 && Native.mprotect((nint)start, (nuint)length, prot) != 0)
            throw new IOException($"mprotect(0x{start:x}, {length}) failed: {Native.LastError()}");
    }

    private bool IsReadable(ulong address)
    {
        lock (_lock)
        {
            foreach (var (start, end) in _readable)
            {
                if (address >= start && address < end)
                    return true;
            }
        }
        return false;
    }

    /// <inheritdoc/>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public MemoryReadStatus Read(ulong address, Span<byte> destination)
    {
        ulong length = (ulong)destination.Length;
        if (length == 0)
            return MemoryReadStatus.Ok;
        foreach (var (start, end) in _readableSnapshot)
        {
            if (address >= start && address < end && length <= end - address)
            {
                new ReadOnlySpan<byte>((byte*)address, destination.Length).CopyTo(destination);
                return MemoryReadStatus.Ok;
            }
        }
        lock (_lock)
        {
            // A payload being loaded is readable through its loading view.
            foreach (var a in _allocations)
            {
                if (a.Alias != IntPtr.Zero && address >= a.Start && address < a.End && length <= a.End - address)
                {
                    new ReadOnlySpan<byte>((byte*)a.Alias + (address - a.Start), destination.Length).CopyTo(destination);
                    return MemoryReadStatus.Ok;
                }
            }
        }
        return MemoryReadStatus.Unmapped;
    }

    /// <inheritdoc/>
    public PayloadAllocation? Allocate(string payload, ulong textSize, ulong rwSize, ulong roSize, ulong pages)
    {
        if (pages > WindowSize / Page)
            return null;
        ulong bytes = pages * Page;
        lock (_lock)
        {
            ulong at = _windowStart;
            foreach (var a in _allocations.OrderBy(a => a.Start))
            {
                if (a.Start - at >= bytes)
                    break;
                at = Math.Max(at, a.End);
            }
            if (at + bytes > _windowStart + WindowSize)
                return null;
            var alias = Native.mmap(IntPtr.Zero, (nuint)bytes, Native.PROT_READ | Native.PROT_WRITE, Native.MAP_SHARED, _fd, (long)(at - _base));
            if (alias == Native.MapFailed)
                return null;
            var memory = new UnmanagedMemory(alias, (int)bytes).Memory;
            memory.Span.Clear(); // pages freed by an earlier payload keep its bytes
            var allocation = new PayloadAllocation(at, memory, textSize, rwSize, roSize);
            _allocations.Add(new Allocation(allocation, alias, bytes));
            return allocation;
        }
    }

    /// <inheritdoc/>
    public void Secure(PayloadAllocation allocation)
    {
        lock (_lock)
        {
            var a = _allocations.Single(x => x.Payload == allocation);
            ulong text = PayloadAllocation.PageAlign(allocation.TextSize);
            ulong rw = PayloadAllocation.PageAlign(allocation.RwSize);
            Protect(allocation.TextAddress, text, Native.PROT_READ | Native.PROT_EXEC);
            Protect(allocation.RwAddress, rw, Native.PROT_READ | Native.PROT_WRITE);
            Protect(allocation.RoAddress, a.End - allocation.RoAddress, Native.PROT_READ);
            Native.munmap(a.Alias, (nuint)a.Bytes);
            a.Alias = IntPtr.Zero;
            _readable.Add((a.Start, a.End));
            _readableSnapshot = [.. _readable];
        }
    }

    /// <inheritdoc/>
    public void Free(PayloadAllocation allocation)
    {
        lock (_lock)
        {
            var a = _allocations.Single(x => x.Payload == allocation);
            if (a.Alias != IntPtr.Zero)
                Native.munmap(a.Alias, (nuint)a.Bytes);
            _readable.Remove((a.Start, a.End));
            _readableSnapshot = [.. _readable];
            Protect(a.Start, a.Bytes, Native.PROT_NONE);
            _allocations.Remove(a);
        }
    }

    /// <inheritdoc/>
    public IPreparedPatching PreparePatching(IReadOnlyList<(ulong Address, int Length)> ranges, IReadOnlyList<TextWrite> writes)
    {
        var pages = new SortedSet<ulong>();
        foreach (var (address, length) in ranges)
        {
            for (ulong p = address & ~(Page - 1); p < address + (ulong)length; p += Page)
            {
                if (p >= _base && p < _base + _size)
                    pages.Add(p);
            }
        }
        // The core reads the old code (ENDBR64, the bytes to save) in the pause: fault those pages in now.
        foreach (ulong p in pages)
        {
            if (IsReadable(p))
                _ = Volatile.Read(ref *(byte*)p);
        }
        if (_patching == PatchingMode.MprotectMembarrier)
            return new SequentialWrites(this, writes);
        var views = new List<(ulong, ulong, IntPtr)>();
        ulong runStart = 0, runEnd = 0;
        void Map()
        {
            if (runEnd == runStart)
                return;
            // MAP_POPULATE: the page tables are filled now, so the writes in the pause take no page fault.
            var v = Native.mmap(IntPtr.Zero, (nuint)(runEnd - runStart), Native.PROT_READ | Native.PROT_WRITE, Native.MAP_SHARED | Native.MAP_POPULATE, _fd, (long)(runStart - _base));
            if (v == Native.MapFailed)
                throw new IOException($"cannot map a writable view of 0x{runStart:x}: {Native.LastError()}");
            views.Add((runStart, runEnd - runStart, v));
        }
        foreach (ulong p in pages)
        {
            if (p != runEnd)
            {
                Map();
                runStart = p;
            }
            runEnd = p + Page;
        }
        Map();
        lock (_lock)
            _patchViews = views;
        return new PatchViews(this, views, writes);
    }

    // The writable views of one action, and its known writes as a table of 16-byte entries made for the
    // pause: the destination already translated into its view, the bytes inline when they fit (a jump is 5),
    // else in a blob after the table. In the pause one pass over the table, touching one cache line per 4
    // writes and the lines written: measured with 1,000 functions, the core's per-function writes (a lookup
    // of the view and a copy each, from the functions' objects) took 20-80 µs, most of it cache misses on
    // a vCPU that had not seen that data.
    private sealed class PatchViews : IPreparedPatching
    {
        private readonly SandboxMemory _owner;
        private readonly List<(ulong Start, ulong Length, IntPtr View)> _views;
        private readonly Entry* _table;
        private readonly int _count;
        private readonly bool _complete;

        private struct Entry
        {
            public byte* Destination;
            // Byte 0: the length when the bytes are inline (1..7), in bytes 1..7; 0 when they are in the blob,
            // at offset (Bytes >> 8) & 0xffffffff, (Bytes >> 40) bytes long.
            public ulong Bytes;
        }

        public PatchViews(SandboxMemory owner, List<(ulong Start, ulong Length, IntPtr View)> views, IReadOnlyList<TextWrite> writes)
        {
            _owner = owner;
            _views = views;
            _complete = true;
            int blob = 0;
            foreach (var w in writes)
                blob += w.Bytes.Length > 7 ? w.Bytes.Length : 0;
            nuint size = (nuint)(writes.Count * sizeof(Entry) + blob);
            _table = (Entry*)System.Runtime.InteropServices.NativeMemory.AlignedAlloc(size == 0 ? 64 : size, 64);
            byte* out_ = (byte*)(_table + writes.Count);
            int used = 0;
            foreach (var w in writes)
            {
                var bytes = w.Bytes.Span;
                if (bytes.IsEmpty)
                    continue;
                byte* destination = null;
                foreach (var (start, length, view) in views)
                {
                    if (w.Address >= start && w.Address - start <= length - (ulong)bytes.Length)
                    {
                        destination = (byte*)view + (w.Address - start);
                        break;
                    }
                }
                if (destination == null)
                {
                    _complete = false; // outside every view: not written (WriteAll says so)
                    continue;
                }
                ref var e = ref _table[_count++];
                e.Destination = destination;
                if (bytes.Length <= 7)
                {
                    ulong inline = (ulong)bytes.Length;
                    for (int i = 0; i < bytes.Length; i++)
                        inline |= (ulong)bytes[i] << (8 * (i + 1));
                    e.Bytes = inline;
                }
                else
                {
                    int offset = (int)((byte*)out_ - (byte*)_table) + used;
                    bytes.CopyTo(new Span<byte>(out_ + used, bytes.Length));
                    used += bytes.Length;
                    e.Bytes = ((ulong)(uint)offset << 8) | ((ulong)bytes.Length << 40);
                }
            }
        }

        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        public void Warm()
        {
            // The table and every line the writes land on, read through the writable view: the pause then
            // finds them in this CPU's caches and their pages in its TLB.
            ulong sum = 0;
            for (Entry* e = _table, end = _table + _count; e < end; e++)
                sum += e->Bytes + Volatile.Read(ref *e->Destination);
            _warmed = sum;
        }

        private ulong _warmed;

        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        public bool WriteAll()
        {
            Entry* e = _table, end = _table + _count;
            for (; e < end; e++)
            {
                ulong b = e->Bytes;
                int n = (int)(b & 0xff);
                byte* d = e->Destination;
                if (n != 0)
                {
                    // At most two stores (overlapping ones write the same bytes twice): a jump is 4 + 4.
                    ulong bytes = b >> 8;
                    if (n >= 4)
                    {
                        Unsafe.WriteUnaligned(d, (uint)bytes);
                        Unsafe.WriteUnaligned(d + n - 4, (uint)(bytes >> (8 * (n - 4))));
                    }
                    else if (n >= 2)
                    {
                        Unsafe.WriteUnaligned(d, (ushort)bytes);
                        Unsafe.WriteUnaligned(d + n - 2, (ushort)(bytes >> (8 * (n - 2))));
                    }
                    else
                    {
                        *d = (byte)bytes;
                    }
                }
                else
                {
                    byte* source = (byte*)_table + ((b >> 8) & 0xffffffff);
                    int length = (int)(b >> 40);
                    for (int i = 0; i < length; i++)
                        d[i] = source[i];
                }
            }
            return _complete;
        }

        public void Dispose()
        {
            lock (_owner._lock)
            {
                if (ReferenceEquals(_owner._patchViews, _views))
                    _owner._patchViews = [];
            }
            foreach (var (_, length, view) in _views)
                Native.munmap(view, (nuint)length);
            System.Runtime.InteropServices.NativeMemory.AlignedFree(_table);
        }
    }

    /// <inheritdoc/>
    public bool WriteText(ulong address, ReadOnlySpan<byte> bytes)
    {
        if (_patching == PatchingMode.MprotectMembarrier)
            return WriteTextNaively(address, bytes);
        // Runs while the CPUs are stopped: no lock, no allocation, no system call.
        foreach (var (start, length, view) in _patchViews)
        {
            if (address >= start && address - start <= length - (ulong)bytes.Length)
            {
                bytes.CopyTo(new Span<byte>((byte*)view + (address - start), bytes.Length));
                return true;
            }
        }
        return false;
    }

    private bool WriteTextNaively(ulong address, ReadOnlySpan<byte> bytes)
    {
        ulong start = address & ~(Page - 1);
        ulong length = ((address + (ulong)bytes.Length + Page - 1) & ~(Page - 1)) - start;
        if (start < _base || start + length > _base + _size)
            return false;
        if (Native.mprotect((nint)start, (nuint)length, Native.PROT_READ | Native.PROT_WRITE) != 0)
            return false;
        bytes.CopyTo(new Span<byte>((byte*)address, bytes.Length));
        Native.mprotect((nint)start, (nuint)length, Native.PROT_READ | Native.PROT_EXEC);
        Native.syscall(Native.SYS_membarrier, Native.MEMBARRIER_CMD_PRIVATE_EXPEDITED_SYNC_CORE, 0, 0);
        return true;
    }

    /// <summary>A pointer to hypervisor data (the host reads the log and sets the hold gate through it).</summary>
    public IntPtr Pointer(ulong address) => (nint)address;

    /// <inheritdoc/>
    public void Dispose()
    {
        if (_disposed)
            return;
        _disposed = true;
        lock (_lock)
        {
            foreach (var a in _allocations)
            {
                if (a.Alias != IntPtr.Zero)
                    Native.munmap(a.Alias, (nuint)a.Bytes);
            }
            _allocations.Clear();
        }
        Native.munmap((nint)_base, (nuint)_size);
        Native.close(_fd);
    }
}
