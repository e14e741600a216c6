using System.Runtime.InteropServices;

namespace XenLivepatch.Interop;

/// <summary>
/// The libc calls of the project, source-generated (<c>LibraryImport</c>), with the C names and the Linux x86-64
/// and arm64 values of their constants. Descriptors and mappings that someone owns are <see cref="SafeFileDescriptor"/>
/// and <see cref="SafeMapping"/>; raw forms are for what is not owned (stdout, a page inside an owned mapping).
/// </summary>
/// <remarks>
/// A <see cref="SafeFileDescriptor"/> goes to an <c>int fd</c> parameter as a pointer-sized value, of which the
/// callee reads the low 32 bits (x86-64 and arm64 pass both in one register); it cannot come back as a return value
/// (an <c>int</c> -1 is not a pointer-sized -1), hence the <c>int</c> returns of <c>open</c> and <c>memfd_create</c>.
/// </remarks>
internal static unsafe partial class LibC
{
    public const int O_RDONLY = 0, O_RDWR = 2, O_CLOEXEC = 0x80000;
    public const int PROT_NONE = 0, PROT_READ = 1, PROT_WRITE = 2, PROT_EXEC = 4;
    public const int MAP_SHARED = 0x01, MAP_PRIVATE = 0x02, MAP_FIXED = 0x10, MAP_ANONYMOUS = 0x20, MAP_NORESERVE = 0x4000,
        MAP_POPULATE = 0x8000, MAP_FIXED_NOREPLACE = 0x100000;
    public const int MADV_DONTFORK = 10;
    public const uint MFD_CLOEXEC = 1;
    public const int EINTR = 4, EPERM = 1, EACCES = 13, ENOTTY = 25, EFBIG = 27, EINVAL = 22, ENOTSUP = 95;
    public static readonly nint MAP_FAILED = -1;

    /// <summary><c>membarrier(2)</c> has no libc wrapper: <c>syscall(SYS_membarrier, ...)</c>.</summary>
    public const long SYS_membarrier = 324;
    public const int MEMBARRIER_CMD_PRIVATE_EXPEDITED_SYNC_CORE = 1 << 5;
    public const int MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED_SYNC_CORE = 1 << 6;

    // struct stat is 144 bytes on x86-64 and 128 on arm64: a buffer for either. st_size is at offset 48 on both;
    // st_mode at 24 on x86-64 and 16 on arm64.
    private const int StatBufferSize = 256;
    private const int StatSizeOffset = 48;
    private const uint S_IFMT = 0xF000, S_IFSOCK = 0xC000;

