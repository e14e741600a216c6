using System.Runtime.Versioning;
using XenLivepatch.Abi;

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

    private const int Page = 4096;
    private readonly Lock _lock = new();
    private int _privcmd;
    private readonly int _bufferDevice;

    private PrivcmdTransport(int privcmd, int bufferDevice)
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
    public bool UsesHypercallDevice => _bufferDevice >= 0;

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
        int fd = PrivcmdNative.Open(PrivcmdPath, PrivcmdNative.O_RDWR | PrivcmdNative.O_CLOEXEC);
        if (fd < 0)
        {
            int e = PrivcmdNative.Errno;
            string advice = e is 13 or 1 ? "run as root in Xen's control domain (dom0)" : "check that the xen-privcmd driver works (dmesg)";
            return Task.FromResult(TransportOpenResult.Failed($"cannot open {PrivcmdPath}: {PrivcmdNative.Describe(e)}", advice));
        }
        int buffers = PrivcmdNative.Open(HypercallBufferPath, PrivcmdNative.O_RDWR | PrivcmdNative.O_CLOEXEC);
        var transport = new PrivcmdTransport(fd, buffers);
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
        ObjectDisposedException.ThrowIf(_privcmd < 0, this);
        IReadOnlyList<WireBuffer> buffers = arg == null ? [] : [arg];
        var pages = buffers.Select(b => Pages(b.Data.Length)).ToArray();
        if (_region == 0 || !pages.AsSpan().SequenceEqual(_regionPages))
        {
            ReleaseRegion();
            MapRegion(pages);
        }
        ulong placed = 0;
        if (arg != null && arg.Data.Length > 0)
        {
            placed = (ulong)(_region + (nint)_regionOffsets[0]);
            var bytes = new Span<byte>((void*)placed, arg.Data.Length);
            if (arg.In)
                arg.Data.CopyTo(bytes);
            else
                bytes.Clear();
        }
        int rc = Hypercall(PrivcmdNative.HYPERVISOR_xen_version, unchecked((ulong)cmd), placed);
        if (arg != null && arg.Out && placed != 0)
            new ReadOnlySpan<byte>((void*)placed, arg.Data.Length).CopyTo(arg.Data);
        return rc;
    }

    // One hypercall; privcmd passes Xen's negative result through as errno.
    private unsafe int Hypercall(ulong op, ulong arg0, ulong arg1)
    {
        var hypercall = new PrivcmdNative.PrivcmdHypercall { Op = op, Arg0 = arg0, Arg1 = arg1 };
        int rc;
        do
        {
            rc = PrivcmdNative.Ioctl(_privcmd, PrivcmdNative.IOCTL_PRIVCMD_HYPERCALL, &hypercall);
        }
        while (rc < 0 && PrivcmdNative.Errno == PrivcmdNative.EINTR);
        if (rc < 0)
        {
            int e = PrivcmdNative.Errno;
            // ENOTTY would mean this is not privcmd.
            if (e == 25)
                throw new LivepatchTransportException($"{PrivcmdPath} does not take IOCTL_PRIVCMD_HYPERCALL (ENOTTY): is it Xen's privcmd device?");
            rc = -e;
        }
        return rc;
    }

    private unsafe int Call(byte[] sysctl, IReadOnlyList<WireBuffer> buffers)
    {
        ObjectDisposedException.ThrowIf(_privcmd < 0, this);
        // Layout: [xen_sysctl][guard]([buffer][guard])*, every part page-aligned. The mapped pages of the last call
        // are reused when this call needs the same number of pages per buffer (GET, ACTION, GET of one action; the
        // size probe and LIST): mapping hypercall pages costs page-table hypercalls in a PV dom0.
        var pages = new long[buffers.Count];
        for (int i = 0; i < buffers.Count; i++)
            pages[i] = Pages(buffers[i].Data.Length);
        if (_region == 0 || !pages.AsSpan().SequenceEqual(_regionPages))
        {
            ReleaseRegion();
            MapRegion(pages);
        }
        nint region = _region;
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

        int rc = Hypercall(PrivcmdNative.HYPERVISOR_sysctl, (ulong)sysctlPage, 0);

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

    private nint _region;
    private long _regionSize;
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
        nint region = Reserve(size);
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
            _ = PrivcmdNative.Munmap(region, (nuint)size);
            throw;
        }
        _region = region;
        _regionSize = size;
        _regionPages = pages;
        _regionOffsets = offsets;
    }

    private void ReleaseRegion()
    {
        if (_region != 0)
            _ = PrivcmdNative.Munmap(_region, (nuint)_regionSize);
        _region = 0;
    }

    private static long Pages(int length) => ((long)length + Page - 1) / Page * Page;

    // An inaccessible reservation: what is not committed stays a guard.
    private static nint Reserve(long size)
    {
        nint region = PrivcmdNative.Mmap(0, (nuint)size, PrivcmdNative.PROT_NONE,
            PrivcmdNative.MAP_PRIVATE | PrivcmdNative.MAP_ANONYMOUS | PrivcmdNative.MAP_NORESERVE, -1, 0);
        if (region == PrivcmdNative.MapFailed)
            throw new LivepatchTransportException($"cannot reserve {size} bytes for hypercall buffers: {PrivcmdNative.Describe(PrivcmdNative.Errno)}");
        return region;
    }

    // Hypercall-safe pages at region+offset: /dev/xen/hypercall pages, or anonymous pages locked in memory.
    private nint Commit(nint region, long offset, long length)
    {
        nint at = region + (nint)offset;
        nint got = _bufferDevice >= 0
            ? PrivcmdNative.Mmap(at, (nuint)length, PrivcmdNative.PROT_READ | PrivcmdNative.PROT_WRITE, PrivcmdNative.MAP_SHARED | PrivcmdNative.MAP_FIXED, _bufferDevice, 0)
            : PrivcmdNative.Mmap(at, (nuint)length, PrivcmdNative.PROT_READ | PrivcmdNative.PROT_WRITE, PrivcmdNative.MAP_PRIVATE | PrivcmdNative.MAP_ANONYMOUS | PrivcmdNative.MAP_FIXED, -1, 0);
        if (got == PrivcmdNative.MapFailed)
        {
            throw new LivepatchTransportException(
                $"cannot map {length} bytes of hypercall buffers from {(_bufferDevice >= 0 ? HypercallBufferPath : "anonymous memory")}: {PrivcmdNative.Describe(PrivcmdNative.Errno)}");
        }
        if (_bufferDevice < 0)
        {
            // libxencall's fallback: the pages must stay resident (and out of a forked child) while Xen uses them.
            if (PrivcmdNative.Mlock(at, (nuint)length) != 0)
            {
                throw new LivepatchTransportException(
                    $"cannot lock {length} bytes of hypercall buffers in memory: {PrivcmdNative.Describe(PrivcmdNative.Errno)}; run as root (or raise RLIMIT_MEMLOCK)");
            }
            _ = PrivcmdNative.Madvise(at, (nuint)length, PrivcmdNative.MADV_DONTFORK);
        }
        return at;
    }

    /// <inheritdoc/>
    public ValueTask DisposeAsync()
    {
        lock (_lock)
        {
            if (_privcmd >= 0)
            {
                ReleaseRegion();
                _ = PrivcmdNative.Close(_privcmd);
                _privcmd = -1;
                if (_bufferDevice >= 0)
                    _ = PrivcmdNative.Close(_bufferDevice);
            }
        }
        return ValueTask.CompletedTask;
    }
}
