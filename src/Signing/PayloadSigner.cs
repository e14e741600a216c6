using System.Security.Cryptography;
using System.Formats.Asn1;
using System.Security.Cryptography.X509Certificates;
using XenLivepatch.Elf;

namespace XenLivepatch.Signing;

/// <summary>A payload cannot be signed as asked; the message says why and what to do.</summary>
public sealed class SigningException : Exception
{
    /// <summary>Creates the exception.</summary>
    public SigningException() : base("the payload cannot be signed") { }
    /// <summary>Creates the exception with a message.</summary>
    public SigningException(string message) : base(message) { }
    /// <summary>Creates the exception with a message and its cause.</summary>
    public SigningException(string message, Exception innerException) : base(message, innerException) { }
}

/// <summary>
/// A signer's RSA private key (2048 bits or more) and, for the appended format, its X.509 certificate. Read from
/// PEM: the key file may hold the certificate too, as Linux's <c>signing_key.pem</c> does.
/// </summary>
public sealed class SigningKey : IDisposable
{
    private SigningKey(RSA key, X509Certificate2? certificate)
    {
        Key = key;
        Certificate = certificate;
    }

    /// <summary>The private key.</summary>
    public RSA Key { get; }

    /// <summary>The certificate (null when none was given).</summary>
    public X509Certificate2? Certificate { get; }

    /// <summary>Reads the key from <paramref name="keyPath"/> and the certificate from <paramref name="certPath"/> (or the key file).</summary>
    /// <exception cref="SigningException">A file cannot be read or does not hold what it should.</exception>
    public static SigningKey Load(string keyPath, string? certPath)
    {
        ArgumentNullException.ThrowIfNull(keyPath);
        string keyText = ReadText(keyPath);
        var rsa = ReadPrivateKey(keyText, keyPath);
        X509Certificate2? certificate = null;
        try
        {
            if (certPath != null)
                certificate = ReadCertificate(ReadText(certPath), certPath)
                    ?? throw new SigningException($"{certPath}: no PEM CERTIFICATE in it");
            else
                certificate = ReadCertificate(keyText, keyPath);
            return FromKey(rsa, certificate, certPath ?? keyPath);
        }
        catch
        {
            rsa.Dispose();
            certificate?.Dispose();
            throw;
        }
    }

    /// <summary>A signing key from keys in memory (the certificate's key must be <paramref name="key"/>'s).</summary>
    public static SigningKey FromKey(RSA key, X509Certificate2? certificate, string source = "the certificate")
    {
        ArgumentNullException.ThrowIfNull(key);
        if (key.KeySize < TrustedKey.MinKeySize)
            throw new SigningException($"the key is RSA-{key.KeySize}; sign with an RSA key of {TrustedKey.MinKeySize} bits or more");
        if (certificate != null)
        {
            using var certKey = certificate.GetRSAPublicKey()
                ?? throw new SigningException($"{source}: the certificate {certificate.Subject} does not hold an RSA key");
            if (!certKey.ExportRSAPublicKey().AsSpan().SequenceEqual(key.ExportRSAPublicKey()))
                throw new SigningException($"{source}: the certificate {certificate.Subject} is not the private key's (give the certificate made for that key)");
        }
        return new SigningKey(key, certificate);
    }

    /// <summary>The signature's length: the modulus' length in bytes.</summary>
    public int SignatureLength => (Key.KeySize + 7) / 8;

    /// <inheritdoc/>
    public void Dispose()
    {
        Key.Dispose();
        Certificate?.Dispose();
    }

