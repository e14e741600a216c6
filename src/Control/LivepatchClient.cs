using XenLivepatch.Abi;

namespace XenLivepatch.Control;

/// <summary>
/// The live patching calls of libxenctrl (tools/libs/ctrl/xc_misc.c) as an async .NET API over one
/// <see cref="ISysctlTransport"/>: the same sysctls, the same checks before the hypercall, the same list retry
/// rules (reference §5.2). Results are values carrying Xen's errno (<see cref="LivepatchResult"/>); exceptions
/// mean the transport itself failed (<see cref="LivepatchTransportException"/>) or the call was cancelled.
/// Not thread-safe: one call at a time per client, as with one <c>xc_interface</c>.
/// </summary>
public sealed partial class LivepatchClient : IAsyncDisposable
{
    /// <summary>The action timeout Xen's tool passes: 30 ms, in ns (the hypervisor's default is the same).</summary>
    public const uint ToolTimeoutNs = 30_000_000;

    /// <summary>How often <see cref="ListAllAsync"/> re-reads the list after it changed (libxc's limit: the 5th change fails).</summary>
    public const int MaxListRetries = 4;

    /// <summary>
    /// The most metadata one LIST batch reads (16 MiB: 16 KiB for each of 1024 payloads, where a <c>.modinfo</c>
    /// is usually under 1 KiB). A hypervisor that has more answers -ENOBUFS (Xen 4.21+) or writes past the buffer
    /// (-EFAULT on Xen 4.17, whose buffers have guard pages); a transport cannot make the client allocate more.
    /// </summary>
    public const uint MaxMetadataBuffer = 16 * 1024 * 1024;

    private readonly bool _ownsTransport;

    /// <summary>Creates a client over <paramref name="transport"/>; disposing the client disposes the transport when <paramref name="ownsTransport"/>.</summary>
    public LivepatchClient(ISysctlTransport transport, bool ownsTransport = true)
    {
        ArgumentNullException.ThrowIfNull(transport);
        Transport = transport;
        _ownsTransport = ownsTransport;
    }

    /// <summary>The transport.</summary>
    public ISysctlTransport Transport { get; }

    /// <summary>The dialect spoken (the hypervisor's sysctl interface version and layout).</summary>
    public LivepatchAbi Abi => Transport.Abi;

    /// <inheritdoc/>
    public ValueTask DisposeAsync() => _ownsTransport ? Transport.DisposeAsync() : ValueTask.CompletedTask;

    /// <summary>
    /// Whether and how the hypervisor verified payload <paramref name="name"/>'s signature at upload. Not a sysctl:
    /// null when the transport's hypervisor reports no such thing (real Xen) or has no such payload.
    /// </summary>
    public async Task<PayloadSignatureStatus?> GetSignatureStatusAsync(string name, CancellationToken cancellationToken = default) =>
        Transport is IPayloadSignatureQuery query ? await query.GetSignatureStatusAsync(name, cancellationToken).ConfigureAwait(false) : null;

    /// <summary>
    /// XEN_SYSCTL_LIVEPATCH_UPLOAD (<c>xc_livepatch_upload</c>): uploads <paramref name="payload"/> under
    /// <paramref name="name"/>; the hypervisor checks and loads it synchronously. With <paramref name="force"/> the
    /// op carries LIVEPATCH_FLAG_FORCE, as newer Xen's tool sends for <c>--force</c> (hypervisors before 4.19 have a
    /// <c>pad</c> word there and answer -EINVAL).
    /// </summary>
    public async Task<LivepatchResult> UploadAsync(string name, ReadOnlyMemory<byte> payload, bool force = false, CancellationToken cancellationToken = default)
    {
        if (!TryEncodeName(name, out byte[] nameBytes))
            return new LivepatchResult(LivepatchCall.Upload, -(int)XenErrno.EINVAL, Local: true);
        var buffers = new GuestLayout();
        var nameBuffer = buffers.In(nameBytes);
        // libxc's size parameter is a uint32_t, although the ABI field is 64 bits wide.
        var data = buffers.In(payload.ToArray());
        var op = new SysctlLivepatchOp
        {
            Cmd = LivepatchSubOp.Upload,
            Flags = force ? (uint)LivepatchOpFlags.Force : 0,
            Upload = new SysctlLivepatchUpload(Name(nameBuffer), (uint)payload.Length, data.Address),
        };
        int rc = await CallAsync(op, buffers, cancellationToken).ConfigureAwait(false);
        return new LivepatchResult(LivepatchCall.Upload, rc);
    }

