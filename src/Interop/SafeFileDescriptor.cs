using System.Runtime.InteropServices;

namespace XenLivepatch.Interop;

/// <summary>A file descriptor this process opened and closes once nobody uses it (-1: none).</summary>
internal sealed class SafeFileDescriptor : SafeHandle
{
    private SafeFileDescriptor(int fd)
        : base(-1, ownsHandle: true)
    {
        SetHandle(fd);
    }

    /// <summary><c>open</c> (an invalid descriptor, with <see cref="LibC.Errno"/> set, when it fails).</summary>
    public static SafeFileDescriptor Open(string path, int flags) => new(LibC.open(path, flags));

    /// <summary><c>memfd_create</c> (an invalid descriptor, with <see cref="LibC.Errno"/> set, when it fails).</summary>
    public static SafeFileDescriptor CreateMemfd(string name, uint flags) => new(LibC.memfd_create(name, flags));

    /// <inheritdoc/>
    public override bool IsInvalid => handle < 0;

    /// <inheritdoc/>
    protected override bool ReleaseHandle() => LibC.close((int)handle) == 0;
}
