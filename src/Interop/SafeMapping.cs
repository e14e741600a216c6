using System.Runtime.InteropServices;

namespace XenLivepatch.Interop;

/// <summary>
/// A range this process mapped with <c>mmap</c>, unmapped once nobody uses it. Code that must not pay for the
/// reference count on each access (the sandbox's pause) takes <see cref="SafeHandle.DangerousAddRef"/> before and
/// <see cref="SafeHandle.DangerousRelease"/> after, and uses <see cref="Address"/> in between.
/// </summary>
internal sealed class SafeMapping : SafeHandle
{
    private SafeMapping(nint address, nuint length)
        : base(LibC.MAP_FAILED, ownsHandle: true)
    {
        SetHandle(address);
        Length = length;
    }

    /// <summary>The mapping's length in bytes.</summary>
    public nuint Length { get; }

    /// <summary>The mapping's first byte (valid while a reference is held or the mapping is not disposed).</summary>
    public nint Address => handle;

    /// <inheritdoc/>
    public override bool IsInvalid => handle == LibC.MAP_FAILED;

    /// <summary>
    /// <c>mmap</c> of <paramref name="fd"/> (an invalid mapping, with <see cref="LibC.Errno"/> set, when it fails).
    /// </summary>
    public static SafeMapping Map(nint address, nuint length, int prot, int flags, SafeFileDescriptor fd, long offset) =>
        new(LibC.mmap(address, length, prot, flags, fd, offset), length);

    /// <summary>Anonymous <c>mmap</c> (an invalid mapping, with <see cref="LibC.Errno"/> set, when it fails).</summary>
    public static SafeMapping MapAnonymous(nuint length, int prot, int flags) =>
        new(LibC.mmap(0, length, prot, flags | LibC.MAP_ANONYMOUS, -1, 0), length);

    /// <inheritdoc/>
    protected override bool ReleaseHandle() => LibC.munmap(handle, Length) == 0;
}
