using System.Diagnostics.CodeAnalysis;
using XenLivepatch.Elf;

namespace XenLivepatch.Hypervisor;

/// <summary>
/// A hypervisor that is not running: its symbols, its build-id and, when built from an image, its bytes.
/// Payload memory is plain arrays at addresses in a window after the image, as <c>vmalloc_xen</c> places
/// them after <c>__2M_rwdata_end</c> on x86 (1 GiB of room) or from <c>LIVEPATCH_VMAP_START</c> on arm64
/// (<see cref="Arm64Arch.PayloadAreaReach"/>). This is the target of <c>xen-livepatch check</c> and of the tests.
/// </summary>
public sealed class OfflineHypervisor : IHypervisorSymbols, IHypervisorMemory
{
    private readonly List<(ulong Address, ulong Size, Memory<byte> Bytes)> _image = [];
    private readonly AddressRanges<PayloadAllocation> _allocations;
    private readonly ulong _windowEnd;
    private readonly ulong _next;
    private readonly bool _vmapPages;

    private OfflineHypervisor(ElfMachine machine, HypervisorSymbolTable symbols, ReadOnlyMemory<byte> buildId, bool hasBytes, ulong imageEnd, ulong? windowStart)
    {
        Machine = machine;
        Symbols = symbols;
        BuildId = buildId;
        HasCodeBytes = hasBytes;
        const ulong twoMiB = 2 * 1024 * 1024;
        if (machine == ElfMachine.AArch64)
        {
            // Xen 4.17's arm64 layout: the payload area follows the image at a fixed address; its allocator's
            // bitmap and guard pages are modelled (Allocate).
            _next = windowStart ?? (imageEnd <= Arm64Arch.PayloadAreaStart ? Arm64Arch.PayloadAreaStart : (imageEnd + twoMiB - 1) & ~(twoMiB - 1));
            _windowEnd = _next + Arm64Arch.PayloadAreaReach;
            _vmapPages = true;
        }
        else
        {
            _next = windowStart ?? (imageEnd + twoMiB - 1) & ~(twoMiB - 1);
            _windowEnd = _next + (1UL << 30);
        }
        WindowStart = _next;
        // vm_alloc leaves the bitmap's page and a guard page before each allocation: a free run of one page is no room.
        _allocations = _vmapPages ? new(_next + PayloadAllocation.PageSize, PayloadAllocation.PageSize) : new(_next, 0);
    }

    /// <summary>The hypervisor's architecture.</summary>
    public ElfMachine Machine { get; }

    /// <summary>The symbol table.</summary>
    public HypervisorSymbolTable Symbols { get; }

    /// <inheritdoc/>
    public ReadOnlyMemory<byte> BuildId { get; }

    /// <summary>True when the target has the hypervisor's bytes (an image), so expectations can be checked.</summary>
    public bool HasCodeBytes { get; }

    /// <summary>Where payload memory starts.</summary>
    public ulong WindowStart { get; }

    /// <inheritdoc/>
    public ulong TextStart => Symbols.TextStart;

    /// <inheritdoc/>
    public ulong TextEnd => Symbols.TextEnd;

    /// <summary>
    /// The most memory one payload may take here (16 MiB). Payload files are at most 2 MiB, but an
    /// SHT_NOBITS section can ask for more; an offline check refuses those with -ENOMEM.
    /// </summary>
    public const ulong MaxPayloadMemory = 16 * 1024 * 1024;

    /// <summary>The payload blocks allocated and not freed.</summary>
    public IReadOnlyList<PayloadAllocation> Allocations => _allocations.Values;

    /// <summary>
    /// A target from an ELF image with a symbol table (xen-syms or the sandbox image): symbols, build-id
    /// (its GNU build-id note) and the bytes of its allocated sections.
    /// </summary>
    public static bool TryFromImage(ElfFile image, [NotNullWhen(true)] out OfflineHypervisor? target, [NotNullWhen(false)] out string? error, ulong? windowStart = null)
    {
        target = null;
        if (!HypervisorSymbolTable.TryFromImage(image, out var symbols, out error))
            return false;
        if (!image.TryGetGnuBuildId(out var buildId, out var noteError) && noteError != null)
        {
            error = noteError.ToString();
            return false;
        }
        ulong end = 0;
        var t = new List<(ulong, ulong, Memory<byte>)>();
        for (int i = 1; i < image.SectionCount; i++)
        {
            var sh = image.SectionHeaders[i];
            if ((sh.Flags & ElfSectionFlags.Alloc) == 0 || sh.Size == 0)
                continue;
            if (!image.TryGetSectionData(i, out var data, out var e))
            {
                error = e.ToString();
                return false;
            }
            // A private copy: applying payloads offline patches it.
            t.Add((sh.Address, sh.Size, sh.Type == ElfSectionType.NoBits ? new byte[sh.Size] : data.ToArray()));
            end = Math.Max(end, sh.Address + sh.Size);
        }
        target = new OfflineHypervisor(image.Header.Machine, symbols, buildId.ToArray(), hasBytes: true, end, windowStart);
        target._image.AddRange(t);
        return true;
    }

