using XenLivepatch.Abi;
using XenLivepatch.Signing;

namespace XenLivepatch.Hypervisor;

/// <summary>
/// The livepatch core (xen/common/livepatch.c): UPLOAD, GET and ACTION over the registry of payloads
/// (<see cref="PayloadRegistry"/>). UPLOAD and GET are synchronous; ACTION checks its preconditions
/// (<see cref="ActionChecks"/>), sets <c>rc</c> to -EAGAIN and schedules the work
/// (<see cref="ActionScheduler"/>) on the CPUs, which run it quiesced (<see cref="PatchPlan"/>) and store its
/// result in <c>rc</c>. Every operation is serialised by one lock, as Xen's <c>payload_lock</c> serialises them.
/// </summary>
public sealed class LivepatchCore
{
    private readonly PayloadRegistry _registry = new();
    private readonly ActionChecks _checks;
    private readonly ActionScheduler _scheduler;

    /// <summary>Creates a core for a hypervisor.</summary>
    public LivepatchCore(LivepatchProfile profile, LivepatchArch arch, IHypervisorSymbols symbols, IHypervisorMemory memory,
        ILivepatchCpus? cpus = null, IHookRunner? hooks = null)
    {
        Profile = profile;
        Arch = arch;
        Symbols = symbols;
        Memory = memory;
        Cpus = cpus ?? ImmediateCpus.Instance;
        Hooks = hooks ?? NoHookRunner.Instance;
        _checks = new ActionChecks(this, _registry);
        _scheduler = new ActionScheduler(this, _registry);
    }

    /// <summary>The rules followed.</summary>
    public LivepatchProfile Profile { get; }
    /// <summary>The architecture.</summary>
    public LivepatchArch Arch { get; }
    /// <summary>The hypervisor's symbols and build-id.</summary>
    public IHypervisorSymbols Symbols { get; }
    /// <summary>The hypervisor's memory.</summary>
    public IHypervisorMemory Memory { get; }
    /// <summary>The CPUs that run actions.</summary>
    public ILivepatchCpus Cpus { get; }
    /// <summary>Runs payload hooks.</summary>
    public IHookRunner Hooks { get; }

    /// <summary>
    /// The signature policy and trusted keys UPLOAD checks payloads against, first (the profile's policy, with no
    /// keys, unless the target gives its own).
    /// </summary>
    public PayloadTrust Trust
    {
        get => _trust ??= new PayloadTrust(Profile.SignaturePolicy, TrustStore.Empty);
        init => _trust = value;
    }

    private PayloadTrust? _trust;

    /// <summary>Log lines, as Xen prints them with its "livepatch: " prefix (without the prefix).</summary>
    public event Action<string>? Log;

    /// <summary><c>payload_version</c>: starts at 1, bumped by every upload and unload.</summary>
    public uint Version
    {
        get { lock (_registry.Lock) return _registry.Version; }
    }

    /// <summary>The payloads, in upload order (a snapshot).</summary>
    public IReadOnlyList<Payload> Payloads
    {
        get { lock (_registry.Lock) return [.. _registry.Payloads]; }
    }

    /// <summary>The applied payloads, oldest first; the last is the top of the stack (a snapshot).</summary>
    public IReadOnlyList<Payload> Applied
    {
        get { lock (_registry.Lock) return [.. _registry.Applied]; }
    }

    /// <summary>Runs <paramref name="read"/> under the registry lock (for consistent LIST snapshots).</summary>
    public T Read<T>(Func<IReadOnlyList<Payload>, uint, T> read)
    {
        ArgumentNullException.ThrowIfNull(read);
        lock (_registry.Lock)
            return read(_registry.Payloads, _registry.Version);
    }

    /// <summary>True while an action is scheduled or running (another one would get -EBUSY).</summary>
    public bool ActionPending
    {
        get { lock (_registry.Lock) return _scheduler.Work != null; }
    }

    /// <summary>Blocks (without spinning) until no action is pending, or the timeout passes; true when idle.</summary>
    public bool WaitIdle(TimeSpan timeout) => _scheduler.WaitIdle(timeout);

    /// <summary>The payload with this name, or null.</summary>
    public Payload? Find(string name)
    {
        lock (_registry.Lock)
            return _registry.Find(name);
    }

    internal void Info(string message) => Log?.Invoke(message);

    /// <summary>
    /// <c>verify_payload</c>'s size rule: 1 byte to 2 MiB. The sysctl handler asks before it looks at the
    /// caller's buffer; <see cref="Upload"/> asks again.
    /// </summary>
    public static LivepatchError? CheckUploadSize(string name, ulong size) =>
        size == 0 ? Refuse.PayloadEmpty(name)
        : size > Livepatch.MaxPayloadSize ? Refuse.PayloadTooLarge(name, size, Livepatch.MaxPayloadSize)
        : null;

    /// <summary>
    /// <c>livepatch_upload</c>'s first check: no payload has this name. The sysctl handler asks before it
    /// copies the payload in; <see cref="Upload"/> asks again, under the same lock as the load.
    /// </summary>
    public LivepatchError? CheckNameUnused(string name)
    {
        lock (_registry.Lock)
            return _registry.Find(name) != null ? Refuse.NameInUse(name) : null;
    }

