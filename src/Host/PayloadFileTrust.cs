using XenLivepatch.Signing;

namespace XenLivepatch.Host;

/// <summary>
/// The operator's signature gate: the tool checks a payload's signature under the administrator's policy and keys
/// before it stores or uploads it (install, converge, apply-installed), with the same <see cref="PayloadTrust"/>
/// a hypervisor that checks signatures runs at UPLOAD (seed design, "Signature checking requirements"). Real Xen
/// 4.17 checks none, so on it this gate is the only one.
/// </summary>
public static class PayloadFileTrust
{
    /// <summary>
    /// Why <paramref name="trust"/> refuses <paramref name="file"/> ("signature check failed (unsigned): ...
    /// (signature policy require)"), or null when it accepts it.
    /// </summary>
    public static string? Refusal(this PayloadFile file, PayloadTrust trust)
    {
        ArgumentNullException.ThrowIfNull(file);
        ArgumentNullException.ThrowIfNull(trust);
        if (trust.Policy == SignaturePolicy.None)
            return null;
        var decision = trust.Check(file.Data);
        return decision.Accepted ? null : decision.Refusal;
    }

    /// <summary>
    /// The refusals of every payload of <paramref name="files"/> under <paramref name="trust"/>, each naming the
    /// payload and its file (empty: all accepted).
    /// </summary>
    public static IReadOnlyList<string> Refusals(IEnumerable<PayloadFile> files, PayloadTrust trust)
    {
        ArgumentNullException.ThrowIfNull(files);
        return [.. files.Select(f => f.Refusal(trust) is { } r ? $"{f.Name} ({f.Path}): {r}" : null).OfType<string>()];
    }
}
