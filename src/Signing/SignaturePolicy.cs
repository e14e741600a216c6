namespace XenLivepatch.Signing;

/// <summary>
/// What a hypervisor does with payload signatures at UPLOAD (seed design, "Signature checking requirements").
/// </summary>
public enum SignaturePolicy
{
    /// <summary>Xen 4.17: signatures are not looked at; the loader gets every byte uploaded.</summary>
    None,

    /// <summary>
    /// A signature that is present is checked, as Linux checks module signatures without enforcement: a bad or
    /// malformed signature is refused; an unsigned payload, one signed by a key the hypervisor does not trust and
    /// one in an algorithm it does not support are accepted, recorded as not verified.
    /// </summary>
    Verify,

    /// <summary>Only payloads whose signature verifies against a trusted key are accepted (Secure Boot).</summary>
    Require,
}

/// <summary>Why a signature check did not verify a payload. The names are the ones refusals print.</summary>
public enum SignatureFailure
{
    /// <summary>It verified.</summary>
    None,
    /// <summary>No signature: no appended signature trailer and no <c>.note.Xen.signature</c> section.</summary>
    Unsigned,
    /// <summary>The signer is not a trusted key.</summary>
    UnknownKey,
    /// <summary>The signature does not match the signed bytes for the key that made it.</summary>
    BadSignature,
    /// <summary>The signature block is not well-formed (header, DER, note, lengths).</summary>
    Malformed,
    /// <summary>A well-formed signature in an algorithm, key type or form this verifier does not accept.</summary>
    UnsupportedAlgorithm,
}

/// <summary>Names and parsing of <see cref="SignaturePolicy"/> and <see cref="SignatureFailure"/>.</summary>
public static class SignatureNames
{
    /// <summary>The policies' names on command lines: none, verify, require.</summary>
    public static IReadOnlyList<string> PolicyNames { get; } = ["none", "verify", "require"];

    /// <summary>"none", "verify" or "require".</summary>
    public static string Name(this SignaturePolicy policy) => policy switch
    {
        SignaturePolicy.Verify => "verify",
        SignaturePolicy.Require => "require",
        _ => "none",
    };

    /// <summary>Parses a policy name.</summary>
    public static bool TryParsePolicy(string? text, out SignaturePolicy policy)
    {
        policy = text switch
        {
            "none" => SignaturePolicy.None,
            "verify" => SignaturePolicy.Verify,
            "require" => SignaturePolicy.Require,
            _ => (SignaturePolicy)(-1),
        };
        return (int)policy >= 0;
    }

    /// <summary>The reason as refusals and reports print it: "unsigned", "unknown key", "bad signature", ...</summary>
    public static string Name(this SignatureFailure failure) => failure switch
    {
        SignatureFailure.None => "verified",
        SignatureFailure.Unsigned => "unsigned",
        SignatureFailure.UnknownKey => "unknown key",
        SignatureFailure.BadSignature => "bad signature",
        SignatureFailure.Malformed => "malformed signature block",
        SignatureFailure.UnsupportedAlgorithm => "unsupported algorithm",
        _ => failure.ToString(),
    };
}
