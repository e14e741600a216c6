using System.Buffers.Binary;
using System.Runtime.CompilerServices;
using XenLivepatch.Abi;
using XenLivepatch.Signing;

namespace XenLivepatch.Hypervisor;

/// <summary>
/// The livepatch core (xen/common/livepatch.c): the registry of payloads in upload order, its version
/// stamp, the stack of applied payloads, and the four operations. UPLOAD and GET are synchronous; ACTION
/// checks its preconditions, sets <c>rc</c> to -EAGAIN and schedules the work on the CPUs, which run it
/// quiesced and store its result in <c>rc</c>. Every operation is serialised by one lock, as Xen's
/// <c>payload_lock</c> serialises them.
/// </summary>
public sealed class LivepatchCore : IPayloadRegistryView
{
    private readonly List<Payload> _payloads = [];
    private readonly List<Payload> _applied = [];
    // The new symbols of every loaded payload (unique: an upload that would repeat one is refused).
    private readonly Dictionary<string, ulong> _newSymbols = new(StringComparer.Ordinal);
    private readonly Lock _lock = new();
    private Payload? _work;
    private TaskCompletionSource _idle = Completed();
    // Set while no action is pending. Blocking waiters never spin: beside spinning vCPUs on few cores, a
    // spinning waiter takes the core a vCPU needs to reach its safe point.
    private readonly object _idleGate = new();
    private bool _idleFlag = true;
    // Lines logged by the CPU running an action while the others are parked: printed after the release, so
    // that no log handler (locks, wake-ups, I/O) runs inside the pause.
    [ThreadStatic] private static List<string>? t_deferredLog;

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
    public uint Version { get; private set; } = 1;

    /// <summary>The payloads, in upload order (a snapshot).</summary>
    public IReadOnlyList<Payload> Payloads
    {
        get { lock (_lock) return [.. _payloads]; }
    }

    /// <summary>The applied payloads, oldest first; the last is the top of the stack (a snapshot).</summary>
    public IReadOnlyList<Payload> Applied
    {
        get { lock (_lock) return [.. _applied]; }
    }

    /// <summary>Runs <paramref name="read"/> under the registry lock (for consistent LIST snapshots).</summary>
    public T Read<T>(Func<IReadOnlyList<Payload>, uint, T> read)
    {
        lock (_lock)
            return read(_payloads, Version);
    }

    /// <summary>True while an action is scheduled or running (another one would get -EBUSY).</summary>
    public bool ActionPending
    {
        get { lock (_lock) return _work != null; }
    }

    /// <summary>
    /// Completes when no action is pending: at once when none is, else when the scheduled one has run (or
    /// timed out) and its rc is final. Lets a caller block instead of polling GET.
    /// </summary>
    public Task WhenIdle
    {
        get { lock (_lock) return _idle.Task; }
    }

    /// <summary>
    /// Blocks (without spinning) until no action is pending, or the timeout passes; true when idle.
    /// </summary>
    public bool WaitIdle(TimeSpan timeout)
    {
        long until = timeout == Timeout.InfiniteTimeSpan ? long.MaxValue : Environment.TickCount64 + (long)timeout.TotalMilliseconds;
        lock (_idleGate)
        {
            while (!_idleFlag)
            {
                long left = until - Environment.TickCount64;
                if (left <= 0)
                    return false;
                Monitor.Wait(_idleGate, (int)Math.Min(left, int.MaxValue));
            }
            return true;
        }
    }

    private void SetIdle(bool idle)
    {
        lock (_idleGate)
        {
            _idleFlag = idle;
            if (idle)
                Monitor.PulseAll(_idleGate);
        }
    }

    private static TaskCompletionSource Completed()
    {
        var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        done.SetResult();
        return done;
    }

    /// <summary>The payload with this name, or null.</summary>
    public Payload? Find(string name)
    {
        lock (_lock)
            return _payloads.Find(p => p.Name == name);
    }

    bool IPayloadRegistryView.TryLookupNewSymbol(string name, out ulong value) => _newSymbols.TryGetValue(name, out value);

