using XenLivepatch.Abi;
using XenLivepatch.Signing;

namespace XenLivepatch.Hypervisor;

/// <summary>A payload to stack under the one checked (<c>xen-livepatch check --applied</c>).</summary>
public sealed record StackedPayload(string Name, ReadOnlyMemory<byte> Data);

/// <summary>The verdict of an offline check.</summary>
public sealed record CheckReport
{
    /// <summary>The checked payload's name.</summary>
    public required string Payload { get; init; }
    /// <summary>The profile checked against.</summary>
    public required LivepatchProfile Profile { get; init; }
    /// <summary>True when the payload would upload and apply.</summary>
    public bool Accepted => Error == null;
    /// <summary>"upload" or "apply": where the payload was (or would be) refused; "apply" when accepted.</summary>
    public required string Stage { get; init; }
    /// <summary>The refusal, or null.</summary>
    public LivepatchError? Error { get; init; }
    /// <summary>The payload as loaded (null when the upload was refused).</summary>
    public Payload? Loaded { get; init; }
    /// <summary>The target hypervisor's build-id.</summary>
    public ReadOnlyMemory<byte> HypervisorBuildId { get; init; }
    /// <summary>The payloads applied underneath, oldest first.</summary>
    public IReadOnlyList<string> AppliedUnder { get; init; } = [];
    /// <summary>What the check could not verify offline, and other remarks.</summary>
    public IReadOnlyList<string> Notes { get; init; } = [];
    /// <summary>The core's log lines (Xen's "livepatch: ..." lines).</summary>
    public IReadOnlyList<string> Log { get; init; } = [];
    /// <summary>The signature policy checked under.</summary>
    public PayloadTrust Trust { get; init; } = PayloadTrust.None;
    /// <summary>The payload's signature check (null under policy none).</summary>
    public SignatureVerdict? Signature { get; init; }
}

/// <summary>
/// <c>xen-livepatch check</c>: runs a payload through UPLOAD against an offline hypervisor, then the APPLY
/// checks that need no running CPU: the build-id dependency (on the hypervisor, or on the last payload
/// applied underneath, unless NODEPS) and the expectations (when the target has code bytes). Payloads given
/// with <c>--applied</c> are uploaded and applied first, in order, patching the offline image as Xen would.
/// </summary>
public static class PayloadCheck
{
    /// <summary>Checks <paramref name="data"/> as payload <paramref name="name"/>.</summary>
    public static CheckReport Run(string name, ReadOnlyMemory<byte> data, OfflineHypervisor target, LivepatchProfile profile,
        IReadOnlyList<StackedPayload>? applied = null, bool noDeps = false, PayloadTrust? trust = null)
    {
        trust ??= new PayloadTrust(profile.SignaturePolicy, TrustStore.Empty);
        var log = new List<string>();
        var notes = new List<string>();
        if (!LivepatchArch.TryGet(target.Machine, out var arch))
            throw new ArgumentException($"livepatching {target.Machine} is not supported", nameof(target));
        // The payloads stacked underneath passed the same policy when they were uploaded: they are checked too.
        var core = new LivepatchCore(profile, arch, target, target) { Trust = trust };
        core.Log += log.Add;
        SignatureVerdict? verdict = null;
        CheckReport Report(string stage, LivepatchError? error, Payload? loaded) => new()
        {
            Trust = trust,
            Signature = verdict,
            Payload = name,
            Profile = profile,
            Stage = stage,
            Error = error,
            Loaded = loaded,
            HypervisorBuildId = target.BuildId,
            AppliedUnder = applied?.Select(a => a.Name).ToList() ?? [],
            Notes = notes,
            Log = log,
        };

        foreach (var under in applied ?? [])
        {
            if (core.Upload(under.Name, under.Data) is { } ue)
                return Report("upload", ue with { Detail = $"{ue.Detail} (while uploading --applied {under.Name})" }, null);
            int rc = core.Action(under.Name, LivepatchAction.Apply);
            var p = core.Find(under.Name)!;
            if (rc == 0 && p.Rc != 0)
                rc = p.Rc;
            if (rc != 0)
                return Report("apply", Refuse.StackedDoesNotApply(under.Name, (XenErrno)(-rc)), null);
        }

        var error = core.Upload(name, data);
        if (error != null)
        {
            // The refusal's message says why; the report keeps the whole verdict.
            verdict = trust.Check(data).Verdict;
            return Report("upload", error, null);
        }
        var payload = core.Find(name)!;
        verdict = payload.Signature;

        if (noDeps && !profile.SupportsNoDeps)
            notes.Add($"--nodeps has no effect in the {profile.Name} profile (it has no LIVEPATCH_ACTION_APPLY_NODEPS)");
        error = core.CheckApply(payload, noDeps ? LivepatchActionFlags.ApplyNoDeps : LivepatchActionFlags.None);
        bool dependencyHeld = error?.Check is not (LivepatchCheck.DependsMismatch or LivepatchCheck.DependsNoHypervisorBuildId);
        if (dependencyHeld && profile.SupportsExpectations && !target.HasCodeBytes && payload.Functions.Any(f => f.Entry.Expect.Enabled))
            notes.Add("expectations not checked: the target has no code bytes (give the image with --target to check them)");
        if (error == null && payload.Hooks.PreApply != 0)
            notes.Add("the pre-apply hook is not run offline; it may still veto the apply");
        foreach (var f in payload.Functions)
        {
            if (arch.UnencodablePatch(f.Entry, f.OldAddress) is { } why)
                notes.Add($"{(f.Name.Length > 0 ? f.Name : $"0x{f.OldAddress:x}")}: {why}");
        }
        return Report("apply", error, payload);
    }
}
