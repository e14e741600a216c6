using System.Globalization;
using System.Text.Json;
using XenLivepatch.Hypervisor;
using XenLivepatch.Signing;

namespace XenLivepatch.Cli;

/// <summary>
/// The signature options of the commands that act as a hypervisor (<c>check</c>, <c>sandbox</c>, <c>demo</c>)
/// or describe payloads (<c>info</c>), and how signatures and verdicts print, as text and JSON.
/// </summary>
internal static class SignatureOptions
{
    /// <summary>The options.</summary>
    public static readonly string[] Options = ["--trusted-keys", "--signature-policy"];

    /// <summary>Their help lines (for commands that enforce a policy).</summary>
    public const string Help = "\n" + """
          --trusted-keys <dir>      the keys the hypervisor trusts: PEM certificates or public keys (RSA, 2048
                                    bits or more), or DER certificates, one or more per file
          --signature-policy <p>    none (Xen 4.17: nothing checked), verify (a signature present must verify;
                                    unsigned or unknown-key payloads load, marked unverified) or require (only
                                    payloads a trusted key signed load); default: require with --trusted-keys,
                                    else none
        """ + "\n";

    /// <summary>
    /// The trust the options give: <c>--signature-policy</c> (default: require when <c>--trusted-keys</c> is given,
    /// else the profile's), over the keys of <c>--trusted-keys</c>. On failure <paramref name="code"/> is the exit code.
    /// </summary>
    public static bool TryTrust(string command, ArgReader a, TextWriter stderr, LivepatchProfile profile, out PayloadTrust trust, out int code) =>
        TryTrust(command, a.Value("--trusted-keys"), a.Value("--signature-policy"), profile.SignaturePolicy, stderr, out trust, out code);

    /// <summary>The environment variable that gives the operator's commands their trusted keys by default.</summary>
    public const string TrustedKeysVariable = "XEN_LIVEPATCH_TRUSTED_KEYS";

    /// <summary>The environment variable that gives the operator's commands their signature policy by default.</summary>
    public const string PolicyVariable = "XEN_LIVEPATCH_SIGNATURE_POLICY";

    /// <summary>Their help lines (install, converge, apply-installed: the tool checks before it stores or uploads).</summary>
    public const string HostHelp = """
          --trusted-keys <dir>   check each payload's signature against these keys (PEM certificates or public keys)
                                 before storing or uploading it (default $XEN_LIVEPATCH_TRUSTED_KEYS)
          --signature-policy <p> none, verify (a signature present must verify) or require (only payloads a trusted
                                 key signed); default $XEN_LIVEPATCH_SIGNATURE_POLICY, else require with trusted
                                 keys, else none
        """ + "\n";

    /// <summary>
    /// The trust of the operator's commands: the options, else the environment (so that the boot unit, install and
    /// converge share one policy, from the unit's EnvironmentFile /etc/default/xen-livepatch).
    /// </summary>
    public static bool TryHostTrust(string command, ArgReader a, TextWriter stderr, out PayloadTrust trust, out int code) =>
        TryTrust(command, a.Value("--trusted-keys") ?? NonEmpty(TrustedKeysVariable), a.Value("--signature-policy") ?? NonEmpty(PolicyVariable),
            SignaturePolicy.None, stderr, out trust, out code);

    private static string? NonEmpty(string variable) => Environment.GetEnvironmentVariable(variable) is { Length: > 0 } v ? v : null;

    private static bool TryTrust(string command, string? dir, string? policyName, SignaturePolicy fallback, TextWriter stderr, out PayloadTrust trust, out int code)
    {
        trust = PayloadTrust.None;
        code = 0;
        var policy = dir != null ? SignaturePolicy.Require : fallback;
        if (policyName != null && !SignatureNames.TryParsePolicy(policyName, out policy))
        {
            code = CommandInput.Usage(command, stderr, $"unknown --signature-policy '{policyName}': use none, verify or require");
            return false;
        }
        if (dir == null)
        {
            if (policy != SignaturePolicy.None)
            {
                code = CommandInput.Usage(command, stderr, $"--signature-policy {policy.Name()} checks signatures against trusted keys: give --trusted-keys <dir>");
                return false;
            }
            trust = new PayloadTrust(policy, TrustStore.Empty);
            return true;
        }
        if (!TryKeys(command, dir, stderr, out var keys, out code))
            return false;
        trust = new PayloadTrust(policy, keys);
        return true;
    }

