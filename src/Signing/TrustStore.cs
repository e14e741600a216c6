using System.Formats.Asn1;
using System.Numerics;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace XenLivepatch.Signing;

/// <summary>
/// A key the hypervisor trusts: an RSA public key, from an X.509 certificate (named by its issuer and serial
/// number and by its subjectKeyIdentifier) or bare (named by its key identifier only).
/// </summary>
public sealed class TrustedKey
{
    private TrustedKey(RSA rsa, string source, X509Certificate2? certificate)
    {
        Rsa = rsa;
        Source = source;
        Certificate = certificate;
        var p = rsa.ExportParameters(false);
        Modulus = new BigInteger(p.Modulus, isUnsigned: true, isBigEndian: true);
        Exponent = new BigInteger(p.Exponent, isUnsigned: true, isBigEndian: true);
        ModulusLength = p.Modulus!.Length;
        // RFC 5280 §4.2.1.2 method 1, as OpenSSL makes subjectKeyIdentifiers: SHA-1 of the subjectPublicKey
        // BIT STRING's contents, which for RSA is the RSAPublicKey DER.
#pragma warning disable CA5350 // An identifier, not a security property: the signature itself is checked with the key.
        KeyId = SHA1.HashData(rsa.ExportRSAPublicKey());
#pragma warning restore CA5350
        if (certificate != null)
        {
            Issuer = certificate.IssuerName.RawData;
            Serial = certificate.SerialNumberBytes.ToArray();
            if (certificate.Extensions[SubjectKeyIdOid] is X509SubjectKeyIdentifierExtension ski)
                SubjectKeyId = ski.SubjectKeyIdentifierBytes.ToArray();
        }
    }

    private const string SubjectKeyIdOid = "2.5.29.14";

    /// <summary>The smallest RSA key trusted.</summary>
    public const int MinKeySize = 2048;

    /// <summary>The public key.</summary>
    public RSA Rsa { get; }
    /// <summary>Where it came from (a file name).</summary>
    public string Source { get; }
    /// <summary>Its certificate, or null for a bare public key.</summary>
    public X509Certificate2? Certificate { get; }
    /// <summary>The certificate's issuer (DER), or null.</summary>
    public byte[]? Issuer { get; }
    /// <summary>The certificate's serial number (big-endian, as encoded), or null.</summary>
    public byte[]? Serial { get; }
    /// <summary>The certificate's subjectKeyIdentifier extension, or null.</summary>
    public byte[]? SubjectKeyId { get; }
    /// <summary>The key identifier computed from the key (SHA-1 of the RSAPublicKey).</summary>
    public byte[] KeyId { get; }
    /// <summary>The key's size in bits.</summary>
    public int KeySize => Rsa.KeySize;
    /// <summary>The modulus' length in bytes: the length of every signature the key makes.</summary>
    public int ModulusLength { get; }
    internal BigInteger Modulus { get; }
    internal BigInteger Exponent { get; }

    /// <summary>The key's identifier as hex (the subjectKeyIdentifier when the certificate has one).</summary>
    public string Id => Convert.ToHexStringLower(SubjectKeyId ?? KeyId);

    /// <summary>"CN=..., key id 1a2b..." for a certificate, "public key 1a2b... (file)" for a bare key.</summary>
    public override string ToString() => Certificate != null
        ? $"{Certificate.Subject} (key id {Id}, RSA-{KeySize})"
        : $"public key {Id} (RSA-{KeySize}, {Source})";

    /// <summary>True when a CMS signer names this key.</summary>
    public bool Matches(CmsSignerId signer)
    {
        if (signer.IsIssuerAndSerial)
        {
            return Issuer != null && Serial != null && Issuer.AsSpan().SequenceEqual(signer.Issuer)
                && new BigInteger(Serial, isBigEndian: true) == new BigInteger(signer.Serial, isBigEndian: true);
        }
        return (SubjectKeyId != null && SubjectKeyId.AsSpan().SequenceEqual(signer.KeyId)) || KeyId.AsSpan().SequenceEqual(signer.KeyId);
    }

