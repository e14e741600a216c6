namespace XenLivepatch.Signing;

/// <summary>What the upload path does with a payload after its signature check.</summary>
public readonly struct TrustDecision
{
    /// <summary>True when the upload may go on.</summary>
    public bool Accepted { get; init; }

    /// <summary>
    /// The bytes the loader gets: the signed bytes when a signature block was understood (the content before an
    /// appended signature; the file with a note's signature zeroed), otherwise the payload as uploaded.
    /// </summary>
    public ReadOnlyMemory<byte> Payload { get; init; }

    /// <summary>The check's outcome (null under policy none: nothing was checked).</summary>
    public SignatureVerdict? Verdict { get; init; }

    /// <summary>Why it was refused (with <see cref="Accepted"/> false), without the payload's name.</summary>
    public string Refusal { get; init; }
}

/// <summary>
/// A hypervisor's signature policy and trusted keys: the check the livepatch core runs first at UPLOAD, before
/// any other check reads the payload (seed design, "Signature checking requirements").
/// </summary>
public sealed class PayloadTrust
{
    /// <summary>Creates a policy over <paramref name="keys"/>.</summary>
    public PayloadTrust(SignaturePolicy policy, TrustStore keys)
    {
        ArgumentNullException.ThrowIfNull(keys);
        Policy = policy;
        Keys = keys;
    }

    /// <summary>Xen 4.17: nothing is checked.</summary>
    public static PayloadTrust None { get; } = new(SignaturePolicy.None, TrustStore.Empty);

    /// <summary>The policy.</summary>
    public SignaturePolicy Policy { get; }

    /// <summary>The trusted keys.</summary>
    public TrustStore Keys { get; }

    /// <summary>Checks <paramref name="data"/> under the policy.</summary>
    public TrustDecision Check(ReadOnlyMemory<byte> data)
    {
        if (Policy == SignaturePolicy.None)
            return new TrustDecision { Accepted = true, Payload = data, Refusal = "" };
        var verdict = PayloadSignatures.Verify(data, Keys);
        var covered = verdict.Signature is { Covered.IsEmpty: false } s ? s.Covered : data;
        if (verdict.Verified)
            return new TrustDecision { Accepted = true, Payload = covered, Verdict = verdict, Refusal = "" };
        // Without enforcement, as Linux loads modules it cannot verify: what cannot be checked passes (recorded as
        // not verified); what is provably wrong does not.
        bool passes = Policy == SignaturePolicy.Verify
            && verdict.Failure is SignatureFailure.Unsigned or SignatureFailure.UnknownKey or SignatureFailure.UnsupportedAlgorithm;
        return passes
            ? new TrustDecision { Accepted = true, Payload = covered, Verdict = verdict, Refusal = "" }
            : new TrustDecision { Accepted = false, Payload = default, Verdict = verdict, Refusal = RefusalText(verdict) };
    }

    /// <summary>"signature check failed (bad signature): ...; signature policy require".</summary>
    public string RefusalText(SignatureVerdict verdict)
    {
        ArgumentNullException.ThrowIfNull(verdict);
        return $"signature check failed ({verdict.Failure.Name()}): {verdict.Detail} (signature policy {Policy.Name()})";
    }
}
