using System.Globalization;
using XenLivepatch.Signing;

namespace XenLivepatch.Cli;

/// <summary>
/// Signing as the commands that write payloads offer it (<c>build</c>, and any other that takes
/// <see cref="Options"/>): read the options with <see cref="TryCreate"/>, sign the bytes before writing them with
/// <see cref="TrySign"/>, print <see cref="Describe"/>.
/// </summary>
internal sealed class PayloadSigning : IDisposable
{
    private PayloadSigning(SigningKey key, SignatureFormat format, bool useKeyId)
    {
        Key = key;
        Format = format;
        UseKeyId = useKeyId;
    }

    /// <summary>The options a payload-writing command takes to sign its output.</summary>
    public static readonly string[] Options = ["--sign-key", "--sign-cert", "--sign-format"];

    /// <summary>Their help lines.</summary>
    public const string Help = "\n" + """
          --sign-key <key.pem>      sign the payload with this RSA private key (see 'xen-livepatch sign --help')
          --sign-cert <cert.pem>    its certificate: the appended (PKCS#7) format names the signer by it
          --sign-format <format>    appended (default with a certificate) or note (default without one)
        """ + "\n";

    public SigningKey Key { get; }

    public SignatureFormat Format { get; }

    public bool UseKeyId { get; }

    /// <summary>
    /// Reads <c>--sign-key</c>, <c>--sign-cert</c> and <c>--sign-format</c> (or, for <c>sign</c>, <paramref name="keyOption"/>
    /// and the others); <paramref name="signing"/> is null when no key is given. On failure <paramref name="code"/>
    /// is the exit code and the message is written.
    /// </summary>
    public static bool TryCreate(string command, ArgReader a, TextWriter stderr, out PayloadSigning? signing, out int code,
        string keyOption = "--sign-key", string certOption = "--sign-cert", string formatOption = "--sign-format", bool useKeyId = false)
    {
        signing = null;
        code = 0;
        string? keyPath = a.Value(keyOption);
        string? certPath = a.Value(certOption);
        string? formatName = a.Value(formatOption);
        if (keyPath == null)
        {
            if (certPath == null && formatName == null)
                return true;
            code = CommandInput.Usage(command, stderr, $"{(certPath != null ? certOption : formatOption)} signs the payload: give the private key with {keyOption}");
            return false;
        }
        SignatureFormat? format = formatName switch
        {
            null => null,
            "appended" => SignatureFormat.Appended,
            "note" => SignatureFormat.Note,
            _ => (SignatureFormat)(-1),
        };
        if (format == (SignatureFormat)(-1))
        {
            code = CommandInput.Usage(command, stderr, $"unknown {formatOption} '{formatName}': use appended or note");
            return false;
        }
        SigningKey key;
        try
        {
            key = SigningKey.Load(keyPath, certPath);
        }
        catch (SigningException e)
        {
            stderr.Write($"xen-livepatch {command}: {e.Message}\n");
            code = OwnExitCodes.NoInput;
            return false;
        }
        var chosen = format ?? (key.Certificate != null ? SignatureFormat.Appended : SignatureFormat.Note);
        if (chosen == SignatureFormat.Appended && key.Certificate == null)
        {
            key.Dispose();
            code = CommandInput.Usage(command, stderr, $"the appended format names the signer by its certificate: give {certOption} <cert.pem> (or {formatOption} note)");
            return false;
        }
        signing = new PayloadSigning(key, chosen, useKeyId);
        return true;
    }

    /// <summary>Signs <paramref name="payload"/>; on failure writes why and returns false.</summary>
    public bool TrySign(string command, byte[] payload, TextWriter stderr, out byte[] signed)
    {
        byte[]? made = SignOrNull(payload, out string? problem);
        signed = made ?? [];
        if (made == null)
            stderr.Write($"xen-livepatch {command}: cannot sign: {problem}\n");
        return made != null;
    }

    /// <summary>The signed payload, or null with the reason in <paramref name="problem"/>.</summary>
    public byte[]? SignOrNull(byte[] payload, out string? problem)
    {
        problem = null;
        try
        {
            return Format == SignatureFormat.Appended
                ? PayloadSigner.SignAppended(payload, Key, UseKeyId)
                : PayloadSigner.SignNote(payload, Key.Key);
        }
        catch (SigningException e)
        {
            problem = e.Message;
            return null;
        }
    }

