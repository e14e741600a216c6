using System.Runtime.InteropServices;
using System.Runtime.Versioning;
using XenLivepatch.Abi;
using XenLivepatch.Interop;

namespace XenLivepatch.Control;

/// <summary>
/// Real Xen, from its control domain: each sysctl is an IOCTL_PRIVCMD_HYPERCALL on <c>/dev/xen/privcmd</c>
/// (<c>__HYPERVISOR_sysctl</c> with the structure's address), as libxencall does. The structure and the caller
/// buffers are copied into hypercall-safe memory first: pages of <c>/dev/xen/hypercall</c> when the kernel has it
/// (Linux 4.18+), else locked anonymous pages (mmap + mlock). Each buffer is followed by an inaccessible page, so a
/// hypervisor writing past a buffer (Xen 4.17's LIST trusts its own sizes) faults with -EFAULT instead of
/// corrupting memory. The guest handles in the structure are moved to the copies and back.
/// </summary>
[SupportedOSPlatform("linux")]
public sealed class PrivcmdTransport : ISysctlTransport
{
    /// <summary>The privcmd device.</summary>
    public const string PrivcmdPath = "/dev/xen/privcmd";

    /// <summary>The hypercall buffer device (Linux 4.18+).</summary>
    public const string HypercallBufferPath = "/dev/xen/hypercall";

    /// <summary>
    /// IOCTL_PRIVCMD_HYPERCALL (Linux include/uapi/xen/privcmd.h): <c>_IOC(_IOC_NONE, 'P', 0, sizeof(privcmd_hypercall_t))</c>,
    /// the struct being <c>{ __u64 op; __u64 arg[5]; }</c>, 48 bytes.
    /// </summary>
    private const nuint IOCTL_PRIVCMD_HYPERCALL = (48u << 16) | ((nuint)'P' << 8) | 0;

    /// <summary><c>__HYPERVISOR_sysctl</c> (xen/include/public/xen.h).</summary>
    private const ulong HYPERVISOR_sysctl = 35;

    /// <summary><c>__HYPERVISOR_xen_version</c> (xen/include/public/xen.h).</summary>
    private const ulong HYPERVISOR_xen_version = 17;

    [StructLayout(LayoutKind.Sequential)]
    private struct privcmd_hypercall
    {
        public ulong op;
        public ulong arg0, arg1, arg2, arg3, arg4;
    }

    private const int Page = 4096;
    private readonly Lock _lock = new();
    private readonly SafeFileDescriptor _privcmd;
    // /dev/xen/hypercall; invalid when the kernel lacks it.
    private readonly SafeFileDescriptor _bufferDevice;

    private PrivcmdTransport(SafeFileDescriptor privcmd, SafeFileDescriptor bufferDevice)
    {
        _privcmd = privcmd;
        _bufferDevice = bufferDevice;
        Abi = LivepatchAbi.Xen417;
    }

    /// <inheritdoc/>
    public string Description => $"Xen through {PrivcmdPath}";

    /// <inheritdoc/>
    public LivepatchAbi Abi { get; private set; }

    /// <summary>True when hypercall buffers come from <c>/dev/xen/hypercall</c> (false: mmap + mlock).</summary>
    public bool UsesHypercallDevice => !_bufferDevice.IsInvalid;

    /// <summary>
    /// Opens <c>/dev/xen/privcmd</c> and probes the hypervisor's sysctl interface version (or uses
    /// <paramref name="abi"/>). Fails, saying what to do, outside a Xen control domain.
    /// </summary>
    public static Task<TransportOpenResult> OpenAsync(LivepatchAbi? abi = null, CancellationToken cancellationToken = default)
    {
        if (!File.Exists(PrivcmdPath))
        {
            return Task.FromResult(TransportOpenResult.Failed($"{PrivcmdPath} is absent: this is not a Xen domain, or the xen-privcmd driver is not loaded",
                "run in Xen's control domain (dom0) as root (modprobe xen-privcmd if needed), or use the sandbox hypervisor ('xen-livepatch sandbox')"));
        }
        var privcmd = SafeFileDescriptor.Open(PrivcmdPath, LibC.O_RDWR | LibC.O_CLOEXEC);
        if (privcmd.IsInvalid)
        {
            int e = LibC.Errno;
            string advice = e is LibC.EACCES or LibC.EPERM ? "run as root in Xen's control domain (dom0)" : "check that the xen-privcmd driver works (dmesg)";
            return Task.FromResult(TransportOpenResult.Failed($"cannot open {PrivcmdPath}: {LibC.StrError(e)}", advice));
        }
        var buffers = SafeFileDescriptor.Open(HypercallBufferPath, LibC.O_RDWR | LibC.O_CLOEXEC);
        var transport = new PrivcmdTransport(privcmd, buffers);
        return Finish(transport, abi, cancellationToken);
    }

