using System.Runtime.InteropServices;

namespace XenLivepatch.Control;

/// <summary>The libc calls the privcmd transport makes (source-generated P/Invoke; Linux x86-64 and arm64 values).</summary>
internal static unsafe partial class PrivcmdNative
{
    public const int O_RDWR = 2;
    public const int O_CLOEXEC = 0x80000;
    public const int PROT_NONE = 0, PROT_READ = 1, PROT_WRITE = 2;
    public const int MAP_SHARED = 0x01, MAP_PRIVATE = 0x02, MAP_FIXED = 0x10, MAP_ANONYMOUS = 0x20, MAP_NORESERVE = 0x4000;
    public const int MADV_DONTFORK = 10;
    public const int EINTR = 4;
    public static readonly nint MapFailed = -1;

    /// <summary>
    /// IOCTL_PRIVCMD_HYPERCALL (Linux include/uapi/xen/privcmd.h): <c>_IOC(_IOC_NONE, 'P', 0, sizeof(privcmd_hypercall_t))</c>,
    /// the struct being <c>{ __u64 op; __u64 arg[5]; }</c>, 48 bytes.
    /// </summary>
    public const nuint IOCTL_PRIVCMD_HYPERCALL = (48u << 16) | ((nuint)'P' << 8) | 0;

    /// <summary><c>__HYPERVISOR_sysctl</c> (xen/include/public/xen.h).</summary>
    public const ulong HYPERVISOR_sysctl = 35;

    /// <summary><c>__HYPERVISOR_xen_version</c> (xen/include/public/xen.h).</summary>
    public const ulong HYPERVISOR_xen_version = 17;

    [StructLayout(LayoutKind.Sequential)]
    public struct PrivcmdHypercall
    {
        public ulong Op;
        public ulong Arg0, Arg1, Arg2, Arg3, Arg4;
    }

    [LibraryImport("libc", EntryPoint = "open", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    public static partial int Open(string path, int flags);

    [LibraryImport("libc", EntryPoint = "close", SetLastError = true)]
    public static partial int Close(int fd);

    [LibraryImport("libc", EntryPoint = "ioctl", SetLastError = true)]
    public static partial int Ioctl(int fd, nuint request, PrivcmdHypercall* arg);

    [LibraryImport("libc", EntryPoint = "mmap", SetLastError = true)]
    public static partial nint Mmap(nint address, nuint length, int prot, int flags, int fd, long offset);

    [LibraryImport("libc", EntryPoint = "munmap", SetLastError = true)]
    public static partial int Munmap(nint address, nuint length);

    [LibraryImport("libc", EntryPoint = "mlock", SetLastError = true)]
    public static partial int Mlock(nint address, nuint length);

    [LibraryImport("libc", EntryPoint = "madvise", SetLastError = true)]
    public static partial int Madvise(nint address, nuint length, int advice);

    public static int Errno => Marshal.GetLastPInvokeError();

    public static string Describe(int errno) => Marshal.GetPInvokeErrorMessage(errno);
}