    /// <summary>XEN_SYSCTL_LIVEPATCH_GET (<c>xc_livepatch_get</c>): the payload's state and rc, or -ENOENT.</summary>
    public async Task<LivepatchStatusResult> GetAsync(string name, CancellationToken cancellationToken = default)
    {
        if (!TryEncodeName(name, out byte[] nameBytes))
            return new LivepatchStatusResult(new LivepatchResult(LivepatchCall.Get, -(int)XenErrno.EINVAL, Local: true), default);
        var buffers = new GuestLayout();
        var nameBuffer = buffers.In(nameBytes);
        var op = new SysctlLivepatchOp { Cmd = LivepatchSubOp.Get, Get = new SysctlLivepatchGet(Name(nameBuffer), default) };
        byte[] sysctl = XenSysctl.EncodeLivepatch(Abi, op);
        int rc = await Transport.CallAsync(sysctl, buffers.Buffers, cancellationToken).ConfigureAwait(false);
        // xc_livepatch_get copies the status back whatever the result.
        var status = XenSysctl.ReadLivepatch(sysctl, Abi.Layout).Get.Status;
        return new LivepatchStatusResult(new LivepatchResult(LivepatchCall.Get, rc), status);
    }

    /// <summary>
    /// XEN_SYSCTL_LIVEPATCH_ACTION (<c>xc_livepatch_{apply,revert,unload,replace}</c>): schedules
    /// <paramref name="action"/>. A result of 0 means the hypervisor accepted it; the action's own outcome then
    /// appears in the payload's rc (poll <see cref="GetAsync"/>, or use <see cref="WaitAsync"/>).
    /// <paramref name="timeoutNs"/> 0 is the hypervisor's default (30 ms).
    /// </summary>
    public async Task<LivepatchResult> ActionAsync(string name, LivepatchAction action, uint timeoutNs = 0,
        LivepatchActionFlags flags = LivepatchActionFlags.None, CancellationToken cancellationToken = default)
    {
        if (!TryEncodeName(name, out byte[] nameBytes))
            return new LivepatchResult(LivepatchCall.Action, -(int)XenErrno.EINVAL, Local: true);
        // The 2016 action structure has no flags word: such a hypervisor cannot honour them.
        if (flags != LivepatchActionFlags.None && Abi.Layout == SysctlLayout.Seed2016)
            return new LivepatchResult(LivepatchCall.Action, -(int)XenErrno.EOPNOTSUPP, Local: true);
        var buffers = new GuestLayout();
        var nameBuffer = buffers.In(nameBytes);
        var op = new SysctlLivepatchOp
        {
            Cmd = LivepatchSubOp.Action,
            Action = new SysctlLivepatchAction { Name = Name(nameBuffer), Cmd = (uint)action, Timeout = timeoutNs, Flags = (uint)flags },
        };
        int rc = await CallAsync(op, buffers, cancellationToken).ConfigureAwait(false);
        return new LivepatchResult(LivepatchCall.Action, rc);
    }

    /// <summary>APPLY (<c>xc_livepatch_apply</c>); <see cref="LivepatchActionFlags.ApplyNoDeps"/> skips the payload-to-payload build-id check.</summary>
    public Task<LivepatchResult> ApplyAsync(string name, uint timeoutNs = 0, LivepatchActionFlags flags = LivepatchActionFlags.None, CancellationToken cancellationToken = default) =>
        ActionAsync(name, LivepatchAction.Apply, timeoutNs, flags, cancellationToken);

    /// <summary>REVERT (<c>xc_livepatch_revert</c>).</summary>
    public Task<LivepatchResult> RevertAsync(string name, uint timeoutNs = 0, CancellationToken cancellationToken = default) =>
        ActionAsync(name, LivepatchAction.Revert, timeoutNs, LivepatchActionFlags.None, cancellationToken);

    /// <summary>UNLOAD (<c>xc_livepatch_unload</c>); synchronous in the hypervisor.</summary>
    public Task<LivepatchResult> UnloadAsync(string name, uint timeoutNs = 0, CancellationToken cancellationToken = default) =>
        ActionAsync(name, LivepatchAction.Unload, timeoutNs, LivepatchActionFlags.None, cancellationToken);

    /// <summary>REPLACE (<c>xc_livepatch_replace</c>): revert every applied payload, then apply this one.</summary>
    public Task<LivepatchResult> ReplaceAsync(string name, uint timeoutNs = 0, CancellationToken cancellationToken = default) =>
        ActionAsync(name, LivepatchAction.Replace, timeoutNs, LivepatchActionFlags.None, cancellationToken);