    private static Task<TransportOpenResult> Finish(PrivcmdTransport transport, LivepatchAbi? abi, CancellationToken cancellationToken) =>
        InterfaceProbe.OpenAsync(transport, abi, static (t, a) => t.Abi = a,
            "check that this is Xen's control domain and that the xen-privcmd driver works (dmesg)", null, cancellationToken);

    /// <inheritdoc/>
    public ValueTask<int> CallAsync(byte[] sysctl, IReadOnlyList<WireBuffer> buffers, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(sysctl);
        ArgumentNullException.ThrowIfNull(buffers);
        if (sysctl.Length != XenSysctl.SizeOf)
            throw new ArgumentException($"a xen_sysctl is {XenSysctl.SizeOf} bytes, not {sysctl.Length}", nameof(sysctl));
        cancellationToken.ThrowIfCancellationRequested();
        lock (_lock)
            return ValueTask.FromResult(Call(sysctl, buffers));
    }

    /// <summary>
    /// <c>HYPERVISOR_xen_version(cmd, arg)</c> through IOCTL_PRIVCMD_HYPERCALL, as libxencall makes it (xc_version):
    /// the argument buffer is copied into hypercall-safe memory, followed by a guard page.
    /// </summary>
    public ValueTask<int> XenVersionAsync(int cmd, WireBuffer? arg, CancellationToken cancellationToken = default)
    {
        cancellationToken.ThrowIfCancellationRequested();
        lock (_lock)
            return ValueTask.FromResult(XenVersion(cmd, arg));
    }

    private unsafe int XenVersion(int cmd, WireBuffer? arg)
    {
        ObjectDisposedException.ThrowIf(_privcmd.IsClosed, this);
        IReadOnlyList<WireBuffer> buffers = arg == null ? [] : [arg];
        var pages = buffers.Select(b => Pages(b.Data.Length)).ToArray();
        if (_region == null || !pages.AsSpan().SequenceEqual(_regionPages))
        {
            ReleaseRegion();
            MapRegion(pages);
        }
        ulong placed = 0;
        if (arg != null && arg.Data.Length > 0)
        {
            placed = (ulong)(_region!.Address + (nint)_regionOffsets[0]);
            var bytes = new Span<byte>((void*)placed, arg.Data.Length);
            if (arg.In)
                arg.Data.CopyTo(bytes);
            else
                bytes.Clear();
        }
        int rc = Hypercall(HYPERVISOR_xen_version, unchecked((ulong)cmd), placed);
        if (arg != null && arg.Out && placed != 0)
            new ReadOnlySpan<byte>((void*)placed, arg.Data.Length).CopyTo(arg.Data);
        return rc;
    }

    // One hypercall; privcmd passes Xen's negative result through as errno.
    private unsafe int Hypercall(ulong op, ulong arg0, ulong arg1)
    {
        var hypercall = new privcmd_hypercall { op = op, arg0 = arg0, arg1 = arg1 };
        int rc;
        do
        {
            rc = LibC.ioctl(_privcmd, IOCTL_PRIVCMD_HYPERCALL, &hypercall);
        }
        while (rc < 0 && LibC.Errno == LibC.EINTR);
        if (rc < 0)
        {
            int e = LibC.Errno;
            // ENOTTY would mean this is not privcmd.
            if (e == LibC.ENOTTY)
                throw new LivepatchTransportException($"{PrivcmdPath} does not take IOCTL_PRIVCMD_HYPERCALL (ENOTTY): is it Xen's privcmd device?");
            rc = -e;
        }
        return rc;
    }