    /// <summary>Reads a trusted-keys directory (or file); on failure writes why (exit 66).</summary>
    public static bool TryKeys(string command, string dir, TextWriter stderr, out TrustStore keys, out int code)
    {
        code = 0;
        try
        {
            keys = TrustStore.Load(dir);
            return true;
        }
        catch (TrustStoreException e)
        {
            stderr.Write($"xen-livepatch {command}: {e.Message}\n");
            keys = TrustStore.Empty;
            code = OwnExitCodes.NoInput;
            return false;
        }
    }

    /// <summary>"appended PKCS#7 (Linux module signature), RSA PKCS#1 v1.5 / SHA-256, RSA-2048, signer issuer CN=..., serial ...".</summary>
    public static string Describe(SignatureInfo info)
    {
        var c = CultureInfo.InvariantCulture;
        if (info.Problem != SignatureFailure.None)
            return $"{info.FormatName}: {info.Problem.Name()}: {info.ProblemText}";
        string signer = info.Signer != null ? $", signer {info.Signer}" : ", names no signer (any trusted key of that size may verify it)";
        return string.Create(c, $"{info.FormatName}, {info.Algorithm}, {info.SignatureLength * 8}-bit signature{signer}");
    }

    /// <summary>What the signature covers, for the text outputs.</summary>
    public static string Coverage(SignatureInfo info) => info switch
    {
        { Appended: { } a } => string.Create(CultureInfo.InvariantCulture, $"signs the first {a.ContentLength} bytes (the ELF payload); {a.Pkcs7Length}-byte PKCS#7, 12-byte header and trailer after them"),
        { Note: { } n } => string.Create(CultureInfo.InvariantCulture, $"signs the whole file with its {n.SignatureLength} signature bytes at 0x{n.SignatureOffset:x} zeroed"),
        _ => "",
    };

    /// <summary>"verified: by ..." or "not verified (unknown key): ...".</summary>
    public static string Verdict(SignatureVerdict v) => v.Verified ? $"verified {v.Detail}" : $"not verified ({v.Failure.Name()}): {v.Detail}";

    /// <summary>Writes <c>"signature": {...}</c> (or null when unsigned).</summary>
    public static void WriteJson(Utf8JsonWriter w, SignatureInfo? info, SignatureVerdict? verdict, string name = "signature")
    {
        if (info == null)
        {
            w.WriteNull(name);
            return;
        }
        w.WriteStartObject(name);
        w.WriteString("format", info.FormatId);
        w.WriteString("format_name", info.FormatName);
        if (info.NoteLayout is { } layout) w.WriteString("note_layout", layout == NoteLayout.Header ? "xenserver" : "type-encoded"); else w.WriteNull("note_layout");
        if (info.Algorithm is { } alg) w.WriteString("algorithm", alg); else w.WriteNull("algorithm");
        if (info.SignatureLength > 0) w.WriteNumber("bits", info.SignatureLength * 8); else w.WriteNull("bits");
        if (info.Signer is { } signer) w.WriteString("signer", signer); else w.WriteNull("signer");
        if (info.Covered.IsEmpty) w.WriteNull("covered_bytes"); else w.WriteNumber("covered_bytes", info.Covered.Length);
        if (info.Problem == SignatureFailure.None)
        {
            w.WriteNull("problem");
        }
        else
        {
            w.WriteStartObject("problem");
            w.WriteString("reason", info.Problem.Name());
            w.WriteString("message", info.ProblemText);
            w.WriteEndObject();
        }
        WriteVerification(w, verdict);
        w.WriteEndObject();
    }

    /// <summary>Writes <c>"verification": {...}</c> (null when no keys were consulted).</summary>
    public static void WriteVerification(Utf8JsonWriter w, SignatureVerdict? verdict)
    {
        if (verdict == null)
        {
            w.WriteNull("verification");
            return;
        }
        w.WriteStartObject("verification");
        w.WriteBoolean("verified", verdict.Verified);
        if (verdict.Verified) w.WriteNull("reason"); else w.WriteString("reason", verdict.Failure.Name());
        w.WriteString("detail", verdict.Detail);
        if (verdict.Key is { } key)
        {
            w.WriteString("key", key.ToString());
            w.WriteString("key_id", key.Id);
        }
        else
        {
            w.WriteNull("key");
            w.WriteNull("key_id");
        }
        w.WriteEndObject();
    }
}