    /// <summary>
    /// XEN_SYSCTL_LIVEPATCH_UPLOAD (<c>livepatch_upload</c>) after the name checks: <see cref="CheckUploadSize"/>,
    /// <see cref="CheckNameUnused"/>, then the whole load (with <see cref="UploadOptions.Force"/>, without the steps
    /// the profile lets FORCE skip). On success the payload is CHECKED with rc 0, appended, and the version bumped;
    /// on failure nothing is kept.
    /// </summary>
    public LivepatchError? Upload(string name, ReadOnlyMemory<byte> data, UploadOptions options = UploadOptions.None)
    {
        if (CheckUploadSize(name, (ulong)data.Length) is { } size)
            return size;
        // Seed design, "Signature checking requirements": before anything reads the payload; from here on the
        // loader sees only the bytes the signature covers.
        var signature = SignatureCheck.Run(name, Trust, ref data, out var verdict);
        if (signature != null)
        {
            Info(signature.Message);
            return signature;
        }
        if (verdict is { Verified: false })
            Info($"{name}: signature not verified ({verdict.Failure.Name()}: {verdict.Detail}); loaded under signature policy verify");
        lock (_registry.Lock)
        {
            if (CheckNameUnused(name) is { } used)
                return used;
            var ctx = new LoadContext(Profile, Arch, Symbols, Memory, _registry, options);
            var error = PayloadLoader.Load(name, data, ctx, out var payload);
            if (error != null)
            {
                Info(error.Message);
                return error;
            }
            payload!.Signature = verdict;
            _registry.Add(payload);
            return null;
        }
    }

    /// <summary>XEN_SYSCTL_LIVEPATCH_GET: state and rc, or -ENOENT.</summary>
    public int Get(string name, out XenLivepatchStatus status)
    {
        lock (_registry.Lock)
        {
            var p = _registry.Find(name);
            status = p == null ? default : new XenLivepatchStatus((uint)p.State, p.Rc);
            return p == null ? LivepatchCheck.GetNotFound.Rc() : 0;
        }
    }

    /// <summary>
    /// XEN_SYSCTL_LIVEPATCH_ACTION (<c>livepatch_action</c>) after the name checks. Returns the hypercall's
    /// result; the action's own outcome appears in the payload's rc (-EAGAIN while it runs).
    /// </summary>
    public int Action(string name, LivepatchAction cmd, uint timeoutNs = 0, LivepatchActionFlags flags = 0)
    {
        lock (_registry.Lock)
        {
            var p = _registry.Find(name);
            if (p == null)
                return LivepatchCheck.ActionNotFound.Rc();
            if (_scheduler.Work == p)
                return LivepatchCheck.ActionScheduled.Rc();
            switch (cmd)
            {
                case LivepatchAction.Unload:
                    if (ActionChecks.Unload(p) is { } notChecked)
                        return Report(p, notChecked);
                    _registry.Remove(p);
                    Memory.Free(p.Memory);
                    return 0;
                // An action on a payload already in the state it leads to does nothing.
                case LivepatchAction.Revert when p.State != LivepatchState.Applied:
                case LivepatchAction.Apply or LivepatchAction.Replace when p.State != LivepatchState.Checked:
                    return 0;
                case LivepatchAction.Revert:
                    if (_checks.Revert(p) is { } revertRefused)
                        return Report(p, revertRefused);
                    break;
                case LivepatchAction.Apply:
                    if (_checks.Apply(p, flags) is { } applyRefused)
                        return Report(p, applyRefused);
                    break;
                case LivepatchAction.Replace:
                    if (_checks.Replace(p) is { } replaceRefused)
                        return Report(p, replaceRefused);
                    break;
                default:
                    return LivepatchCheck.ActionUnknown.Rc();
            }
            int previous = p.Rc;
            p.Rc = -(int)XenErrno.EAGAIN;
            int scheduled = _scheduler.Schedule(p, cmd, timeoutNs);
            if (scheduled != 0 && !Profile.KeepsAgainWhenBusy)
                p.Rc = previous;
            return scheduled;
        }
    }

    // How livepatch_action reports a refusal: as its result, in the payload's rc, or both (the check table's outcome).
    private static int Report(Payload p, LivepatchError refused)
    {
        var outcome = refused.Check.GetOutcome();
        if (outcome != CheckOutcome.Returned)
            p.Rc = refused.Rc;
        return outcome == CheckOutcome.Rc ? 0 : refused.Rc;
    }

    /// <summary>
    /// APPLY's checks (<see cref="Action"/> runs them) for a loaded payload, without applying it: what
    /// <c>xen-livepatch check</c> asks. Runs the pre-apply hook where hooks run.
    /// </summary>
    internal LivepatchError? CheckApply(Payload payload, LivepatchActionFlags flags)
    {
        lock (_registry.Lock)
            return _checks.Apply(payload, flags);
    }

    /// <summary><c>livepatch_check_expectations</c> for a loaded payload: the first expectation that does not hold, or null.</summary>
    public LivepatchError? CheckExpectations(Payload payload)
    {
        ArgumentNullException.ThrowIfNull(payload);
        return ActionChecks.Expectations(this, payload, Info);
    }
}
