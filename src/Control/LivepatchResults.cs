using XenLivepatch.Abi;

namespace XenLivepatch.Control;

/// <summary>The libxenctrl call a result belongs to.</summary>
public enum LivepatchCall
{
    /// <summary><c>xc_livepatch_upload</c>.</summary>
    Upload,
    /// <summary><c>xc_livepatch_get</c>.</summary>
    Get,
    /// <summary><c>xc_livepatch_list_get_sizes</c>: LIST with <c>nr = 0</c>.</summary>
    ListSizes,
    /// <summary><c>xc_livepatch_list</c>.</summary>
    List,
    /// <summary><c>xc_livepatch_{apply,revert,unload,replace}</c>.</summary>
    Action,
    /// <summary><c>xc_version(XENVER_build_id)</c>.</summary>
    BuildId,
    /// <summary><c>xc_send_debug_keys</c> (XEN_SYSCTL_debug_keys).</summary>
    DebugKeys,
    /// <summary><c>xc_readconsolering</c> (XEN_SYSCTL_readconsole).</summary>
    ReadConsole,
}

/// <summary>
/// The outcome of one call, as libxenctrl reports it: 0 (or a non-negative count) on success, otherwise the
/// negative Xen errno. <see cref="Local"/> tells an error the library raised before any hypercall (a name longer
/// than Xen accepts, as libxc's own EINVAL) from one the hypervisor returned.
/// </summary>
/// <param name="Call">The call.</param>
/// <param name="Rc">0, a count, or <c>-errno</c>.</param>
/// <param name="Local">True when the library refused the call itself.</param>
public readonly record struct LivepatchResult(LivepatchCall Call, int Rc, bool Local = false)
{
    /// <summary>True when the call succeeded (Rc ≥ 0).</summary>
    public bool Succeeded => Rc >= 0;

    /// <summary>The positive errno of a failure (0 on success).</summary>
    public int Errno => Rc < 0 ? -Rc : 0;

    /// <summary>The Xen errno of a failure, or null on success.</summary>
    public XenErrno? Error => Rc < 0 ? (XenErrno)(-Rc) : null;

    /// <summary>"EINVAL: Invalid argument" or "ok".</summary>
    public override string ToString() => Rc >= 0 ? $"{Call}: ok ({Rc})" : $"{Call}: {XenErrors.Name(Errno)} ({XenErrors.Message(Errno)})";
}

/// <summary>What GET answered: the call's result and, when it succeeded, the payload's state and rc.</summary>
/// <param name="Result">The call's result.</param>
/// <param name="Status">
/// The status the hypervisor wrote back. As <c>xc_livepatch_get</c> does, it is copied back even when the call
/// failed (then it is normally zero).
/// </param>
public readonly record struct LivepatchStatusResult(LivepatchResult Result, XenLivepatchStatus Status)
{
    /// <summary>The state when it is one Xen defines, else null.</summary>
    public LivepatchState? State => Status.State is (uint)LivepatchState.Checked or (uint)LivepatchState.Applied ? (LivepatchState)Status.State : null;

    /// <summary>True while an action on the payload runs (its rc is -EAGAIN).</summary>
    public bool InProgress => Result.Succeeded && Status.Rc == -(int)XenErrno.EAGAIN;
}

/// <summary>What a LIST probe (<c>nr = 0</c>) answered.</summary>
/// <param name="Result">The call's result.</param>
/// <param name="Count">How many payloads are loaded.</param>
/// <param name="NameTotalSize">Bytes of all names, each with its NUL (Xen 4.14+).</param>
/// <param name="MetadataTotalSize">Bytes of all metadata (Xen 4.14+).</param>
/// <param name="Version">The payload list's version stamp (bumped by every upload and unload).</param>
public readonly record struct LivepatchListSizes(LivepatchResult Result, uint Count, uint NameTotalSize, uint MetadataTotalSize, uint Version);

/// <summary>One payload as LIST reports it.</summary>
/// <param name="Name">The name, decoded as UTF-8.</param>
/// <param name="NameBytes">The name's bytes as the hypervisor returned them, without the NUL.</param>
/// <param name="Status">Its state and rc.</param>
/// <param name="Metadata">Its <c>.modinfo</c> bytes (<c>key=value\0...</c>), as returned (Xen 4.14+; empty before).</param>
public sealed record LivepatchListEntry(string Name, byte[] NameBytes, XenLivepatchStatus Status, byte[] Metadata)
{
    /// <summary>The state when it is one Xen defines, else null.</summary>
    public LivepatchState? State => Status.State is (uint)LivepatchState.Checked or (uint)LivepatchState.Applied ? (LivepatchState)Status.State : null;

    /// <summary>The metadata's strings (the <c>.modinfo</c> entries, split at each NUL, empty ones dropped).</summary>
    public IReadOnlyList<string> MetadataStrings =>
        System.Text.Encoding.UTF8.GetString(Metadata).Split('\0', StringSplitOptions.RemoveEmptyEntries);
}

/// <summary>What a LIST answered: the entries received, and libxc's <c>done</c> and <c>left</c> counts.</summary>
/// <param name="Result">The call's result (0 on success, as <c>xc_livepatch_list</c>, not the count).</param>
/// <param name="Entries">The entries received, in the hypervisor's (upload) order.</param>
/// <param name="Left">How many entries the hypervisor had left after the last batch.</param>
/// <param name="Version">The list's version stamp during the listing (0 when no batch succeeded).</param>
public sealed record LivepatchList(LivepatchResult Result, IReadOnlyList<LivepatchListEntry> Entries, uint Left, uint Version)
{
    /// <summary>How many entries were received (libxc's <c>done</c>).</summary>
    public uint Done => (uint)Entries.Count;
}

/// <summary>What <see cref="LivepatchClient.LoadAsync"/> did.</summary>
/// <param name="Name">The payload's name.</param>
/// <param name="FailedCall">The call that failed (UPLOAD, or ACTION for the apply), or null when the payload is applied.</param>
/// <param name="Errno">Xen's errno of the failure (EAGAIN when the apply did not finish in time); 0 on success.</param>
/// <param name="State">The payload's state at the end of the apply, when it was read.</param>
/// <param name="Unloaded">True when a failed apply was undone by unloading the payload.</param>
public sealed record LivepatchLoadResult(string Name, LivepatchCall? FailedCall, int Errno, LivepatchState? State, bool Unloaded)
{
    /// <summary>True when the payload is loaded and applied.</summary>
    public bool Succeeded => FailedCall == null;

    /// <summary>The failure's errno as Xen's enum, or null.</summary>
    public XenErrno? Error => Errno > 0 ? (XenErrno)Errno : null;

    /// <inheritdoc/>
    public override string ToString() => Succeeded
        ? $"{Name}: applied"
        : $"{Name}: {FailedCall} failed: {XenErrors.Name(Errno)} ({XenErrors.Message(Errno)}){(Unloaded ? "; unloaded again" : "")}";
}

/// <summary>Xen errno names and texts, as Xen's C tools print them (glibc's <c>strerror</c>).</summary>
public static class XenErrors
{
    /// <summary>The text <c>strerror(errno)</c> gives: "Invalid argument", or "Unknown error N".</summary>
    public static string Message(int errno) =>
        errno == 0 ? "Success" : ((XenErrno)errno).GetMessage() ?? $"Unknown error {errno}";

    /// <summary>The symbolic name ("EINVAL"), or the number when Xen defines none.</summary>
    public static string Name(int errno) =>
        ((XenErrno)errno).GetSpecName() ?? errno.ToString(System.Globalization.CultureInfo.InvariantCulture);
}
