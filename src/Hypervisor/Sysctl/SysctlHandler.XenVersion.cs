using XenLivepatch.Abi;

namespace XenLivepatch.Hypervisor;

/// <summary>
/// The <c>xen_version</c> hypercall's sub-op a live patching tool needs (xen/common/kernel.c, <c>do_xen_version</c>):
/// XENVER_build_id, the running hypervisor's build-id, which every payload's <c>.livepatch.xen_depends</c> names.
/// </summary>
public sealed partial class SysctlHandler
{
    /// <summary>
    /// <c>do_xen_version(cmd, arg)</c> for XENVER_build_id: -EPERM to a caller that is not privileged (XSM's
    /// default policy gives the build-id to the control domain only); with no <paramref name="arg"/> the size;
    /// otherwise -EINVAL for <c>len</c> 0, -ENODATA without a build-id, -ENOBUFS when <c>len</c> is too small,
    /// -EFAULT when the buffer is not the caller's, else the bytes written. Other sub-ops: -ENOSYS.
    /// </summary>
    public int XenVersion(int cmd, ulong arg, IGuestMemory guest, bool privileged)
    {
        ArgumentNullException.ThrowIfNull(guest);
        if (cmd != Abi.XenVersion.BuildId)
            return -(int)XenErrno.ENOSYS;
        if (!privileged)
            return -(int)XenErrno.EPERM;
        uint len = 0;
        if (arg != 0)
        {
            Span<byte> header = stackalloc byte[XenBuildId.HeaderSize];
            if (!guest.Read(arg, header))
                return -(int)XenErrno.EFAULT;
            len = XenBuildId.ReadLen(header);
            if (len == 0)
                return -(int)XenErrno.EINVAL;
        }
        var id = Core.Symbols.BuildId;
        if (id.IsEmpty)
            return -(int)XenErrno.ENODATA;
        if (arg == 0)
            return id.Length;
        if ((uint)id.Length > len)
            return -(int)XenErrno.ENOBUFS;
        if (!guest.Write(arg + XenBuildId.FieldLocations.Buf, id.Span))
            return -(int)XenErrno.EFAULT;
        return id.Length;
    }
}
