using System.Runtime.CompilerServices;
using XenLivepatch.Elf;
using XenLivepatch.Hypervisor;
using XenLivepatch.Interop;

namespace XenLivepatch.Sandbox;

/// <summary>
/// The sandbox hypervisor's memory as the livepatch core sees it (<see cref="IHypervisorMemory"/>): the image mapped
/// at its link address with a 64 MiB payload window after it, all in one memfd (<see cref="SandboxMapping"/>). Text
/// is only ever mapped read+execute there; writes (loading a payload, patching) go through read+write views of the
/// same pages, mapped before and unmapped after: W^X holds. Payload memory comes from <see cref="PayloadAllocator"/>;
/// code is written the way <see cref="PatchingMode"/> chose, once, when the sandbox started.
/// </summary>
public sealed unsafe class SandboxMemory : IHypervisorMemory, IDisposable
{
    /// <summary>Room for payloads after the image.</summary>
    public const ulong WindowSize = 64UL << 20;

    private const ulong Page = PayloadAllocation.PageSize;
    private const ulong WindowAlignment = 2UL << 20;
    private readonly SandboxMapping _mapping;
    private readonly ReadableRanges _readable = new();
    private readonly PayloadAllocator _allocator;
    private readonly ITextPatching _patching;
    private bool _disposed;

    /// <summary>Maps <paramref name="image"/> at its link address; code will be written the <paramref name="patching"/> way.</summary>
    public SandboxMemory(SandboxImage image, PatchingMode patching = PatchingMode.DualMapping)
    {
        ArgumentNullException.ThrowIfNull(image);
        Image = image;
        WindowStart = (image.End + WindowAlignment - 1) & ~(WindowAlignment - 1);
        _mapping = new SandboxMapping(image.Start, WindowStart + WindowSize - image.Start);
        try
        {
            _patching = patching switch
            {
                PatchingMode.DualMapping => new DualMappingPatching(_mapping),
                PatchingMode.MprotectMembarrier => new MprotectMembarrierPatching(_mapping, this),
                _ => throw new ArgumentOutOfRangeException(nameof(patching), patching, "not a patching mode"),
            };
            LoadSegments(image);
        }
        catch
        {
            _mapping.Dispose();
            throw;
        }
        _allocator = new PayloadAllocator(_mapping, _readable, WindowStart, WindowSize);
        // What the core calls in the pause, compiled now rather than there by the first action. PrepareMethod
        // leaves interface methods alone: call them, where they write nothing (no page has a view, and address 0
        // is outside the sandbox).
        Read(image.Start, []);
        using (var none = _patching.Prepare([], []))
        {
            none.Warm();
            none.WriteAll();
            WriteText(0, [0]);
        }
    }

    // Copies the segments in through a writable view, then gives each its own protection.
    private void LoadSegments(SandboxImage image)
    {
        ulong imageSize = image.End - image.Start;
        using (var view = _mapping.MapView(image.Start, imageSize))
        {
            if (view.IsInvalid)
                throw new IOException($"cannot map the sandbox image for writing: {LibC.LastError()}");
            var data = image.File.Data.Span;
            foreach (var p in image.Segments)
            {
                if (p.FileSize > 0)
                    data.Slice((int)p.Offset, (int)p.FileSize).CopyTo(new Span<byte>((byte*)view.Address + (p.VirtualAddress - image.Start), (int)p.FileSize));
            }
        }
        foreach (var p in image.Segments)
        {
            ulong start = p.VirtualAddress & ~(Page - 1);
            ulong end = (p.VirtualAddress + p.MemorySize + Page - 1) & ~(Page - 1);
            int prot = LibC.PROT_READ | ((p.Flags & ElfSegmentFlags.Write) != 0 ? LibC.PROT_WRITE : 0) | ((p.Flags & ElfSegmentFlags.Execute) != 0 ? LibC.PROT_EXEC : 0);
            if ((prot & LibC.PROT_WRITE) != 0 && (prot & LibC.PROT_EXEC) != 0)
                throw new InvalidDataException("the sandbox image has a writable and executable segment");
            _mapping.Protect(start, end - start, prot);
            _readable.Add(start, end);
        }
    }

    /// <summary>The image.</summary>
    public SandboxImage Image { get; }

    /// <summary>Where payload memory starts.</summary>
    public ulong WindowStart { get; }

    /// <inheritdoc/>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public MemoryReadStatus Read(ulong address, Span<byte> destination)
    {
        ulong length = (ulong)destination.Length;
        if (length == 0)
            return MemoryReadStatus.Ok;
        if (_readable.Covers(address, length))
        {
            new ReadOnlySpan<byte>((byte*)address, destination.Length).CopyTo(destination);
            return MemoryReadStatus.Ok;
        }
        return _allocator.TryReadLoading(address, destination) ? MemoryReadStatus.Ok : MemoryReadStatus.Unmapped;
    }

    /// <inheritdoc/>
    public PayloadAllocation? Allocate(string payload, ulong textSize, ulong rwSize, ulong roSize, ulong pages) =>
        _allocator.Allocate(textSize, rwSize, roSize, pages);

    /// <inheritdoc/>
    public void Secure(PayloadAllocation allocation) => _allocator.Secure(allocation);

    /// <inheritdoc/>
    public void Free(PayloadAllocation allocation) => _allocator.Free(allocation);

    /// <inheritdoc/>
    public IPreparedPatching PreparePatching(IReadOnlyList<(ulong Address, int Length)> ranges, IReadOnlyList<TextWrite> writes)
    {
        var pages = new SortedSet<ulong>();
        foreach (var (address, length) in ranges)
        {
            for (ulong p = address & ~(Page - 1); p < address + (ulong)length; p += Page)
            {
                if (_mapping.Contains(p, Page))
                    pages.Add(p);
            }
        }
        // The core reads the old code (ENDBR64, the bytes to save) in the pause: fault those pages in now.
        foreach (ulong p in pages)
        {
            if (_readable.Covers(p, 1))
                _ = Volatile.Read(ref *(byte*)p);
        }
        return _patching.Prepare([.. pages], writes);
    }

    /// <inheritdoc/>
    public bool WriteText(ulong address, ReadOnlySpan<byte> bytes) => _patching.WriteText(address, bytes);

    /// <summary>
    /// A pointer to hypervisor data (the host reads the log and sets the hold gate through it): the image runs at
    /// its link address, so an address is its own pointer.
    /// </summary>
    public IntPtr Pointer(ulong address) => (nint)address;

    /// <inheritdoc/>
    public void Dispose()
    {
        if (_disposed)
            return;
        _disposed = true;
        _allocator.Dispose();
        _mapping.Dispose();
    }
}
