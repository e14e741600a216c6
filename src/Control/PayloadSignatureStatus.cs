namespace XenLivepatch.Control;

/// <summary>
/// What a hypervisor that checks signatures recorded for a loaded payload: its policy, whether the signature
/// verified and by which key, or why not. Real Xen 4.17 checks none and reports none (the sysctl has no such
/// field); the sandbox answers on its socket beside the sysctl.
/// </summary>
/// <param name="Policy">none, verify or require.</param>
/// <param name="Verified">True when a trusted key verified the signature.</param>
/// <param name="Format">appended or note; null when unsigned or not checked.</param>
/// <param name="Reason">Why it is not verified (unsigned, unknown key, unsupported algorithm); null when verified.</param>
/// <param name="Detail">The verdict's details (which key, what differs).</param>
/// <param name="Key">The trusted key that verified it.</param>
/// <param name="KeyId">That key's identifier (hex).</param>
public sealed record PayloadSignatureStatus(string Policy, bool Verified, string? Format, string? Reason, string Detail, string? Key, string? KeyId)
{
    /// <summary>True when the hypervisor checked signatures at all (its policy is not none).</summary>
    public bool Checked => Policy != "none";

    /// <summary>Reads the fields of a status reply (the livepatch core's <c>SignatureCheck.Status</c> writes them).</summary>
    public static PayloadSignatureStatus FromFields(IReadOnlyDictionary<string, string> f)
    {
        ArgumentNullException.ThrowIfNull(f);
        string? Get(string k) => f.TryGetValue(k, out string? v) && v.Length > 0 ? v : null;
        return new PayloadSignatureStatus(Get("policy") ?? "none", Get("verified") == "1", Get("format"), Get("reason"), Get("detail") ?? "", Get("key"), Get("key_id"));
    }
}

/// <summary>A transport whose hypervisor reports payload signature checks (the sandbox's socket).</summary>
public interface IPayloadSignatureQuery
{
    /// <summary>The status of payload <paramref name="name"/>: null when the hypervisor has no such payload (or refuses to say).</summary>
    ValueTask<PayloadSignatureStatus?> GetSignatureStatusAsync(string name, CancellationToken cancellationToken = default);
}