    [LibraryImport("libc", EntryPoint = "open", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    public static partial int open(string path, int flags);

    /// <summary><c>execv(2)</c>: <paramref name="argv"/> is a NULL-terminated array of NUL-terminated byte strings.</summary>
    [LibraryImport("libc", EntryPoint = "execv", SetLastError = true)]
    public static partial int execv(byte* path, byte** argv);

    /// <summary><c>sendfile(2)</c>: copies inside the kernel, from <paramref name="inFd"/> at *<paramref name="offset"/>.</summary>
    [LibraryImport("libc", EntryPoint = "sendfile", SetLastError = true)]
    public static partial nint sendfile(int outFd, int inFd, long* offset, nuint count);

    /// <summary><c>setenv(3)</c>: the C library's environment, the one <c>execv</c> passes on (.NET keeps its own copy).</summary>
    [LibraryImport("libc", EntryPoint = "setenv", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    public static partial int setenv(string name, string value, int overwrite);

    [LibraryImport("libc", EntryPoint = "pread", SetLastError = true)]
    public static partial nint pread(SafeFileDescriptor fd, byte* buffer, nuint count, long offset);

    [LibraryImport("libc", EntryPoint = "close", SetLastError = true)]
    public static partial int close(int fd);

    [LibraryImport("libc", EntryPoint = "fsync", SetLastError = true)]
    public static partial int fsync(SafeFileDescriptor fd);

    [LibraryImport("libc", EntryPoint = "write", SetLastError = true)]
    public static partial nint write(int fd, byte* buffer, nuint count);

    [LibraryImport("libc", EntryPoint = "ioctl", SetLastError = true)]
    public static partial int ioctl(SafeFileDescriptor fd, nuint request, void* argument);

    [LibraryImport("libc", EntryPoint = "memfd_create", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    public static partial int memfd_create(string name, uint flags);

    [LibraryImport("libc", EntryPoint = "ftruncate", SetLastError = true)]
    public static partial int ftruncate(SafeFileDescriptor fd, long length);

    [LibraryImport("libc", EntryPoint = "mmap", SetLastError = true)]
    public static partial nint mmap(nint address, nuint length, int prot, int flags, SafeFileDescriptor fd, long offset);

    [LibraryImport("libc", EntryPoint = "mmap", SetLastError = true)]
    public static partial nint mmap(nint address, nuint length, int prot, int flags, int fd, long offset);

    [LibraryImport("libc", EntryPoint = "munmap", SetLastError = true)]
    public static partial int munmap(nint address, nuint length);

    [LibraryImport("libc", EntryPoint = "mprotect", SetLastError = true)]
    public static partial int mprotect(nint address, nuint length, int prot);

    [LibraryImport("libc", EntryPoint = "mlock", SetLastError = true)]
    public static partial int mlock(nint address, nuint length);

    [LibraryImport("libc", EntryPoint = "madvise", SetLastError = true)]
    public static partial int madvise(nint address, nuint length, int advice);

    [LibraryImport("libc", EntryPoint = "chown", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    public static partial int chown(string path, uint owner, uint group);

    [LibraryImport("libc", EntryPoint = "syscall", SetLastError = true)]
    public static partial long syscall(long number, long a1, long a2, long a3);

    [LibraryImport("libc", EntryPoint = "gettid")]
    public static partial int gettid();

    [LibraryImport("libc", EntryPoint = "clock_gettime")]
    private static partial int clock_gettime(int clock, long* timespec);

    [LibraryImport("libc", EntryPoint = "nanosleep")]
    private static partial int nanosleep(long* request, long* remaining);

    /// <summary>
    /// The clock of thread <paramref name="tid"/>'s CPU time (of this process), as <c>pthread_getcpuclockid</c> makes
    /// it: CPUCLOCK_SCHED | CPUCLOCK_PERTHREAD over the complemented tid. Reading it is a system call.
    /// </summary>
    public static int ThreadCpuClock(int tid) => (~tid << 3) | 6;

    /// <summary><c>clock_gettime(clock)</c> in nanoseconds; -1 when the clock is gone (its thread has exited).</summary>
    public static long ClockNs(int clock)
    {
        long* ts = stackalloc long[2];
        return clock_gettime(clock, ts) == 0 ? ts[0] * 1_000_000_000 + ts[1] : -1;
    }

    /// <summary><c>nanosleep</c> of <paramref name="ns"/> (below a second); a signal may end it early.</summary>
    public static void SleepNs(long ns)
    {
        long* ts = stackalloc long[2];
        ts[0] = 0;
        ts[1] = ns;
        _ = nanosleep(ts, null);
    }

    [LibraryImport("libc", EntryPoint = "stat", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int stat(string path, byte* buffer);

    [LibraryImport("libc", EntryPoint = "lstat", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int lstat(string path, byte* buffer);

    /// <summary><c>stat(path)</c>'s <c>st_size</c>; false (and <see cref="Errno"/>) when stat fails.</summary>
    public static bool TryGetSize(string path, out long size)
    {
        byte* st = stackalloc byte[StatBufferSize];
        size = 0;
        if (stat(path, st) != 0)
            return false;
        size = *(long*)(st + StatSizeOffset);
        return true;
    }

    /// <summary>True when <paramref name="path"/> itself (not what a link points to) is a Unix socket.</summary>
    public static bool IsSocket(string path)
    {
        byte* st = stackalloc byte[StatBufferSize];
        if (lstat(path, st) != 0)
            return false;
        int modeOffset = RuntimeInformation.ProcessArchitecture == Architecture.X64 ? 24 : 16;
        return (*(uint*)(st + modeOffset) & S_IFMT) == S_IFSOCK;
    }

    /// <summary>The errno of the last call above.</summary>
    public static int Errno => Marshal.GetLastPInvokeError();

    /// <summary>glibc's <c>strerror</c> text.</summary>
    public static string StrError(int errno) => Marshal.GetPInvokeErrorMessage(errno);

    /// <summary><c>strerror(errno)</c> of the last call above.</summary>
    public static string LastError() => Marshal.GetLastPInvokeErrorMessage();
}