    /// <summary>A target from a <c>/proc/xen/xensyms</c> listing and a build-id: symbols only, no code bytes.</summary>
    public static bool TryFromXenSyms(string listing, ReadOnlyMemory<byte> buildId, ElfMachine machine, [NotNullWhen(true)] out OfflineHypervisor? target, [NotNullWhen(false)] out string? error, ulong? windowStart = null)
    {
        target = null;
        if (!HypervisorSymbolTable.TryFromXenSyms(listing, out var symbols, out error))
            return false;
        ulong end = symbols.Symbols.Count == 0 ? 0 : symbols.Symbols[^1].Address + 1;
        target = new OfflineHypervisor(machine, symbols, buildId, hasBytes: false, end, windowStart);
        return true;
    }

    /// <inheritdoc/>
    public bool TryLookup(string name, out ulong address)
    {
        bool found = Symbols.TryGet(name, out var s);
        address = found ? s.Address : 0;
        return found;
    }

    /// <inheritdoc/>
    public MemoryReadStatus Read(ulong address, Span<byte> destination)
    {
        ulong length = (ulong)destination.Length;
        if (_allocations.TryFindAtOrBelow(address, out var a) && a.Contains(address, length))
        {
            a.Slice(address, destination.Length).CopyTo(destination);
            return MemoryReadStatus.Ok;
        }
        foreach (var (start, size, bytes) in _image)
        {
            if (address >= start && length <= size && address - start <= size - length)
            {
                bytes.Span.Slice((int)(address - start), destination.Length).CopyTo(destination);
                return MemoryReadStatus.Ok;
            }
        }
        if (HasCodeBytes || !IsCanonical(address) || !IsCanonical(address + length - 1))
            return MemoryReadStatus.Unmapped;
        return MemoryReadStatus.Unknown;
    }

    private bool IsCanonical(ulong address) => Machine != ElfMachine.X86_64 || (long)address >> 47 is 0 or -1;

    /// <inheritdoc/>
    public PayloadAllocation? Allocate(string payload, ulong textSize, ulong rwSize, ulong roSize, ulong pages)
    {
        if (pages > MaxPayloadMemory / PayloadAllocation.PageSize)
            return null;
        ulong bytes = pages * PayloadAllocation.PageSize;
        ulong at = _vmapPages ? VmapFirstFit(bytes) : FirstFit(bytes);
        if (at == 0 || at + bytes > _windowEnd)
            return null;
        var allocation = new PayloadAllocation(at, new byte[bytes], textSize, rwSize, roSize);
        _allocations.Add(at, at + bytes, allocation);
        return allocation;
    }

    // First fit in the window, reusing what unloaded payloads freed.
    private ulong FirstFit(ulong bytes)
    {
        foreach (var (from, to) in _allocations.FreeRuns())
        {
            if (to - from >= bytes)
                return from;
        }
        throw new InvalidOperationException("the run after the last allocation is open-ended");
    }

    // Xen's vm_alloc (common/vmap.c): the area's first page is the allocator's bitmap; an allocation goes in the
    // first free run where it fits after one free page (a guard), and before the next allocation it leaves at
    // least one more free page; the last run ends at the area's end. 0 when nothing fits.
    private ulong VmapFirstFit(ulong bytes)
    {
        const ulong page = PayloadAllocation.PageSize;
        foreach (var (free, next) in _allocations.FreeRuns())
        {
            if (next == ulong.MaxValue)
                return free + page + bytes <= _windowEnd ? free + page : 0;
            if (free + page + bytes < next)
                return free + page;
        }
        throw new InvalidOperationException("the run after the last allocation is open-ended");
    }

    /// <inheritdoc/>
    public void Free(PayloadAllocation allocation) => _allocations.Remove(allocation.BaseAddress, allocation);

    /// <inheritdoc/>
    public void Secure(PayloadAllocation allocation) { }

    /// <inheritdoc/>
    public bool WriteText(ulong address, ReadOnlySpan<byte> bytes)
    {
        ulong length = (ulong)bytes.Length;
        if (_allocations.TryFindAtOrBelow(address, out var a) && a.Contains(address, length))
        {
            bytes.CopyTo(a.Slice(address, bytes.Length));
            return true;
        }
        foreach (var (start, size, image) in _image)
        {
            if (address >= start && length <= size && address - start <= size - length)
            {
                bytes.CopyTo(image.Span[(int)(address - start)..]);
                return true;
            }
        }
        // A symbols-only target has no bytes to patch; the patch is accepted and not recorded.
        return !HasCodeBytes && IsCanonical(address);
    }

    /// <inheritdoc/>
    public IPreparedPatching PreparePatching(IReadOnlyList<(ulong Address, int Length)> ranges, IReadOnlyList<TextWrite> writes) =>
        new SequentialWrites(this, writes);
}