    /// <summary>The key of an RSA certificate (2048 bits or more).</summary>
    /// <exception cref="TrustStoreException">It is not such a key.</exception>
    public static TrustedKey FromCertificate(X509Certificate2 certificate, string source)
    {
        var rsa = certificate.GetRSAPublicKey()
            ?? throw new TrustStoreException($"{source}: the certificate {certificate.Subject} holds a {KeyAlgorithm(certificate.PublicKey.Oid.Value)} key; RSA keys of {MinKeySize} bits or more are accepted");
        return Checked(new TrustedKey(rsa, source, certificate));
    }

    /// <summary>A bare RSA public key (2048 bits or more).</summary>
    /// <exception cref="TrustStoreException">It is smaller.</exception>
    public static TrustedKey FromPublicKey(RSA rsa, string source) => Checked(new TrustedKey(rsa, source, null));

    private static TrustedKey Checked(TrustedKey key) => key.KeySize >= MinKeySize
        ? key
        : throw new TrustStoreException($"{key.Source}: {key} is RSA-{key.KeySize}; keys of {MinKeySize} bits or more are accepted");

    internal static string KeyAlgorithm(string? oid) => oid switch
    {
        "1.2.840.10045.2.1" => "ECDSA",
        "1.3.101.112" => "Ed25519",
        "1.2.840.10040.4.1" => "DSA",
        "1.2.840.113549.1.1.10" => "RSASSA-PSS",
        _ => oid ?? "unknown",
    };
}

/// <summary>A trusted-keys file or directory cannot be used; the message names the file and what to do.</summary>
public sealed class TrustStoreException : Exception
{
    /// <summary>Creates the exception.</summary>
    public TrustStoreException() : base("the trusted keys cannot be read") { }
    /// <summary>Creates the exception with a message.</summary>
    public TrustStoreException(string message) : base(message) { }
    /// <summary>Creates the exception with a message and its cause.</summary>
    public TrustStoreException(string message, Exception innerException) : base(message, innerException) { }
}

/// <summary>
/// The keys a hypervisor trusts (the sandbox's <c>--trusted-keys DIR</c>, <c>check</c>'s too): PEM certificates,
/// PEM public keys (<c>PUBLIC KEY</c> or <c>RSA PUBLIC KEY</c>) and DER certificates (Linux's
/// <c>signing_key.x509</c>). Only RSA keys of 2048 bits or more; a file holding a private key is refused.
/// Certificates are trusted as they are, without chains or validity dates, as Linux trusts the keys built into it.
/// </summary>
public sealed class TrustStore
{
    private TrustStore(IReadOnlyList<TrustedKey> keys) => Keys = keys;

    /// <summary>No keys.</summary>
    public static TrustStore Empty { get; } = new([]);

    /// <summary>The keys, in the order read.</summary>
    public IReadOnlyList<TrustedKey> Keys { get; }

    /// <summary>Builds a store from keys already read.</summary>
    public static TrustStore Of(IEnumerable<TrustedKey> keys) => new([.. keys]);

    /// <summary>
    /// Reads every file of <paramref name="path"/> (a directory; its dot-files and subdirectories are skipped) or
    /// the one file <paramref name="path"/> names.
    /// </summary>
    /// <exception cref="TrustStoreException">A file cannot be read or holds no usable key; the store would be empty.</exception>
    public static TrustStore Load(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        string[] files;
        if (Directory.Exists(path))
        {
            files = [.. Directory.GetFiles(path).Where(f => !Path.GetFileName(f).StartsWith('.')).Order(StringComparer.Ordinal)];
            if (files.Length == 0)
                throw new TrustStoreException($"{path}: the trusted-keys directory is empty; put PEM certificates or public keys in it");
        }
        else if (File.Exists(path))
        {
            files = [path];
        }
        else
        {
            throw new TrustStoreException($"{path}: no such directory or file of trusted keys");
        }
        var keys = new List<TrustedKey>();
        foreach (string f in files)
        {
            byte[] bytes;
            try
            {
                bytes = File.ReadAllBytes(f);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                throw new TrustStoreException($"{f}: cannot read it: {e.Message}", e);
            }
            keys.AddRange(Read(bytes, f));
        }
        return new TrustStore(keys);
    }

