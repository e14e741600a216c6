using XenLivepatch.Interop;

namespace XenLivepatch.Cli;

/// <summary>
/// Reads a payload as Xen's <c>upload_func</c> does: open, stat, mmap (private, read-only), so that each failure
/// gets the same message and errno ("Could not open %s.", "Could not get size of %s.", "Could not map %s."; an
/// empty file fails to map with EINVAL, a directory with ENODEV).
/// </summary>
internal static unsafe class PayloadFile
{
    public static bool TryRead(string path, out byte[] data, out string failedStep, out int errno)
    {
        data = [];
        using var fd = SafeFileDescriptor.Open(path, LibC.O_RDONLY | LibC.O_CLOEXEC);
        if (fd.IsInvalid)
        {
            errno = LibC.Errno;
            failedStep = "open";
            return false;
        }
        if (!LibC.TryGetSize(path, out long size))
        {
            errno = LibC.Errno;
            failedStep = "get size of";
            return false;
        }
        if (size > Array.MaxLength)
        {
            // Xen takes 2 MiB at most; a file this large cannot even be held (the C tool would map it).
            errno = LibC.EFBIG;
            failedStep = "map";
            return false;
        }
        using var map = SafeMapping.Map(0, (nuint)size, LibC.PROT_READ, LibC.MAP_PRIVATE, fd, 0);
        if (map.IsInvalid)
        {
            errno = LibC.Errno;
            failedStep = "map";
            return false;
        }
        data = new ReadOnlySpan<byte>((void*)map.Address, (int)size).ToArray();
        errno = 0;
        failedStep = "";
        return true;
    }
}
