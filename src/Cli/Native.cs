using System.Runtime.InteropServices;

namespace XenLivepatch.Cli;

/// <summary>The libc calls the CLI makes to read a payload file the way Xen's tool does (open, stat, mmap).</summary>
internal static unsafe partial class Native
{
    public const int O_RDONLY = 0;
    public const int O_CLOEXEC = 0x80000;
    public const int PROT_READ = 1;
    public const int MAP_PRIVATE = 0x02;
    public static readonly nint MapFailed = -1;

    // struct stat is 144 bytes on x86-64 and 128 on arm64; st_size is at offset 48 on both.
    public const int StatSize = 256;
    public const int StatSizeOffset = 48;

    [LibraryImport("libc", EntryPoint = "open", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    public static partial int Open(string path, int flags);

    [LibraryImport("libc", EntryPoint = "close", SetLastError = true)]
    public static partial int Close(int fd);

    [LibraryImport("libc", EntryPoint = "stat", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    public static partial int Stat(string path, byte* buffer);

    [LibraryImport("libc", EntryPoint = "mmap", SetLastError = true)]
    public static partial nint Mmap(nint address, nuint length, int prot, int flags, int fd, long offset);

    [LibraryImport("libc", EntryPoint = "munmap", SetLastError = true)]
    public static partial int Munmap(nint address, nuint length);

    public static int Errno => Marshal.GetLastPInvokeError();

    /// <summary>glibc's <c>strerror</c> text, as Xen's tool prints it.</summary>
    public static string StrError(int errno) => Marshal.GetPInvokeErrorMessage(errno);
}

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
        failedStep = "";
        int fd = Native.Open(path, Native.O_RDONLY | Native.O_CLOEXEC);
        if (fd < 0)
        {
            errno = Native.Errno;
            failedStep = "open";
            return false;
        }
        try
        {
            byte* st = stackalloc byte[Native.StatSize];
            if (Native.Stat(path, st) != 0)
            {
                errno = Native.Errno;
                failedStep = "get size of";
                return false;
            }
            long size = *(long*)(st + Native.StatSizeOffset);
            if (size > Array.MaxLength)
            {
                // Xen takes 2 MiB at most; a file this large cannot even be held (the C tool would map it).
                errno = 27; // EFBIG
                failedStep = "map";
                return false;
            }
            nint map = Native.Mmap(0, (nuint)size, Native.PROT_READ, Native.MAP_PRIVATE, fd, 0);
            if (map == Native.MapFailed)
            {
                errno = Native.Errno;
                failedStep = "map";
                return false;
            }
            data = new ReadOnlySpan<byte>((void*)map, (int)size).ToArray();
            _ = Native.Munmap(map, (nuint)size);
            errno = 0;
            return true;
        }
        finally
        {
            _ = Native.Close(fd);
        }
    }
}