    /// <summary>
    /// Polls GET every <paramref name="pollInterval"/> while the payload's rc is -EAGAIN (an action in progress),
    /// for at most <paramref name="timeout"/>. Returns the last GET: <see cref="LivepatchStatusResult.InProgress"/>
    /// is still true when the time ran out.
    /// </summary>
    public async Task<LivepatchStatusResult> WaitAsync(string name, TimeSpan pollInterval, TimeSpan timeout, CancellationToken cancellationToken = default)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (true)
        {
            var get = await GetAsync(name, cancellationToken).ConfigureAwait(false);
            if (!get.InProgress || DateTime.UtcNow >= deadline)
                return get;
            await Task.Delay(pollInterval, cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>
    /// Uploads <paramref name="payload"/> as <paramref name="name"/> and applies it, in one call, as
    /// <c>xen-livepatch load</c> does: UPLOAD, APPLY (with <paramref name="flags"/>), then GET until the apply has
    /// finished (every <paramref name="pollInterval"/>, default 10 ms, for at most <paramref name="timeout"/>,
    /// default 5 s). When the apply fails or does not finish, the payload is unloaded again (best effort, as the
    /// tool does), so a failed load leaves nothing behind. The result names the step that failed and its errno.
    /// </summary>
    public async Task<LivepatchLoadResult> LoadAsync(string name, ReadOnlyMemory<byte> payload, LivepatchActionFlags flags = LivepatchActionFlags.None,
        TimeSpan? pollInterval = null, TimeSpan? timeout = null, CancellationToken cancellationToken = default)
    {
        var upload = await UploadAsync(name, payload, force: false, cancellationToken).ConfigureAwait(false);
        if (!upload.Succeeded)
            return new LivepatchLoadResult(name, LivepatchCall.Upload, upload.Errno, null, Unloaded: false);
        var apply = await ApplyAsync(name, 0, flags, cancellationToken).ConfigureAwait(false);
        int errno = apply.Errno;
        LivepatchState? state = null;
        if (apply.Succeeded)
        {
            var done = await WaitAsync(name, pollInterval ?? TimeSpan.FromMilliseconds(10), timeout ?? TimeSpan.FromSeconds(5), cancellationToken).ConfigureAwait(false);
            state = done.State;
            if (!done.Result.Succeeded)
                errno = done.Result.Errno;
            else if (done.InProgress)
                errno = (int)XenErrno.EAGAIN;
            else if (done.Status.Rc < 0)
                errno = -done.Status.Rc;
            else if (done.State == LivepatchState.Applied)
                return new LivepatchLoadResult(name, null, 0, LivepatchState.Applied, Unloaded: false);
            else
                errno = (int)XenErrno.EINVAL;
        }
        // As the tool's load: undo the upload; a payload still being applied cannot be unloaded, and says so.
        var unload = await UnloadAsync(name, 0, cancellationToken).ConfigureAwait(false);
        return new LivepatchLoadResult(name, LivepatchCall.Action, errno, state, Unloaded: unload.Succeeded);
    }

    /// <summary>
    /// <c>xc_livepatch_list_get_sizes</c>: a LIST with <c>nr = 0</c>, answering how many payloads there are and
    /// how many bytes their names and metadata take.
    /// </summary>
    public async Task<LivepatchListSizes> GetListSizesAsync(CancellationToken cancellationToken = default)
    {
        var op = new SysctlLivepatchOp { Cmd = LivepatchSubOp.List, List = new SysctlLivepatchList() };
        byte[] sysctl = XenSysctl.EncodeLivepatch(Abi, op);
        int rc = await Transport.CallAsync(sysctl, [], cancellationToken).ConfigureAwait(false);
        var result = new LivepatchResult(LivepatchCall.ListSizes, rc);
        if (rc != 0)
            return new LivepatchListSizes(result with { Rc = rc > 0 ? -(int)XenErrno.EOVERFLOW : rc }, 0, 0, 0, 0);
        var list = XenSysctl.ReadLivepatch(sysctl, Abi.Layout).List;
        // Every name is at most 128 bytes with its NUL: a larger total is not a list any hypervisor holds.
        if (Abi.Layout != SysctlLayout.Seed2016 && list.NameTotalSize > (ulong)list.Nr * Livepatch.NameSize)
            return new LivepatchListSizes(result with { Rc = -(int)XenErrno.EOVERFLOW }, 0, 0, 0, list.Version);
        return new LivepatchListSizes(result, list.Nr, list.NameTotalSize, list.MetadataTotalSize, list.Version);
    }

    /// <summary>
    /// <c>xc_livepatch_list</c>: reads up to <paramref name="max"/> entries from index <paramref name="start"/> into
    /// buffers of <paramref name="nameTotalSize"/> and <paramref name="metadataTotalSize"/> bytes (from
    /// <see cref="GetListSizesAsync"/>), in batches, with libxc's rules:
    /// <list type="bullet">
    /// <item>each batch asks for <c>min(max - done, batch)</c> entries, passing the room left in the buffers;</item>
    /// <item>-E2BIG halves the batch (and gives up once it is 1);</item>
    /// <item>a changed list version restarts from scratch; the 5th change fails with -EBUSY;</item>
    /// <item>a batch answering more entries than asked fails with -EOVERFLOW;</item>
    /// <item>-ENOBUFS (Xen 4.21+: the list outgrew the buffers) and any other error end the call.</item>
    /// </list>
    /// It stops when <paramref name="max"/> entries are in or the hypervisor has none left. Unlike libxc, a restart
    /// also rewinds the index and the buffer offsets, and later batches continue from <c>start + done</c>. In the
    /// 2016 layout the buffer sizes are not used (names go in 128-byte slots; there is no metadata).
    /// </summary>
    public Task<LivepatchList> ListAsync(uint max, uint start, uint nameTotalSize, uint metadataTotalSize, CancellationToken cancellationToken = default) =>
        ListBatches.ReadAsync(Transport, max, start, nameTotalSize, metadataTotalSize, cancellationToken);

    /// <summary>
    /// Every payload, as a management tool wants it: a size probe, then <see cref="ListAsync"/> for that many
    /// entries. When the list changed in between (it grew, or Xen 4.21+ answered -ENOBUFS) it probes again, up
    /// to <see cref="MaxListRetries"/> times, then answers -EBUSY. The result's call is the one that failed.
    /// </summary>
    public async Task<LivepatchList> ListAllAsync(CancellationToken cancellationToken = default)
    {
        for (int attempt = 0; ; attempt++)
        {
            var sizes = await GetListSizesAsync(cancellationToken).ConfigureAwait(false);
            if (!sizes.Result.Succeeded)
                return new LivepatchList(sizes.Result, [], 0, 0);
            if (sizes.Count == 0)
                return new LivepatchList(new LivepatchResult(LivepatchCall.List, 0), [], 0, sizes.Version);
            var list = await ListAsync(sizes.Count, 0, sizes.NameTotalSize, sizes.MetadataTotalSize, cancellationToken).ConfigureAwait(false);
            // Changed under us: Xen 4.21+ says so (-ENOBUFS); Xen 4.17 may write past buffers sized from the probe (the
            // guard pages make that -EFAULT) or leave entries over.
            bool changed = list.Result.Rc == -(int)XenErrno.ENOBUFS
                || (list.Result.Rc == -(int)XenErrno.EFAULT && list.Version != sizes.Version)
                || (list.Result.Succeeded && list.Left != 0);
            if (!changed)
                return list;
            if (attempt >= MaxListRetries)
                return list with { Result = new LivepatchResult(LivepatchCall.List, -(int)XenErrno.EBUSY) };
        }
    }

    private async Task<int> CallAsync(SysctlLivepatchOp op, GuestLayout buffers, CancellationToken cancellationToken)
    {
        byte[] sysctl = XenSysctl.EncodeLivepatch(Abi, op);
        return await Transport.CallAsync(sysctl, buffers.Buffers, cancellationToken).ConfigureAwait(false);
    }

    private static XenLivepatchName Name(WireBuffer name) => new(name.Address, (ushort)name.Data.Length);

    /// <summary>
    /// A name as libxc sends it: its bytes (as the command line gives them, <see cref="RawText"/>) and a NUL, at most
    /// <see cref="Livepatch.NameSize"/> bytes in all; longer names get EINVAL before any hypercall.
    /// </summary>
    public static bool TryEncodeName(string name, out byte[] bytes)
    {
        ArgumentNullException.ThrowIfNull(name);
        byte[] raw = RawText.Encode(name);
        if (raw.Length + 1 > Livepatch.NameSize)
        {
            bytes = [];
            return false;
        }
        bytes = new byte[raw.Length + 1];
        raw.CopyTo(bytes, 0);
        return true;
    }
}
