using System.Runtime.InteropServices;

namespace XenLivepatch.Sandbox;

/// <summary>The libc calls the sandbox needs (memfd, mmap, chown, membarrier), source-generated.</summary>
internal static partial class Native
{
    public const int PROT_NONE = 0, PROT_READ = 1, PROT_WRITE = 2, PROT_EXEC = 4;
    public const int MAP_SHARED = 0x01, MAP_PRIVATE = 0x02, MAP_FIXED = 0x10, MAP_ANONYMOUS = 0x20, MAP_NORESERVE = 0x4000, MAP_POPULATE = 0x8000, MAP_FIXED_NOREPLACE = 0x100000;
    public const uint MFD_CLOEXEC = 1;
    public static readonly IntPtr MapFailed = new(-1);

    [LibraryImport("libc", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    public static partial int memfd_create(string name, uint flags);

    [LibraryImport("libc", SetLastError = true)]
    public static partial int ftruncate(int fd, long length);

    [LibraryImport("libc", SetLastError = true)]
    public static partial IntPtr mmap(IntPtr addr, nuint length, int prot, int flags, int fd, long offset);

    [LibraryImport("libc", SetLastError = true)]
    public static partial int munmap(IntPtr addr, nuint length);

    [LibraryImport("libc", SetLastError = true)]
    public static partial int mprotect(IntPtr addr, nuint length, int prot);

    [LibraryImport("libc", SetLastError = true)]
    public static partial int close(int fd);

    [LibraryImport("libc", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    public static partial int chown(string path, uint owner, uint group);

    [LibraryImport("libc", SetLastError = true)]
    public static partial long syscall(long number, long a1, long a2, long a3);

    public const long SYS_membarrier = 324;
    public const int MEMBARRIER_CMD_QUERY = 0;
    public const int MEMBARRIER_CMD_PRIVATE_EXPEDITED_SYNC_CORE = 1 << 5;
    public const int MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED_SYNC_CORE = 1 << 6;

    [LibraryImport("libc", EntryPoint = "lstat", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static unsafe partial int lstat(string path, byte* buffer);

    /// <summary>True when <paramref name="path"/> is a Unix socket (lstat's st_mode).</summary>
    public static unsafe bool IsSocket(string path)
    {
        byte* st = stackalloc byte[256];
        if (lstat(path, st) != 0)
            return false;
        // struct stat: st_mode is at offset 24 on x86-64 and 16 on arm64.
        int at = RuntimeInformation.ProcessArchitecture == Architecture.X64 ? 24 : 16;
        uint mode = *(uint*)(st + at);
        return (mode & 0xF000) == 0xC000; // S_IFSOCK
    }

    public static string LastError() => Marshal.GetLastPInvokeErrorMessage();
}