    private unsafe int Call(byte[] sysctl, IReadOnlyList<WireBuffer> buffers)
    {
        ObjectDisposedException.ThrowIf(_privcmd.IsClosed, this);
        // Layout: [xen_sysctl][guard]([buffer][guard])*, every part page-aligned. The mapped pages of the last call
        // are reused when this call needs the same number of pages per buffer (GET, ACTION, GET of one action; the
        // size probe and LIST): mapping hypercall pages costs page-table hypercalls in a PV dom0.
        var pages = new long[buffers.Count];
        for (int i = 0; i < buffers.Count; i++)
            pages[i] = Pages(buffers[i].Data.Length);
        if (_region == null || !pages.AsSpan().SequenceEqual(_regionPages))
        {
            ReleaseRegion();
            MapRegion(pages);
        }
        nint region = _region!.Address;
        nint sysctlPage = region;
        var placed = new ulong[buffers.Count];
        for (int i = 0; i < buffers.Count; i++)
        {
            int length = buffers[i].Data.Length;
            placed[i] = (ulong)(region + (nint)_regionOffsets[i]);
            if (length == 0)
                continue;
            var bytes = new Span<byte>((void*)placed[i], length);
            if (buffers[i].In)
                buffers[i].Data.CopyTo(bytes);
            else
                bytes.Clear();
        }
        var layout = Abi.Layout;
        byte[] moved = SysctlHandles.MapSysctl(sysctl, layout, SysctlHandles.Forward(buffers, placed));
        moved.CopyTo(new Span<byte>((void*)sysctlPage, XenSysctl.SizeOf));

        int rc = Hypercall(HYPERVISOR_sysctl, (ulong)sysctlPage, 0);

        // Back: the structure as the hypervisor left it, with the caller's handles; the buffers it wrote.
        var back = new ReadOnlySpan<byte>((void*)sysctlPage, XenSysctl.SizeOf).ToArray();
        SysctlHandles.RestoreSysctl(back, sysctl, layout).CopyTo(sysctl, 0);
        for (int i = 0; i < buffers.Count; i++)
        {
            if (buffers[i].Out && buffers[i].Data.Length > 0)
                new ReadOnlySpan<byte>((void*)placed[i], buffers[i].Data.Length).CopyTo(buffers[i].Data);
        }
        return rc;
    }

    // The hypercall pages of the last call, kept for the next (see Call).
    private SafeMapping? _region;
    private long[] _regionPages = [];
    private long[] _regionOffsets = [];

    private void MapRegion(long[] pages)
    {
        var offsets = new long[pages.Length];
        long size = 2L * Page;
        for (int i = 0; i < pages.Length; i++)
        {
            offsets[i] = size;
            size += pages[i] + (pages[i] == 0 ? 0 : Page);
        }
        var region = Reserve(size);
        try
        {
            Commit(region, 0, Page);
            for (int i = 0; i < pages.Length; i++)
            {
                if (pages[i] != 0)
                    Commit(region, offsets[i], pages[i]);
            }
        }
        catch
        {
            region.Dispose();
            throw;
        }
        _region = region;
        _regionPages = pages;
        _regionOffsets = offsets;
    }

    private void ReleaseRegion()
    {
        _region?.Dispose();
        _region = null;
    }

    private static long Pages(int length) => ((long)length + Page - 1) / Page * Page;

    // An inaccessible reservation: what is not committed stays a guard.
    private static SafeMapping Reserve(long size)
    {
        var region = SafeMapping.MapAnonymous((nuint)size, LibC.PROT_NONE, LibC.MAP_PRIVATE | LibC.MAP_NORESERVE);
        if (region.IsInvalid)
            throw new LivepatchTransportException($"cannot reserve {size} bytes for hypercall buffers: {LibC.LastError()}");
        return region;
    }

    // Hypercall-safe pages at region+offset, in place of the reservation's (MAP_FIXED): /dev/xen/hypercall pages, or
    // anonymous pages locked in memory. They stay part of the reservation, and go with it.
    private void Commit(SafeMapping region, long offset, long length)
    {
        nint at = region.Address + (nint)offset;
        nint got = UsesHypercallDevice
            ? LibC.mmap(at, (nuint)length, LibC.PROT_READ | LibC.PROT_WRITE, LibC.MAP_SHARED | LibC.MAP_FIXED, _bufferDevice, 0)
            : LibC.mmap(at, (nuint)length, LibC.PROT_READ | LibC.PROT_WRITE, LibC.MAP_PRIVATE | LibC.MAP_ANONYMOUS | LibC.MAP_FIXED, -1, 0);
        if (got == LibC.MAP_FAILED)
        {
            throw new LivepatchTransportException(
                $"cannot map {length} bytes of hypercall buffers from {(UsesHypercallDevice ? HypercallBufferPath : "anonymous memory")}: {LibC.LastError()}");
        }
        if (!UsesHypercallDevice)
        {
            // libxencall's fallback: the pages must stay resident (and out of a forked child) while Xen uses them.
            if (LibC.mlock(at, (nuint)length) != 0)
            {
                throw new LivepatchTransportException(
                    $"cannot lock {length} bytes of hypercall buffers in memory: {LibC.LastError()}; run as root (or raise RLIMIT_MEMLOCK)");
            }
            _ = LibC.madvise(at, (nuint)length, LibC.MADV_DONTFORK);
        }
    }

    /// <inheritdoc/>
    public ValueTask DisposeAsync()
    {
        lock (_lock)
        {
            ReleaseRegion();
            _privcmd.Dispose();
            _bufferDevice.Dispose();
        }
        return ValueTask.CompletedTask;
    }
}
