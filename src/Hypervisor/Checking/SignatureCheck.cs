using XenLivepatch.Abi;
using XenLivepatch.Signing;

namespace XenLivepatch.Hypervisor;

/// <summary>
/// UPLOAD's signature check (check <see cref="LivepatchCheck.SignatureRefused"/>): the first thing that reads a
/// payload (seed design, "Signature checking requirements"), under the target's <see cref="PayloadTrust"/>. It
/// runs before the ELF checks, not as a <see cref="LoadStep"/>, because it decides which bytes the loader reads.
/// </summary>
public static class SignatureCheck
{
    /// <summary>
    /// The errno of every signature refusal: -EINVAL, what Xen's 2025 signing series ("livepatch: Verify livepatch
    /// signatures") returns for a bad, malformed or unsupported signature note and what its RSA check returns for
    /// a signature that does not verify. Linux's EKEYREJECTED and ENOKEY are not in Xen's public errno.h; the
    /// message names the reason (unsigned, unknown key, bad signature, malformed signature block, unsupported
    /// algorithm).
    /// </summary>
    public static XenErrno Errno => LivepatchCheck.SignatureRefused.GetErrno()!.Value;

    /// <summary>
    /// Checks <paramref name="data"/>; on acceptance replaces it with the bytes the loader may read (the signed
    /// bytes when there is a signature) and returns null, with the verdict (null under policy none).
    /// </summary>
    public static LivepatchError? Run(string name, PayloadTrust trust, ref ReadOnlyMemory<byte> data, out SignatureVerdict? verdict)
    {
        ArgumentNullException.ThrowIfNull(trust);
        var decision = trust.Check(data);
        verdict = decision.Verdict;
        if (!decision.Accepted)
            return Refuse.SignatureRefused(name, verdict!.Failure.Name(), verdict.Detail, trust.Policy.Name());
        data = decision.Payload;
        return null;
    }

    /// <summary>
    /// What the hypervisor tells about a loaded payload's check (the sandbox's status reply, beside the sysctl):
    /// policy, verified (1 or 0), format, reason, detail, key, key_id.
    /// </summary>
    public static IReadOnlyList<KeyValuePair<string, string>> Status(PayloadTrust trust, SignatureVerdict? verdict)
    {
        ArgumentNullException.ThrowIfNull(trust);
        return
        [
            new("policy", trust.Policy.Name()),
            new("verified", verdict?.Verified == true ? "1" : "0"),
            new("format", verdict?.Signature?.FormatId ?? ""),
            new("reason", verdict == null || verdict.Verified ? "" : verdict.Failure.Name()),
            new("detail", verdict?.Detail ?? ""),
            new("key", verdict?.Key?.ToString() ?? ""),
            new("key_id", verdict?.Key?.Id ?? ""),
        ];
    }
}