    /// <summary>The keys in one file's contents (PEM, or a DER certificate).</summary>
    /// <exception cref="TrustStoreException">It holds a private key, or no usable key.</exception>
    public static IReadOnlyList<TrustedKey> Read(ReadOnlySpan<byte> contents, string source)
    {
        var keys = new List<TrustedKey>();
        if (contents.IndexOf("-----BEGIN "u8) < 0)
        {
            keys.Add(ReadDer(contents, source));
            return keys;
        }
        string text = System.Text.Encoding.ASCII.GetString(contents);
        var rest = text.AsSpan();
        while (PemEncoding.TryFind(rest, out var fields))
        {
            string label = rest[fields.Label].ToString();
            byte[] der = Convert.FromBase64String(rest[fields.Base64Data].ToString());
            rest = rest[fields.Location.End..];
            switch (label)
            {
                case "CERTIFICATE":
                    keys.Add(TrustedKey.FromCertificate(LoadCertificate(der, source), source));
                    break;
                case "PUBLIC KEY":
                    keys.Add(TrustedKey.FromPublicKey(ImportPublicKey(der, source), source));
                    break;
                case "RSA PUBLIC KEY":
                    keys.Add(TrustedKey.FromPublicKey(Import(source, r => r.ImportRSAPublicKey(der, out _)), source));
                    break;
                case "PRIVATE KEY" or "RSA PRIVATE KEY" or "ENCRYPTED PRIVATE KEY" or "EC PRIVATE KEY":
                    throw new TrustStoreException($"{source}: holds a private key; the trusted keys are certificates or public keys only (openssl x509 -pubkey -noout -in CERT, or the certificate itself)");
            }
        }
        if (keys.Count == 0)
            throw new TrustStoreException($"{source}: no PEM CERTIFICATE, PUBLIC KEY or RSA PUBLIC KEY in it");
        return keys;
    }

    private static TrustedKey ReadDer(ReadOnlySpan<byte> der, string source)
    {
        try
        {
            return TrustedKey.FromCertificate(X509CertificateLoader.LoadCertificate(der), source);
        }
        catch (CryptographicException)
        {
            // Not a certificate: a DER SubjectPublicKeyInfo, or nothing usable.
        }
        try
        {
            return TrustedKey.FromPublicKey(ImportPublicKey(der.ToArray(), source), source);
        }
        catch (TrustStoreException)
        {
            throw new TrustStoreException($"{source}: neither PEM nor a DER certificate or public key");
        }
    }

    private static X509Certificate2 LoadCertificate(byte[] der, string source)
    {
        try
        {
            return X509CertificateLoader.LoadCertificate(der);
        }
        catch (CryptographicException e)
        {
            throw new TrustStoreException($"{source}: a CERTIFICATE that does not decode: {e.Message}", e);
        }
    }

    private static RSA ImportPublicKey(byte[] spki, string source)
    {
        string? algorithm;
        try
        {
            var reader = new AsnReader(spki, AsnEncodingRules.DER).ReadSequence().ReadSequence();
            algorithm = reader.ReadObjectIdentifier();
        }
        catch (AsnContentException e)
        {
            throw new TrustStoreException($"{source}: a PUBLIC KEY that does not decode: {e.Message}", e);
        }
        if (algorithm != CmsOids.RsaEncryption)
            throw new TrustStoreException($"{source}: a {TrustedKey.KeyAlgorithm(algorithm)} public key; RSA keys of {TrustedKey.MinKeySize} bits or more are accepted");
        return Import(source, r => r.ImportSubjectPublicKeyInfo(spki, out _));
    }

    private static RSA Import(string source, Action<RSA> import)
    {
        var rsa = RSA.Create();
        try
        {
            import(rsa);
            return rsa;
        }
        catch (CryptographicException e)
        {
            rsa.Dispose();
            throw new TrustStoreException($"{source}: an RSA public key that does not decode: {e.Message}", e);
        }
    }
}
