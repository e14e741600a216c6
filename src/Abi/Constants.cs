namespace XenLivepatch.Abi;

/// <summary>Sub-operations of <c>XEN_SYSCTL_livepatch_op</c> (<c>xen_sysctl_livepatch_op.cmd</c>).</summary>
public enum LivepatchSubOp : uint
{
    /// <summary><c>XEN_SYSCTL_LIVEPATCH_UPLOAD</c>: upload and check a payload.</summary>
    Upload = 0,
    /// <summary><c>XEN_SYSCTL_LIVEPATCH_GET</c>: the state and rc of one payload.</summary>
    Get = 1,
    /// <summary><c>XEN_SYSCTL_LIVEPATCH_LIST</c>: names and states of the payloads.</summary>
    List = 2,
    /// <summary><c>XEN_SYSCTL_LIVEPATCH_ACTION</c>: apply, revert, replace or unload.</summary>
    Action = 3,
}

/// <summary>Actions (<c>xen_sysctl_livepatch_action.cmd</c>, <c>LIVEPATCH_ACTION_*</c>).</summary>
public enum LivepatchAction : uint
{
    /// <summary><c>LIVEPATCH_ACTION_UNLOAD</c>.</summary>
    Unload = 1,
    /// <summary><c>LIVEPATCH_ACTION_REVERT</c>.</summary>
    Revert = 2,
    /// <summary><c>LIVEPATCH_ACTION_APPLY</c>.</summary>
    Apply = 3,
    /// <summary><c>LIVEPATCH_ACTION_REPLACE</c>: revert every applied payload, then apply this one.</summary>
    Replace = 4,
}

/// <summary>Payload states (<c>xen_livepatch_status.state</c>, <c>LIVEPATCH_STATE_*</c>).</summary>
public enum LivepatchState : uint
{
    /// <summary><c>LIVEPATCH_STATE_CHECKED</c>: loaded and checked, not applied.</summary>
    Checked = 1,
    /// <summary><c>LIVEPATCH_STATE_APPLIED</c>: applied.</summary>
    Applied = 2,
}

/// <summary>Flags of <c>xen_sysctl_livepatch_op.flags</c> (the 2016 <c>pad</c>; named <c>flags</c> since Xen 4.19).</summary>
[Flags]
public enum LivepatchOpFlags : uint
{
    /// <summary>No flag.</summary>
    None = 0,
    /// <summary><c>LIVEPATCH_FLAG_FORCE</c>: set by the tools on UPLOAD with <c>--force</c>.</summary>
    Force = 1u << 0,
}

/// <summary>Flags of <c>xen_sysctl_livepatch_action.flags</c> (since Xen 4.14).</summary>
[Flags]
public enum LivepatchActionFlags : uint
{
    /// <summary>No flag.</summary>
    None = 0,
    /// <summary><c>LIVEPATCH_ACTION_APPLY_NODEPS</c>: skip the inter-payload build-id check on APPLY.</summary>
    ApplyNoDeps = 1u << 0,
}

/// <summary>Per-function state kept by the hypervisor (<c>livepatch_func_state_t</c>).</summary>
public enum LivepatchFuncState : byte
{
    /// <summary><c>LIVEPATCH_FUNC_NOT_APPLIED</c>.</summary>
    NotApplied = 0,
    /// <summary><c>LIVEPATCH_FUNC_APPLIED</c>.</summary>
    Applied = 1,
}

/// <summary>Numbers of the livepatch ABI (xen/include/public/sysctl.h, xen/include/xen/livepatch.h).</summary>
public static class Livepatch
{
    /// <summary><c>XEN_SYSCTL_livepatch_op</c>: the <c>xen_sysctl.cmd</c> of every livepatch call.</summary>
    public const uint SysctlCommand = 27;

    /// <summary><c>XEN_LIVEPATCH_NAME_SIZE</c>: the longest name, its NUL included.</summary>
    public const int NameSize = 128;

    /// <summary><c>LIVEPATCH_OPAQUE_SIZE</c>.</summary>
    public const int OpaqueSize = 31;

    /// <summary><c>LIVEPATCH_MAX_SIZE</c>: the largest payload file, and the largest writable SHT_NOBITS section.</summary>
    public const ulong MaxPayloadSize = 2 * 1024 * 1024;

    /// <summary>The hypervisor's action timeout when <c>action.timeout</c> is 0: 30 ms, in ns.</summary>
    public const uint DefaultTimeoutNs = 30_000_000;

    /// <summary>LIST refuses <c>nr</c> above this with -E2BIG.</summary>
    public const uint ListMaxBatch = 1024;

    /// <summary>UPLOAD refuses <c>e_shnum</c> at or above this with -EOPNOTSUPP.</summary>
    public const int MaxSections = 1024;
}

/// <summary>Section names of the payload ABI (the seed design, §"Payload format"; Xen 4.15+ adds xen_depends).</summary>
public static class PayloadSections
{
    /// <summary>The array of <c>livepatch_func</c>.</summary>
    public const string Funcs = ".livepatch.funcs";
    /// <summary>Build-id note of what this payload applies on top of (the hypervisor or the previous payload).</summary>
    public const string Depends = ".livepatch.depends";
    /// <summary>Build-id note of the hypervisor (required since Xen 4.15).</summary>
    public const string XenDepends = ".livepatch.xen_depends";
    /// <summary>The payload's own build-id.</summary>
    public const string BuildId = ".note.gnu.build-id";
    /// <summary>Metadata strings, <c>key=value\0</c>…</summary>
    public const string ModInfo = ".modinfo";
    /// <summary>Load hooks (an array of <c>void (*)(void)</c>).</summary>
    public const string HooksLoad = ".livepatch.hooks.load";
    /// <summary>Unload hooks (an array of <c>void (*)(void)</c>).</summary>
    public const string HooksUnload = ".livepatch.hooks.unload";
    /// <summary>Vetoing pre-apply hook (one pointer).</summary>
    public const string HooksPreApply = ".livepatch.hooks.preapply";
    /// <summary>Apply action hook, replacing the default apply (one pointer).</summary>
    public const string HooksApply = ".livepatch.hooks.apply";
    /// <summary>Post-apply hook (one pointer).</summary>
    public const string HooksPostApply = ".livepatch.hooks.postapply";
    /// <summary>Vetoing pre-revert hook (one pointer).</summary>
    public const string HooksPreRevert = ".livepatch.hooks.prerevert";
    /// <summary>Revert action hook, replacing the default revert (one pointer).</summary>
    public const string HooksRevert = ".livepatch.hooks.revert";
    /// <summary>Post-revert hook (one pointer).</summary>
    public const string HooksPostRevert = ".livepatch.hooks.postrevert";
}