    /// <summary>"signed (appended PKCS#7 ..., RSA PKCS#1 v1.5 / SHA-256) by CN=..." for <paramref name="signed"/>.</summary>
    public string Describe(byte[] signed)
    {
        PayloadSignatures.TryInspect(signed, out var info);
        string by = Key.Certificate != null ? $"{Key.Certificate.Subject} (RSA-{Key.Key.KeySize})" : $"an RSA-{Key.Key.KeySize} key";
        return string.Create(CultureInfo.InvariantCulture, $"signed: {info!.FormatName}, {info.Algorithm}, by {by}");
    }

    public void Dispose() => Key.Dispose();
}

/// <summary><c>xen-livepatch sign</c>: signs a payload in either format.</summary>
internal static class SignCommand
{
    public const string Help = """
        Usage: xen-livepatch sign <payload> --key <key.pem> [--cert <cert.pem>] [--format appended|note] [-o <out>]
        Signs a payload, for a hypervisor that checks signatures (the sandbox's --signature-policy). Signing a
        signed payload replaces its signature; nothing else of the payload changes. Xen 4.17 checks no
        signature and loads payloads signed in either format as it loads unsigned ones.
          --key <key.pem>        the RSA private key (2048 bits or more), PEM; the file may hold the certificate
                                 too, as Linux's signing_key.pem does
          --cert <cert.pem>      the key's X.509 certificate (PEM): the appended format names the signer by it
          --format appended      (the default with a certificate) the seed design's appended signature, Linux's
                                 module signature: a detached PKCS#7 (SHA-256, RSA, no signed attributes), a
                                 12-byte header and "~Module signature appended~\n", byte for byte as Linux's
                                 sign-file makes it
          --format note          (the default without a certificate) an ELF note .note.Xen.signature in
                                 XenServer's layout: RSA PKCS#1 v1.5 over SHA-256 of the file with the signature
                                 bytes zeroed
          --key-id               appended: name the signer by its subjectKeyIdentifier, not by issuer and serial
                                 number (sign-file -k)
          -o, --output <file>    where to write the signed payload (default: over <payload>)
        Exit status: 0 when signed; 64 for a wrong command line; 65 when the payload cannot be signed so (the
        message says why and what to do); 66 when an input cannot be read; 73 when the output cannot be written.

        """;

    private static readonly Dictionary<string, string> s_aliases = new(StringComparer.Ordinal) { ["-o"] = "--output" };

    public static int Run(string[] args, TextWriter stdout, TextWriter stderr, ToolOptions options)
    {
        if (args.Contains("--help") || args.Contains("-h"))
        {
            stdout.Write(Help);
            return 0;
        }
        var a = ArgReader.Parse(args, ["--key", "--cert", "--format", "--output"], ["--key-id"], [], out string? argError, s_aliases);
        if (a == null || a.Positional.Count != 1)
            return CommandInput.Usage("sign", stderr, argError ?? (a!.Positional.Count == 0 ? "which payload? give its file" : $"one payload at a time (got {a.Positional.Count})"));
        if (a.Value("--key") == null)
            return CommandInput.Usage("sign", stderr, "give the private key: --key <key.pem>");
        if (a.Flag("--key-id") && a.Value("--format") == "note")
            return CommandInput.Usage("sign", stderr, "--key-id names the signer in the appended format; the note names none");
        string file = a.Positional[0];
        string output = a.Value("--output") ?? file;
        if (!PayloadSigning.TryCreate("sign", a, stderr, out var signing, out int code, "--key", "--cert", "--format", a.Flag("--key-id")))
            return code;
        using var _ = signing;
        if (!CommandInput.TryRead("sign", file, stderr, out byte[] payload))
            return OwnExitCodes.NoInput;
        bool wasSigned = PayloadSignatures.TryInspect(payload, out var before);
        if (!signing!.TrySign("sign", payload, stderr, out byte[] signed))
            return OwnExitCodes.DataError;
        if (!CommandInput.TryWrite("sign", output, signed, stderr))
            return OwnExitCodes.CantCreate;
        if (options.Json)
        {
            var o = new System.Text.Json.Nodes.JsonObject
            {
                ["output"] = output,
                ["size"] = signed.Length,
                ["signature"] = signing.Describe(signed),
                ["replaced"] = wasSigned ? before!.FormatName : null,
            };
            stdout.Write(JsonEnvelope.Write(o));
            return 0;
        }
        stdout.Write(string.Create(CultureInfo.InvariantCulture, $"{output}: {signed.Length} bytes, {signing.Describe(signed)}\n"));
        if (wasSigned)
            stdout.Write($"  replaced its {before!.FormatName} signature\n");
        return 0;
    }
}
