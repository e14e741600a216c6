using XenLivepatch.Interop;

namespace XenLivepatch.Sandbox;

/// <summary>
/// The sandbox's memory as the kernel holds it: one memfd, mapped whole at the image's link address (inaccessible
/// until given protections), and read+write views of parts of it mapped elsewhere. What a view writes, the
/// mapping at the link address shows: code is written through a view and executed from there.
/// </summary>
internal sealed class SandboxMapping : IDisposable
{
    private readonly SafeFileDescriptor _memfd;
    private readonly SafeMapping _region;

    /// <summary>Creates <paramref name="size"/> bytes of memory mapped at <paramref name="address"/>.</summary>
    public SandboxMapping(ulong address, ulong size)
    {
        Base = address;
        Size = size;
        _memfd = SafeFileDescriptor.CreateMemfd("xen-livepatch-sandbox", LibC.MFD_CLOEXEC);
        if (_memfd.IsInvalid)
            throw new IOException($"memfd_create failed: {LibC.LastError()}");
        if (LibC.ftruncate(_memfd, (long)size) != 0)
        {
            string why = LibC.LastError();
            _memfd.Dispose();
            throw new IOException($"ftruncate of the sandbox memory failed: {why}");
        }
        _region = SafeMapping.Map((nint)address, (nuint)size, LibC.PROT_NONE, LibC.MAP_SHARED | LibC.MAP_FIXED_NOREPLACE, _memfd, 0);
        if (_region.IsInvalid || (ulong)_region.Address != address)
        {
            string why = _region.IsInvalid ? LibC.LastError() : $"the kernel placed it at 0x{(ulong)_region.Address:x}";
            _region.Dispose();
            _memfd.Dispose();
            throw new IOException($"cannot map the sandbox image at its link address 0x{address:x}: {why}");
        }
    }

    /// <summary>The link address: where the memory is mapped.</summary>
    public ulong Base { get; }

    /// <summary>Its size in bytes.</summary>
    public ulong Size { get; }

    /// <summary>True when [address, address + length) lies inside the memory.</summary>
    public bool Contains(ulong address, ulong length) =>
        address >= Base && length <= Size && address - Base <= Size - length;

    /// <summary>
    /// A read+write view of [address, address + length) (page aligned, inside the memory); invalid, with
    /// <see cref="LibC.Errno"/> set, when mmap fails. <paramref name="populate"/> fills its page tables now.
    /// </summary>
    public SafeMapping MapView(ulong address, ulong length, bool populate = false) =>
        SafeMapping.Map(0, (nuint)length, LibC.PROT_READ | LibC.PROT_WRITE, LibC.MAP_SHARED | (populate ? LibC.MAP_POPULATE : 0), _memfd, (long)(address - Base));

    /// <summary>Gives [start, start + length) of the mapping at the link address the protection <paramref name="prot"/>.</summary>
    public void Protect(ulong start, ulong length, int prot)
    {
        if (length != 0 && LibC.mprotect((nint)start, (nuint)length, prot) != 0)
            throw new IOException($"mprotect(0x{start:x}, {length}) failed: {LibC.LastError()}");
    }

    /// <inheritdoc/>
    public void Dispose()
    {
        _region.Dispose();
        _memfd.Dispose();
    }
}