    private static string ReadText(string path)
    {
        try
        {
            return File.ReadAllText(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new SigningException($"cannot read {path}: {e.Message}", e);
        }
    }

    private static RSA ReadPrivateKey(string text, string path)
    {
        var rest = text.AsSpan();
        while (PemEncoding.TryFind(rest, out var fields))
        {
            string label = rest[fields.Label].ToString();
            var pem = rest[fields.Location];
            string base64 = rest[fields.Base64Data].ToString();
            rest = rest[fields.Location.End..];
            if (label == "ENCRYPTED PRIVATE KEY")
                throw new SigningException($"{path}: the private key is encrypted; decrypt it first (openssl pkey -in {path} -out KEY.pem)");
            if (label == "EC PRIVATE KEY")
                throw new SigningException($"{path}: an EC private key; payloads are signed with RSA keys of {TrustedKey.MinKeySize} bits or more");
            if (label is not ("PRIVATE KEY" or "RSA PRIVATE KEY"))
                continue;
            if (label == "PRIVATE KEY" && Pkcs8Algorithm(Convert.FromBase64String(base64)) is { } algorithm && algorithm != CmsOids.RsaEncryption)
                throw new SigningException($"{path}: an {TrustedKey.KeyAlgorithm(algorithm)} private key; payloads are signed with RSA keys of {TrustedKey.MinKeySize} bits or more");
            var rsa = RSA.Create();
            try
            {
                rsa.ImportFromPem(pem);
                return rsa;
            }
            catch (Exception e) when (e is CryptographicException or ArgumentException)
            {
                rsa.Dispose();
                throw new SigningException($"{path}: not an RSA private key ({e.Message}); payloads are signed with RSA keys of {TrustedKey.MinKeySize} bits or more", e);
            }
        }
        throw new SigningException($"{path}: no PEM private key (PRIVATE KEY or RSA PRIVATE KEY) in it");
    }

    // PrivateKeyInfo ::= SEQUENCE { version INTEGER, privateKeyAlgorithm AlgorithmIdentifier, ... }
    private static string? Pkcs8Algorithm(byte[] der)
    {
        try
        {
            var info = new AsnReader(der, AsnEncodingRules.BER).ReadSequence();
            info.ReadInteger();
            return info.ReadSequence().ReadObjectIdentifier();
        }
        catch (AsnContentException)
        {
            return null;
        }
    }

    private static X509Certificate2? ReadCertificate(string text, string path)
    {
        var rest = text.AsSpan();
        while (PemEncoding.TryFind(rest, out var fields))
        {
            string label = rest[fields.Label].ToString();
            byte[] der = Convert.FromBase64String(rest[fields.Base64Data].ToString());
            rest = rest[fields.Location.End..];
            if (label != "CERTIFICATE")
                continue;
            try
            {
                return X509CertificateLoader.LoadCertificate(der);
            }
            catch (CryptographicException e)
            {
                throw new SigningException($"{path}: a CERTIFICATE that does not decode: {e.Message}", e);
            }
        }
        return null;
    }
}

/// <summary>
/// The detached CMS SignedData of a module signature, encoded as Linux's <c>sign-file</c> has OpenSSL encode it
/// (so that, RSA PKCS#1 v1.5 being deterministic, the same key and content give the same bytes): version 1 (3
/// with a key identifier), digestAlgorithms { sha256 }, encapContentInfo { data } without content, no
/// certificates, one SignerInfo { version, sid, sha256, rsaEncryption with NULL parameters (RFC 3370 §3.2),
/// signature }, no signed attributes.
/// </summary>
internal static class ModuleSignatureCms
{
    public static byte[] Encode(ReadOnlySpan<byte> content, X509Certificate2 certificate, RSA key, bool useKeyId)
    {
        byte[]? keyId = null;
        if (useKeyId)
        {
            keyId = certificate.Extensions["2.5.29.14"] is X509SubjectKeyIdentifierExtension ski
                ? ski.SubjectKeyIdentifierBytes.ToArray()
                : throw new SigningException($"the certificate {certificate.Subject} has no subjectKeyIdentifier to name the signer by");
        }
        byte[] signature = key.SignData(content, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        int version = useKeyId ? 3 : 1;
        var w = new AsnWriter(AsnEncodingRules.DER);
        using (w.PushSequence())
        {
            w.WriteObjectIdentifier(CmsOids.SignedData);
            using (w.PushSequence(new Asn1Tag(TagClass.ContextSpecific, 0, isConstructed: true)))
            using (w.PushSequence())
            {
                w.WriteInteger(version);
                using (w.PushSetOf())
                    WriteAlgorithm(w, CmsOids.Sha256, nullParameters: false);
                using (w.PushSequence())
                    w.WriteObjectIdentifier(CmsOids.Data);
                using (w.PushSetOf())
                using (w.PushSequence())
                {
                    w.WriteInteger(version);
                    if (keyId != null)
                    {
                        w.WriteOctetString(keyId, new Asn1Tag(TagClass.ContextSpecific, 0));
                    }
                    else
                    {
                        using (w.PushSequence())
                        {
                            w.WriteEncodedValue(certificate.IssuerName.RawData);
                            w.WriteInteger(certificate.SerialNumberBytes.Span);
                        }
                    }
                    WriteAlgorithm(w, CmsOids.Sha256, nullParameters: false);
                    WriteAlgorithm(w, CmsOids.RsaEncryption, nullParameters: true);
                    w.WriteOctetString(signature);
                }
            }
        }
        return w.Encode();
    }

    private static void WriteAlgorithm(AsnWriter w, string oid, bool nullParameters)
    {
        using (w.PushSequence())
        {
            w.WriteObjectIdentifier(oid);
            if (nullParameters)
                w.WriteNull();
        }
    }
}

/// <summary>
/// Signs payloads in either format. Signing a signed payload replaces its signature: the unsigned content is
/// what it signs, and nothing else of it changes.
/// </summary>
public static class PayloadSigner
{
    /// <summary>Signs <paramref name="payload"/> in <paramref name="format"/>.</summary>
    /// <exception cref="SigningException">The payload or the key does not allow it.</exception>
    public static byte[] Sign(ReadOnlyMemory<byte> payload, SigningKey key, SignatureFormat format) =>
        format == SignatureFormat.Appended ? SignAppended(payload, key) : SignNote(payload, key.Key);