    string? IPayloadRegistryView.FindBuildId(ReadOnlySpan<byte> buildId)
    {
        foreach (var p in _payloads)
        {
            if (p.BuildId.Span.SequenceEqual(buildId))
                return p.Name;
        }
        return null;
    }

    /// <summary>A new symbol of a loaded payload (<c>livepatch_symbols_lookup_by_name</c>).</summary>
    public bool TryLookupNewSymbol(string name, out ulong value)
    {
        lock (_lock)
            return ((IPayloadRegistryView)this).TryLookupNewSymbol(name, out value);
    }

    private void Info(string message)
    {
        if (t_deferredLog is { } deferred)
            deferred.Add(message);
        else
            Log?.Invoke(message);
    }

    /// <summary>
    /// XEN_SYSCTL_LIVEPATCH_UPLOAD (<c>livepatch_upload</c>) after the name checks: size checks, -EEXIST for a
    /// name already loaded, then the whole load. On success the payload is CHECKED with rc 0, appended, and
    /// the version bumped; on failure nothing is kept.
    /// </summary>
    public LivepatchError? Upload(string name, ReadOnlyMemory<byte> data)
    {
        // verify_payload reports these as -EINVAL without naming the payload's contents.
        if (data.Length == 0)
            return LivepatchError.For(name, XenErrno.EINVAL, "the payload is empty");
        if ((ulong)data.Length > Livepatch.MaxPayloadSize)
            return LivepatchError.For(name, XenErrno.EINVAL, $"the payload is {data.Length} bytes, larger than the {Livepatch.MaxPayloadSize}-byte limit");
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
        lock (_lock)
        {
            if (_payloads.Exists(p => p.Name == name))
                return LivepatchError.For(name, XenErrno.EEXIST, "a payload with this name is already loaded");
            var ctx = new LoadContext(Profile, Arch, Symbols, Memory, this);
            var error = PayloadLoader.Load(name, data, ctx, out var payload);
            if (error != null)
            {
                Info(error.Message);
                return error;
            }
            payload!.State = LivepatchState.Checked;
            payload.Rc = 0;
            payload.Signature = verdict;
            _payloads.Add(payload);
            foreach (var s in payload.Symbols)
            {
                if (s.IsNew)
                    _newSymbols.TryAdd(s.Name, s.Value);
            }
            Version++;
            return null;
        }
    }

    /// <summary>XEN_SYSCTL_LIVEPATCH_GET: state and rc, or -ENOENT.</summary>
    public int Get(string name, out XenLivepatchStatus status)
    {
        lock (_lock)
        {
            var p = _payloads.Find(x => x.Name == name);
            status = p == null ? default : new XenLivepatchStatus((uint)p.State, p.Rc);
            return p == null ? -(int)XenErrno.ENOENT : 0;
        }
    }

    /// <summary>
    /// XEN_SYSCTL_LIVEPATCH_ACTION (<c>livepatch_action</c>) after the name checks. Returns the hypercall's
    /// result; the action's own outcome appears in the payload's rc (-EAGAIN while it runs).
    /// </summary>
    public int Action(string name, LivepatchAction cmd, uint timeoutNs = 0, LivepatchActionFlags flags = 0)
    {
        lock (_lock)
        {
            var p = _payloads.Find(x => x.Name == name);
            if (p == null)
                return -(int)XenErrno.ENOENT;
            if (_work == p)
                return -(int)XenErrno.EBUSY;
            switch (cmd)
            {
                case LivepatchAction.Unload:
                    if (p.State != LivepatchState.Checked)
                        return -(int)XenErrno.EINVAL;
                    _payloads.Remove(p);
                    foreach (var s in p.Symbols)
                    {
                        if (s.IsNew && _newSymbols.TryGetValue(s.Name, out ulong v) && v == s.Value)
                            _newSymbols.Remove(s.Name);
                    }
                    Memory.Free(p.Memory);
                    Version++;
                    return 0;

                case LivepatchAction.Revert:
                    if (p.State != LivepatchState.Applied)
                        return 0;
                    if (_applied.Count == 0 || _applied[^1] != p)
                    {
                        Info($"{p.Name}: can't unload. Top is {(_applied.Count > 0 ? _applied[^1].Name : "none")}");
                        return -(int)XenErrno.EBUSY;
                    }
                    if (HookEnabled(p.Hooks.PreRevert, out ulong preRevert))
                    {
                        int hrc = Hooks.CallInt(preRevert, p);
                        if (hrc != 0)
                        {
                            p.Rc = hrc;
                            return hrc;
                        }
                    }
                    p.Rc = -(int)XenErrno.EAGAIN;
                    return ScheduleWork(p, cmd, timeoutNs);

                case LivepatchAction.Apply:
                    if (p.State != LivepatchState.Checked)
                        return 0;
                    if (p.Reverted && !p.SafeToReapply)
                    {
                        Info($"{p.Name}: can't revert as payload has .data. Please unload");
                        p.Rc = -(int)XenErrno.EINVAL;
                        return 0;
                    }
                    if (!Profile.SupportsNoDeps || (flags & LivepatchActionFlags.ApplyNoDeps) == 0)
                    {
                        int drc = BuildIdDependency(p, againstHypervisor: false);
                        if (drc != 0)
                            return drc;
                    }
                    if (Profile.SupportsExpectations)
                    {
                        int erc = CheckExpectations(p);
                        if (erc != 0)
                            return erc;
                    }
                    if (HookEnabled(p.Hooks.PreApply, out ulong preApply))
                    {
                        int hrc = Hooks.CallInt(preApply, p);
                        if (hrc != 0)
                        {
                            p.Rc = hrc;
                            return hrc;
                        }
                    }
                    p.Rc = -(int)XenErrno.EAGAIN;
                    return ScheduleWork(p, cmd, timeoutNs);

                case LivepatchAction.Replace:
                    if (p.State != LivepatchState.Checked)
                        return 0;
                    int rrc = BuildIdDependency(p, againstHypervisor: true);
                    if (rrc != 0)
                        return rrc;
                    if (p.HasVetoingHooks || _applied.Exists(a => a.HasVetoingHooks))
                        return -(int)XenErrno.EOPNOTSUPP;
                    p.Rc = -(int)XenErrno.EAGAIN;
                    return ScheduleWork(p, cmd, timeoutNs);

                default:
                    return -(int)XenErrno.EOPNOTSUPP;
            }
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private bool HookEnabled(ulong slot, out ulong function)
    {
        function = 0;
        if (slot == 0)
            return false;
        Span<byte> b = stackalloc byte[8];
        if (Memory.Read(slot, b) != MemoryReadStatus.Ok)
            return false;
        function = BinaryPrimitives.ReadUInt64LittleEndian(b);
        return function != 0;
    }

    /// <summary>
    /// <c>build_id_dep</c>: <c>.livepatch.depends</c> must equal the build-id of the top applied payload, or the
    /// hypervisor's when nothing is applied (or always, for REPLACE).
    /// </summary>
    public int BuildIdDependency(Payload p, bool againstHypervisor)
    {
        string against;
        ReadOnlySpan<byte> id;
        if (againstHypervisor || _applied.Count == 0)
        {
            if (Symbols.BuildId.IsEmpty)
                return -(int)XenErrno.ENODATA;
            id = Symbols.BuildId.Span;
            against = "hypervisor";
        }
        else
        {
            id = _applied[^1].BuildId.Span;
            against = _applied[^1].Name;
        }
        if (p.Depends.Span.SequenceEqual(id))
            return 0;
        Info($"{p.Name}: check against {against} build-id failed");
        return -(int)XenErrno.EINVAL;
    }

    /// <summary>
    /// <c>livepatch_check_expectations</c>: every enabled expectation must match the old function's first
    /// bytes. On a target without code bytes the comparison cannot be made and passes.
    /// </summary>
    public int CheckExpectations(Payload p) => VerifyExpectations(p) is { } e ? e.Rc : 0;

    /// <summary><see cref="CheckExpectations"/>, with the reason when an expectation fails.</summary>
    public LivepatchError? VerifyExpectations(Payload p)
    {
        Info($"{p.Name}: Verifying enabled expectations for all functions");
        foreach (var f in p.Functions)
        {
            var e = f.Entry.Expect;
            if (!e.Enabled)
                continue;
            string name = f.Name.Length > 0 ? f.Name : "unknown";
            LivepatchError? error = null;
            if (f.OldAddress == 0)
                error = LivepatchError.For(p.Name, XenErrno.EFAULT, $"{name}: there is nothing to expect (old_addr is 0)");
            else if (e.Length > LivepatchExpectation.DataSize)
                error = LivepatchError.For(p.Name, XenErrno.EOVERFLOW, $"{name}: the expectation is {e.Length} bytes, more than {LivepatchExpectation.DataSize}");
            else if (e.Reserved != 0)
                error = LivepatchError.For(p.Name, XenErrno.EINVAL, $"{name}: the expectation's reserved bits are set");
            else if (f.Entry.OldSize < e.Length)
                error = LivepatchError.For(p.Name, XenErrno.ERANGE, $"{name}: the expectation ({e.Length} bytes) is longer than the function ({f.Entry.OldSize} bytes)");
            else
            {
                var actual = new byte[e.Length];
                var status = Memory.Read(f.OldAddress, actual);
                var expected = e.Data.Span[..e.Length];
                if (status == MemoryReadStatus.Ok && !actual.AsSpan().SequenceEqual(expected))
                {
                    Info($"{name}: expectation failed: expected:{Convert.ToHexStringLower(expected)}, actual:{Convert.ToHexStringLower(actual)}");
                    error = LivepatchError.For(p.Name, XenErrno.EINVAL, $"{name}: expectation failed: expected:{Convert.ToHexStringLower(expected)}, actual:{Convert.ToHexStringLower(actual)}");
                }
                else if (status == MemoryReadStatus.Unmapped)
                {
                    error = LivepatchError.For(p.Name, XenErrno.EFAULT, $"{name}: old_addr 0x{f.OldAddress:x} is not mapped");
                }
            }
            if (error != null)
            {
                Info($"{p.Name}: expectations of {name} failed (rc={error.Rc}), aborting!");
                return error;
            }
        }
        return null;
    }

    // schedule_work: one outstanding action at a time.
    private int ScheduleWork(Payload p, LivepatchAction cmd, uint timeoutNs)
    {
        if (_work != null)
            return -(int)XenErrno.EBUSY; // p.Rc stays -EAGAIN, as in Xen
        _work = p;
        CompileThePause();
        ulong timeout = timeoutNs == 0 ? Livepatch.DefaultTimeoutNs : timeoutNs;
        var plan = cmd == LivepatchAction.Replace ? null : Plan(p, cmd);
        // Whatever makes text writable happens now, before the CPUs stop (no system call in the pause).
        var ranges = new List<(ulong, int)>();
        IEnumerable<Payload> touched = cmd == LivepatchAction.Replace ? _applied.Append(p) : [p];
        foreach (var f in touched.SelectMany(x => x.Functions))
        {
            if (f.OldAddress != 0)
                ranges.Add((f.OldAddress, 4 + Livepatch.OpaqueSize));
        }
        var prepared = Memory.PreparePatching(ranges, plan?.Writes ?? []);
        var log = new List<string>(8);
        _idle = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var idle = _idle;
        SetIdle(false);
        Action work = plan?.Writes != null
            // Worked out in full: the pause is the writes (and the load or unload hooks) and nothing else.
            ? () => RunPlanned(plan, prepared)
            : () =>
            {
                t_deferredLog = log;
                try
                {
                    DoAction(p, cmd, plan);
                }
                finally
                {
                    t_deferredLog = null;
                }
            };
        Cpus.Schedule(work, timeout, completed: rc =>
        {
            prepared.Dispose();
            if (rc == 0 && plan?.Writes != null)
                Commit(p, cmd, plan);
            foreach (string line in log)
                Info(line);
            Completed(p, cmd, rc);
            SetIdle(true);
            idle.TrySetResult();
        }, prepare: plan?.Writes != null ? () => WarmPlanned(plan, prepared) : null);
        return 0;
    }

    // The methods the pause runs. Left to the JIT, the first action of the process compiled them inside the pause, with the
    // other CPUs held: the benchmark's first apply held them 10-22 ms (its 'max' column).
    private static readonly string[] s_pauseMethods =
    [
        nameof(DoAction), nameof(ApplyWithHook), nameof(RevertWithHook), nameof(ApplyPayload), nameof(RevertPayload),
        nameof(ArchApply), nameof(ArchRevert), nameof(Consistent), nameof(HookEnabled), nameof(Info), nameof(VerifyExpectations),
        nameof(RunPlanned), nameof(RunHooks), nameof(WarmPlanned),
    ];
    private static volatile bool s_pauseCompiled;

    // Compiles the pause's methods before the first rendezvous (once per process; a no-op where code is
    // compiled ahead of time).
    private static void CompileThePause()
    {
        if (s_pauseCompiled)
            return;
        PauseCode.Prepare(typeof(LivepatchCore), s_pauseMethods);
        s_pauseCompiled = true;
    }

    // An apply or revert as the pause will run it, worked out before the CPUs stop, so that the pause runs
    // little more than the writes. Nothing changes the old code or the functions' state between now and the
    // pause (actions are serialised, only the pause writes text, and a load or unload hook has neither the
    // payload's state nor writable text), so for an apply or revert without an action hook the plan holds
    // every write and what the pause would have logged and recorded: the pause runs the load hooks, the writes
    // (IPreparedPatching.WriteAll, one pass over a compact table) and the unload hooks, and the rest is
    // recorded after the release, before the action completes (Commit). Seed design "Patching": the CPUs are
    // held for the writes only. An action hook replaces apply_payload or revert_payload and may change the
    // functions' state: then the pause runs Xen's steps itself.
    private sealed class PausePlan
    {
        public const int Stride = 32; // >= Livepatch.OpaqueSize
        public required PatchFunction[] Functions { get; init; }
        public required string Header { get; init; }
        public string[] Trailer { get; init; } = [];
        // Set when the pause runs the plan: every write, the hooks to call before (apply: load hooks) or
        // after (revert: unload hooks) them, the lines the pause would log, and for an apply each patch's
        // offset, length and the bytes it covers (recorded at commit).
        public TextWrite[]? Writes { get; init; }
        public IReadOnlyList<ulong> Hooks { get; init; } = [];
        public bool HooksAfterWrites { get; init; }
        public string[] Lines { get; init; } = [];
        public int[]? Offsets { get; init; }
        public int[]? Lengths { get; init; }
        public byte[]? Saved { get; init; }
    }

    private PausePlan Plan(Payload data, LivepatchAction cmd)
    {
        var functions = data.Functions.ToArray();
        if (cmd == LivepatchAction.Revert)
        {
            string revertHeader = $"{data.Name}: Reverting";
            if (HookEnabled(data.Hooks.Revert, out _))
                return new PausePlan { Functions = functions, Header = revertHeader };
            var undo = new List<TextWrite>();
            var lines = new List<string> { revertHeader };
            foreach (var f in functions)
            {
                if (f.OldAddress == 0 || f.Applied == LivepatchFuncState.NotApplied)
                    lines.Add($"{data.Name}: {f.Name} has not been applied before");
                else if (f.SavedLength > 0)
                    undo.Add(new TextWrite(f.OldAddress + (ulong)f.PatchOffset, f.SavedBytes.AsMemory(0, f.SavedLength).ToArray()));
            }
            return new PausePlan
            {
                Functions = functions, Header = revertHeader, Writes = [.. undo], Lines = [.. lines],
                Hooks = data.Hooks.Unload, HooksAfterWrites = true,
            };
        }
        var trailer = new List<string>();
        if (data.Metadata.Length > 0)
        {
            trailer.Add("module metadata:");
            foreach (string s in System.Text.Encoding.Latin1.GetString(data.Metadata.Span).Split('\0', StringSplitOptions.RemoveEmptyEntries))
                trailer.Add("  " + s);
        }
        string header = $"{data.Name}: Applying {functions.Length} functions";
        if (HookEnabled(data.Hooks.Apply, out _))
            return new PausePlan { Functions = functions, Header = header, Trailer = [.. trailer] };
        var offsets = new int[functions.Length];
        var lengths = new int[functions.Length];
        var patches = new byte[functions.Length * PausePlan.Stride];
        var saved = new byte[functions.Length * PausePlan.Stride];
        var writes = new List<TextWrite>();
        var applyLines = new List<string> { header };
        for (int i = 0; i < functions.Length; i++)
        {
            var f = functions[i];
            if (f.Applied == LivepatchFuncState.Applied)
            {
                applyLines.Add($"{data.Name}: {f.Name} has been already applied before");
                continue;
            }
            offsets[i] = PatchOffset(f);
            lengths[i] = Math.Min(Arch.PatchLength(f.Entry, offsets[i]), Livepatch.OpaqueSize);
            if (lengths[i] == 0)
                continue;
            ulong place = f.OldAddress + (ulong)offsets[i];
            Arch.EncodePatch(f.Entry, place, patches.AsSpan(i * PausePlan.Stride, lengths[i]));
            Memory.Read(place, saved.AsSpan(i * PausePlan.Stride, lengths[i]));
            writes.Add(new TextWrite(place, patches.AsMemory(i * PausePlan.Stride, lengths[i])));
        }
        applyLines.AddRange(trailer);
        return new PausePlan
        {
            Functions = functions, Header = header, Trailer = [.. trailer], Writes = [.. writes], Lines = [.. applyLines],
            Hooks = data.Hooks.Load, Offsets = offsets, Lengths = lengths, Saved = saved,
        };
    }

    // Before the pause, on the CPU that will run it: what RunPlanned reads, into that CPU's caches: the plan,
    // the hooks' slots and the first line of each hook's code, the writes' table and the lines they land on.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private void WarmPlanned(PausePlan plan, IPreparedPatching prepared)
    {
        Span<byte> code = stackalloc byte[1];
        for (int i = 0; i < plan.Hooks.Count; i++)
        {
            if (HookEnabled(plan.Hooks[i], out ulong fn))
                Memory.Read(fn, code);
        }
        prepared.Warm();
    }

    // The pause of a planned apply or revert: apply_payload's load hooks, the writes, revert_payload's unload hooks.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private void RunPlanned(PausePlan plan, IPreparedPatching prepared)
    {
        if (!plan.HooksAfterWrites)
            RunHooks(plan.Hooks);
        prepared.WriteAll();
        if (plan.HooksAfterWrites)
            RunHooks(plan.Hooks);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private void RunHooks(IReadOnlyList<ulong> slots)
    {
        for (int i = 0; i < slots.Count; i++)
        {
            if (HookEnabled(slots[i], out ulong fn))
                Hooks.CallVoid(fn, null);
        }
    }

    // What apply_payload/revert_payload and their callers record, for a pause that made the plan's writes:
    // done on the master after the release and before the action completes (its rc is -EAGAIN until then).
    private void Commit(Payload data, LivepatchAction cmd, PausePlan plan)
    {
        foreach (string line in plan.Lines)
            Info(line);
        var functions = plan.Functions;
        if (cmd == LivepatchAction.Apply)
        {
            for (int i = 0; i < functions.Length; i++)
            {
                var f = functions[i];
                if (f.Applied == LivepatchFuncState.Applied)
                    continue;
                f.PatchOffset = plan.Offsets![i];
                f.SavedLength = plan.Lengths![i];
                plan.Saved.AsSpan(i * PausePlan.Stride, f.SavedLength).CopyTo(f.SavedBytes);
                f.Applied = LivepatchFuncState.Applied;
            }
            Consistent(data, functions, LivepatchFuncState.Applied, "applied");
            lock (_lock)
            {
                _applied.Add(data);
                data.State = LivepatchState.Applied;
            }
        }
        else
        {
            for (int i = 0; i < functions.Length; i++)
            {
                var f = functions[i];
                if (f.OldAddress != 0 && f.Applied != LivepatchFuncState.NotApplied)
                    f.Applied = LivepatchFuncState.NotApplied;
            }
            Consistent(data, functions, LivepatchFuncState.NotApplied, "reverted");
            lock (_lock)
            {
                _applied.Remove(data);
                data.Reverted = true;
                data.State = LivepatchState.Checked;
            }
        }
        data.Rc = 0;
    }

    private void Completed(Payload p, LivepatchAction cmd, int rendezvous)
    {
        lock (_lock)
        {
            _work = null;
            if (rendezvous != 0)
            {
                // Timed out: nothing was written, state unchanged, the post hooks are skipped.
                p.Rc = rendezvous;
                Info($"{p.Name}: Timed out on semaphore in CPU quiesce phase");
                return;
            }
        }
        // The post hook runs on the master CPU after the others are released, and sees rc.
        ulong post = cmd == LivepatchAction.Revert ? p.Hooks.PostRevert : p.Hooks.PostApply;
        if (HookEnabled(post, out ulong fn))
            Hooks.CallVoid(fn, p);
        Info($"{p.Name} finished {cmd.ToString().ToUpperInvariant()} with rc={p.Rc}");
    }

    // livepatch_do_action: runs with every other CPU parked.
    private void DoAction(Payload data, LivepatchAction cmd, PausePlan? plan)
    {
        int rc;
        switch (cmd)
        {
            case LivepatchAction.Apply:
                rc = ApplyWithHook(data, plan);
                break;
            case LivepatchAction.Revert:
                rc = RevertWithHook(data, plan);
                break;
            default: // Replace
                rc = 0;
                List<Payload> applied;
                lock (_lock)
                    applied = [.. _applied];
                for (int i = applied.Count - 1; i >= 0; i--)
                {
                    var other = applied[i];
                    other.Rc = RevertWithHook(other, null);
                    if (other.Rc != 0)
                    {
                        rc = -(int)XenErrno.EINVAL;
                        break;
                    }
                }
                if (rc == 0)
                {
                    rc = Profile.SupportsExpectations ? CheckExpectations(data) : 0;
                    if (rc != 0)
                        Info($"{data.Name}: SYSTEM MIGHT BE INSECURE: Replace action has been aborted after reverting ALL payloads!");
                    else
                        rc = ApplyWithHook(data, null);
                }
                break;
        }
        data.Rc = rc;
    }

    private int ApplyWithHook(Payload data, PausePlan? plan)
    {
        int rc;
        if (HookEnabled(data.Hooks.Apply, out ulong hook))
        {
            Info($"{data.Name}: Calling apply action hook function");
            rc = Hooks.CallInt(hook, data);
        }
        else
        {
            rc = ApplyPayload(data, plan);
        }
        Consistent(data, plan?.Functions ?? [.. data.Functions], rc != 0 ? LivepatchFuncState.NotApplied : LivepatchFuncState.Applied, "applied");
        if (rc == 0)
        {
            lock (_lock)
            {
                _applied.Add(data);
                data.State = LivepatchState.Applied;
            }
        }
        return rc;
    }

    private int RevertWithHook(Payload data, PausePlan? plan)
    {
        int rc;
        if (HookEnabled(data.Hooks.Revert, out ulong hook))
        {
            Info($"{data.Name}: Calling revert action hook function");
            rc = Hooks.CallInt(hook, data);
        }
        else
        {
            rc = RevertPayload(data, plan);
        }
        Consistent(data, plan?.Functions ?? [.. data.Functions], rc != 0 ? LivepatchFuncState.Applied : LivepatchFuncState.NotApplied, "reverted");
        if (rc == 0)
        {
            lock (_lock)
            {
                _applied.Remove(data);
                data.Reverted = true;
                data.State = LivepatchState.Checked;
            }
        }
        return rc;
    }

    // was_action_consistent: Xen panics here; a partially (un)patched payload is a bug we cannot recover from.
    // The functions are an array: through IReadOnlyList, each element is an interface call (measured on
    // 1,000 functions: 6-11 µs for this loop; p99 4-7 µs for one function).
    private static void Consistent(Payload data, PatchFunction[] functions, LivepatchFuncState expected, string verb)
    {
        for (int i = 0; i < functions.Length; i++)
        {
            if (functions[i].Applied != expected)
                throw new InvalidOperationException($"livepatch: partially {verb} payload '{data.Name}'!");
        }
    }

    // apply_payload
    private int ApplyPayload(Payload data, PausePlan? plan)
    {
        PatchFunction[] functions = plan?.Functions ?? [.. data.Functions];
        Info(plan?.Header ?? $"{data.Name}: Applying {functions.Length} functions");
        {
            if (data.Hooks.Load.Count > 0)
            {
                foreach (ulong slot in data.Hooks.Load)
                {
                    if (HookEnabled(slot, out ulong fn))
                        Hooks.CallVoid(fn, null);
                }
            }
            for (int i = 0; i < functions.Length; i++)
            {
                var f = functions[i];
                if (f.Applied == LivepatchFuncState.Applied)
                {
                    Info($"{data.Name}: {f.Name} has been already applied before");
                    continue;
                }
                ArchApply(f);
                f.Applied = LivepatchFuncState.Applied;
            }
        }
        if (plan != null)
        {
            foreach (string line in plan.Trailer)
                Info(line);
        }
        else if (data.Metadata.Length > 0)
        {
            Info("module metadata:");
            foreach (string s in System.Text.Encoding.Latin1.GetString(data.Metadata.Span).Split('\0', StringSplitOptions.RemoveEmptyEntries))
                Info("  " + s);
        }
        return 0;
    }

    // revert_payload
    private int RevertPayload(Payload data, PausePlan? plan)
    {
        PatchFunction[] functions = plan?.Functions ?? [.. data.Functions];
        Info(plan?.Header ?? $"{data.Name}: Reverting");
        {
            for (int i = 0; i < functions.Length; i++)
            {
                var f = functions[i];
                if (f.OldAddress == 0 || f.Applied == LivepatchFuncState.NotApplied)
                {
                    Info($"{data.Name}: {f.Name} has not been applied before");
                    continue;
                }
                ArchRevert(f);
                f.Applied = LivepatchFuncState.NotApplied;
            }
            if (data.Hooks.Unload.Count > 0)
            {
                foreach (ulong slot in data.Hooks.Unload)
                {
                    if (HookEnabled(slot, out ulong fn))
                        Hooks.CallVoid(fn, null);
                }
            }
        }
        return 0;
    }

    /// <summary><c>arch_livepatch_apply</c>: save the bytes a patch covers, then write it.</summary>
    public void ArchApply(PatchFunction f)
    {
        int offset = PatchOffset(f);
        int len = Math.Min(Arch.PatchLength(f.Entry, offset), Livepatch.OpaqueSize);
        Span<byte> patch = stackalloc byte[len];
        Arch.EncodePatch(f.Entry, f.OldAddress + (ulong)offset, patch);
        ArchApply(f, offset, len, patch);
    }

    // The patch offset: 4 past an ENDBR64 the old function starts with, when the profile skips it.
    private int PatchOffset(PatchFunction f)
    {
        if (Profile.HandlesEndbr)
        {
            Span<byte> head = stackalloc byte[4];
            if (Memory.Read(f.OldAddress, head) == MemoryReadStatus.Ok && Arch.StartsWithEndbr(head))
                return 4;
        }
        return 0;
    }

    // The writes of arch_livepatch_apply, with the offset and patch already worked out.
    private void ArchApply(PatchFunction f, int offset, int len, ReadOnlySpan<byte> patch)
    {
        f.PatchOffset = offset;
        f.SavedLength = len;
        if (len == 0)
            return;
        ulong place = f.OldAddress + (ulong)offset;
        Memory.Read(place, f.SavedBytes.AsSpan(0, len));
        Memory.WriteText(place, patch);
    }

    /// <summary><c>arch_livepatch_revert</c>: put the saved bytes back.</summary>
    public void ArchRevert(PatchFunction f)
    {
        if (f.SavedLength > 0)
            Memory.WriteText(f.OldAddress + (ulong)f.PatchOffset, f.SavedBytes.AsSpan(0, f.SavedLength));
    }
}