    /// <summary>
    /// The appended format, as Linux's <c>sign-file</c> makes it, byte for byte: the content, a detached DER CMS
    /// SignedData (<see cref="ModuleSignatureCms"/>: SHA-256, RSA PKCS#1 v1.5, no signed attributes, no
    /// certificates, the signer named by issuer and serial number, or by subjectKeyIdentifier with
    /// <paramref name="useKeyId"/> as <c>sign-file -k</c> does), the 12-byte header and the trailer.
    /// </summary>
    public static byte[] SignAppended(ReadOnlyMemory<byte> payload, SigningKey key, bool useKeyId = false)
    {
        ArgumentNullException.ThrowIfNull(key);
        var certificate = key.Certificate
            ?? throw new SigningException("the appended (PKCS#7) format names the signer by its certificate: give --cert CERT.pem (or sign with --format note)");
        var content = AppendedSignature.Strip(payload);
        if (content.IsEmpty)
            throw new SigningException("the payload is empty");
        if (NoteSignature.TryFind(content, out _, out _) != SignatureFailure.Unsigned)
            throw new SigningException($"the payload carries a {NoteSignature.SectionName} section; re-sign it with --format note, or remove the section first (objcopy --remove-section {NoteSignature.SectionName})");
        byte[] pkcs7;
        try
        {
            pkcs7 = ModuleSignatureCms.Encode(content.Span, certificate, key.Key, useKeyId);
        }
        catch (CryptographicException e)
        {
            throw new SigningException($"the PKCS#7 signature could not be made: {e.Message}", e);
        }
        return AppendedSignature.Append(content.Span, pkcs7);
    }

    /// <summary>
    /// The note format: a <c>.note.Xen.signature</c> section in XenServer's layout holding an RSA PKCS#1 v1.5
    /// SHA-256 signature of the file with the signature bytes zeroed. A payload without the section gets it at
    /// its end (the section's data, a copy of the section name table with the new name, and the section header
    /// table with the new entry; every earlier byte stays where it was, only <c>e_shoff</c> and <c>e_shnum</c>
    /// change). A payload that has it gets a new signature in it.
    /// </summary>
    public static byte[] SignNote(ReadOnlyMemory<byte> payload, RSA key)
    {
        ArgumentNullException.ThrowIfNull(key);
        if (key.KeySize < TrustedKey.MinKeySize)
            throw new SigningException($"the key is RSA-{key.KeySize}; sign with an RSA key of {TrustedKey.MinKeySize} bits or more");
        int length = (key.KeySize + 7) / 8;
        var content = AppendedSignature.Strip(payload);
        if (!ElfFile.TryRead(content, out var elf, out var error))
            throw new SigningException($"the note format needs an ELF payload: {error.Message}");
        byte[] signed;
        NoteBlock block;
        switch (NoteSignature.TryFind(elf, out block, out string problem))
        {
            case SignatureFailure.Unsigned:
                signed = NoteSection.Add(elf, content.Length, length, out block);
                break;
            case SignatureFailure.None when NoteSection.IsOurs(elf, block):
                signed = NoteSection.Add(elf, NoteSection.OursStart(elf, block), length, out block);
                break;
            case SignatureFailure.None when block.SignatureLength == length:
                signed = content.ToArray();
                break;
            case SignatureFailure.None:
                throw new SigningException($"its {NoteSignature.SectionName} holds a {block.SignatureLength * 8}-bit signature and the key makes {length * 8}-bit ones; remove the section (objcopy --remove-section {NoteSignature.SectionName}) and sign again");
            default:
                throw new SigningException($"its {NoteSignature.SectionName} is not one this tool can replace ({problem}); remove it (objcopy --remove-section {NoteSignature.SectionName}) and sign again");
        }
        var window = signed.AsSpan(block.SignatureOffset, block.SignatureLength);
        window.Clear();
        byte[] signature = key.SignData(signed, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        signature.CopyTo(window);
        return signed;
    }
}
