using System.Formats.Asn1;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace XenLivepatch.Signing;

/// <summary>How a CMS signer names its key: by its certificate's issuer and serial number, or by key identifier.</summary>
public sealed class CmsSignerId
{
    /// <summary>The issuer's DER <c>Name</c> (null for a key identifier).</summary>
    public byte[]? Issuer { get; init; }

    /// <summary>The serial number as DER INTEGER contents, big-endian (null for a key identifier).</summary>
    public byte[]? Serial { get; init; }

    /// <summary>The subjectKeyIdentifier (null for issuer and serial).</summary>
    public byte[]? KeyId { get; init; }

    /// <summary>True when the signer is named by issuer and serial number (what <c>sign-file</c> does without <c>-k</c>).</summary>
    public bool IsIssuerAndSerial => Issuer != null;

    /// <summary>"issuer CN=..., serial 07a2..." or "key id 1a2b...".</summary>
    public override string ToString() => IsIssuerAndSerial
        ? $"issuer {DistinguishedName(Issuer!)}, serial {Convert.ToHexStringLower(Serial!)}"
        : $"key id {Convert.ToHexStringLower(KeyId!)}";

    /// <summary>A DER Name as text (RFC 2253 order as .NET prints it), or its hex when it does not decode.</summary>
    internal static string DistinguishedName(byte[] der)
    {
        try
        {
            string name = new X500DistinguishedName(der).Name;
            return name.Length > 0 ? name : "(empty name)";
        }
        catch (CryptographicException)
        {
            return $"(undecodable name {Convert.ToHexStringLower(der)})";
        }
    }
}

/// <summary>
/// The one signer of a detached CMS SignedData (RFC 5652) as a module signature carries it: which key, which
/// digest and signature algorithms, the signature value and, when present, the signed attributes.
/// </summary>
public sealed class CmsSignature
{
    /// <summary>The signer's key.</summary>
    public required CmsSignerId Signer { get; init; }
    /// <summary>The digest algorithm's OID.</summary>
    public required string DigestOid { get; init; }
    /// <summary>The signature algorithm's OID (rsaEncryption, or sha*WithRSAEncryption).</summary>
    public required string SignatureOid { get; init; }
    /// <summary>The signature value.</summary>
    public required byte[] Value { get; init; }
    /// <summary>
    /// The signed attributes re-encoded as the DER <c>SET OF</c> the signature covers (RFC 5652 §5.4), or null
    /// when the signature covers the content directly (<c>sign-file</c>'s default).
    /// </summary>
    public byte[]? SignedAttributes { get; init; }
    /// <summary>The messageDigest attribute (with <see cref="SignedAttributes"/>).</summary>
    public byte[]? MessageDigest { get; init; }

    /// <summary>The digest algorithm, when it is one we verify.</summary>
    public HashAlgorithmName? Hash => CmsOids.Hash(DigestOid);
}

/// <summary>Object identifiers used by module signatures.</summary>
public static class CmsOids
{
    /// <summary>id-signedData.</summary>
    public const string SignedData = "1.2.840.113549.1.7.2";
    /// <summary>id-data.</summary>
    public const string Data = "1.2.840.113549.1.7.1";
    /// <summary>id-contentType (signed attribute).</summary>
    public const string ContentType = "1.2.840.113549.1.9.3";
    /// <summary>id-messageDigest (signed attribute).</summary>
    public const string MessageDigest = "1.2.840.113549.1.9.4";
    /// <summary>rsaEncryption (PKCS#1 v1.5 in CMS).</summary>
    public const string RsaEncryption = "1.2.840.113549.1.1.1";
    /// <summary>sha256WithRSAEncryption.</summary>
    public const string Sha256WithRsa = "1.2.840.113549.1.1.11";
    /// <summary>sha384WithRSAEncryption.</summary>
    public const string Sha384WithRsa = "1.2.840.113549.1.1.12";
    /// <summary>sha512WithRSAEncryption.</summary>
    public const string Sha512WithRsa = "1.2.840.113549.1.1.13";
    /// <summary>SHA-256.</summary>
    public const string Sha256 = "2.16.840.1.101.3.4.2.1";
    /// <summary>SHA-384.</summary>
    public const string Sha384 = "2.16.840.1.101.3.4.2.2";
    /// <summary>SHA-512.</summary>
    public const string Sha512 = "2.16.840.1.101.3.4.2.3";

    /// <summary>The digest for an OID we verify with (SHA-256/384/512, as Linux accepts); null otherwise.</summary>
    public static HashAlgorithmName? Hash(string oid) => oid switch
    {
        Sha256 => HashAlgorithmName.SHA256,
        Sha384 => HashAlgorithmName.SHA384,
        Sha512 => HashAlgorithmName.SHA512,
        _ => null,
    };

    /// <summary>A readable name for a digest or signature OID.</summary>
    public static string Name(string oid) => oid switch
    {
        Sha256 => "SHA-256",
        Sha384 => "SHA-384",
        Sha512 => "SHA-512",
        "2.16.840.1.101.3.4.2.4" => "SHA-224",
        "1.3.14.3.2.26" => "SHA-1",
        "1.2.840.113549.2.5" => "MD5",
        RsaEncryption => "RSA PKCS#1 v1.5",
        Sha256WithRsa => "RSA PKCS#1 v1.5 with SHA-256",
        Sha384WithRsa => "RSA PKCS#1 v1.5 with SHA-384",
        Sha512WithRsa => "RSA PKCS#1 v1.5 with SHA-512",
        "1.2.840.113549.1.1.10" => "RSASSA-PSS",
        "1.2.840.10045.4.3.2" => "ECDSA with SHA-256",
        "1.2.840.10045.4.3.3" => "ECDSA with SHA-384",
        "1.2.840.10045.2.1" => "ECDSA",
        "1.3.101.112" => "Ed25519",
        _ => oid,
    };

    /// <summary>The digest a sha*WithRSAEncryption OID implies; null for rsaEncryption and others.</summary>
    internal static string? DigestOf(string signatureOid) => signatureOid switch
    {
        Sha256WithRsa => Sha256,
        Sha384WithRsa => Sha384,
        Sha512WithRsa => Sha512,
        _ => null,
    };
}

/// <summary>
/// A parser of the DER PKCS#7 a module signature carries, for hostile input: DER only (definite lengths, minimal
/// encodings; System.Formats.Asn1 checks every length against what encloses it), a fixed structure read field by
/// field (no recursion into values it does not need), nothing left over at any level, exactly one signer, no
/// embedded content. Everything it does not understand is <see cref="SignatureFailure.Malformed"/> or
/// <see cref="SignatureFailure.UnsupportedAlgorithm"/>, never an exception.
/// <para>
/// The RSA signature covers the content (or the signed attributes), not the SignedData around it, so every
/// field outside the signature has one accepted value: the versions are those RFC 5652 fixes for the signer's
/// form (1 for issuer and serial, 3 for a key identifier), digestAlgorithms is the signer's digest algorithm
/// alone, the signature algorithm is rsaEncryption, and nothing goes unused (no certificates, CRLs or unsigned
/// attributes: the verifier trusts keys, not chains, and <c>sign-file</c> embeds none). A changed byte anywhere
/// in the block is therefore either refused here or changes what the signature is checked against.
/// </para>
/// </summary>
public static class CmsParser
{
    /// <summary>The longest signature value accepted (an 8192-bit RSA key).</summary>
    public const int MaxSignatureLength = 1024;

    private static readonly Asn1Tag s_context0 = new(TagClass.ContextSpecific, 0);
    private static readonly Asn1Tag s_context1 = new(TagClass.ContextSpecific, 1);
    private static readonly Asn1Tag s_context0Constructed = new(TagClass.ContextSpecific, 0, isConstructed: true);

    /// <summary>Parses <paramref name="der"/>; on failure <paramref name="problem"/> says what is wrong, where.</summary>
    public static SignatureFailure TryParse(ReadOnlyMemory<byte> der, out CmsSignature? signature, out string problem)
    {
        signature = null;
        try
        {
            return Parse(der, out signature, out problem);
        }
        catch (AsnContentException e)
        {
            problem = $"the PKCS#7 is not valid DER: {e.Message}";
            return SignatureFailure.Malformed;
        }
    }

    private static SignatureFailure Parse(ReadOnlyMemory<byte> der, out CmsSignature? signature, out string problem)
    {
        signature = null;
        var outer = new AsnReader(der, AsnEncodingRules.DER);
        var contentInfo = outer.ReadSequence();
        if (outer.HasData)
            return Malformed(out problem, "bytes follow the PKCS#7 ContentInfo inside its declared length");
        string contentType = contentInfo.ReadObjectIdentifier();
        if (contentType != CmsOids.SignedData)
            return Malformed(out problem, $"the PKCS#7 content type is {contentType}, not signedData");
        var explicitContent = contentInfo.ReadSequence(s_context0Constructed);
        contentInfo.ThrowIfNotEmpty();
        var signedData = explicitContent.ReadSequence();
        explicitContent.ThrowIfNotEmpty();

        if (!signedData.TryReadInt32(out int version))
            return Malformed(out problem, "the SignedData version is not a small integer");
        var digestAlgorithms = signedData.ReadSetOf(skipSortOrderValidation: true);
        var digestAlgorithm = digestAlgorithms.ReadEncodedValue();
        if (digestAlgorithms.HasData)
            return Malformed(out problem, "the SignedData lists more than one digest algorithm; a payload signature has one signer");

        var encap = signedData.ReadSequence();
        string eContentType = encap.ReadObjectIdentifier();
        if (eContentType != CmsOids.Data)
            return Malformed(out problem, $"the signed content type is {eContentType}, not data");
        if (encap.HasData)
            return Malformed(out problem, "the PKCS#7 carries its own content; a payload signature is detached");

        if (signedData.HasData && signedData.PeekTag().HasSameClassAndValue(s_context0))
        {
            problem = "the PKCS#7 carries certificates; payload signatures name a trusted key and embed none (as sign-file makes them)";
            return SignatureFailure.UnsupportedAlgorithm;
        }
        if (signedData.HasData && signedData.PeekTag().HasSameClassAndValue(s_context1))
        {
            problem = "the PKCS#7 carries revocation lists; payload signatures embed none";
            return SignatureFailure.UnsupportedAlgorithm;
        }

        var signerInfos = signedData.ReadSetOf(skipSortOrderValidation: true);
        signedData.ThrowIfNotEmpty();
        if (!signerInfos.HasData)
            return Malformed(out problem, "the PKCS#7 has no signer");
        var si = signerInfos.ReadSequence();
        if (signerInfos.HasData)
        {
            problem = "the PKCS#7 has more than one signer; a payload signature has one";
            return SignatureFailure.UnsupportedAlgorithm;
        }

        if (!si.TryReadInt32(out int siVersion))
            return Malformed(out problem, "the SignerInfo version is not a small integer");
        CmsSignerId signer;
        var sidTag = si.PeekTag();
        if (sidTag.HasSameClassAndValue(Asn1Tag.Sequence))
        {
            var ias = si.ReadSequence();
            var issuerTag = ias.PeekTag();
            if (!issuerTag.HasSameClassAndValue(Asn1Tag.Sequence))
                return Malformed(out problem, "the signer's issuer is not a Name");
            byte[] issuer = ias.ReadEncodedValue().ToArray();
            byte[] serial = ias.ReadIntegerBytes().ToArray();
            ias.ThrowIfNotEmpty();
            if (serial.Length > 64)
                return Malformed(out problem, $"the signer's serial number is {serial.Length} bytes long");
            signer = new CmsSignerId { Issuer = issuer, Serial = serial };
        }
        else if (sidTag.HasSameClassAndValue(s_context0) && !sidTag.IsConstructed)
        {
            byte[] keyId = si.ReadOctetString(s_context0);
            if (keyId.Length is 0 or > 64)
                return Malformed(out problem, $"the signer's key identifier is {keyId.Length} bytes long");
            signer = new CmsSignerId { KeyId = keyId };
        }
        else
        {
            return Malformed(out problem, "the signer is named neither by issuer and serial nor by key identifier");
        }

        // RFC 5652 §5.1 and §5.3: version 1 with issuer and serial, 3 with a key identifier, in both places.
        int expected = signer.IsIssuerAndSerial ? 1 : 3;
        if (version != expected || siVersion != expected)
            return Malformed(out problem, $"the SignedData and SignerInfo versions are {version} and {siVersion}; a signer named by {(signer.IsIssuerAndSerial ? "issuer and serial number" : "key identifier")} has version {expected}");
        var signerDigest = si.PeekEncodedValue();
        string digestOid = ReadAlgorithm(si, out bool digestParams);
        if (digestParams)
            return Malformed(out problem, "the digest algorithm has parameters other than NULL");
        if (!digestAlgorithm.Span.SequenceEqual(signerDigest.Span))
            return Malformed(out problem, "the SignedData's digest algorithm is not its signer's");

        byte[]? signedAttributes = null;
        byte[]? messageDigest = null;
        if (si.HasData && si.PeekTag().HasSameClassAndValue(s_context0))
        {
            var raw = si.ReadEncodedValue();
            if (!TryReadSignedAttributes(raw, out messageDigest, out problem))
                return SignatureFailure.Malformed;
            // The signature covers the attributes as a universal SET OF (RFC 5652 §5.4): the same bytes
            // with the [0] IMPLICIT tag replaced by SET.
            signedAttributes = raw.ToArray();
            signedAttributes[0] = 0x31;
        }

        string signatureOid = ReadAlgorithm(si, out bool signatureParams);
        byte[] value = si.ReadOctetString();
        if (si.HasData && si.PeekTag().HasSameClassAndValue(s_context1))
        {
            problem = "the SignerInfo has unsigned attributes; payload signatures have none";
            return SignatureFailure.UnsupportedAlgorithm;
        }
        si.ThrowIfNotEmpty();
        if (value.Length is 0 or > MaxSignatureLength)
            return Malformed(out problem, $"the signature value is {value.Length} bytes (1 to {MaxSignatureLength} accepted)");

        signature = new CmsSignature
        {
            Signer = signer,
            DigestOid = digestOid,
            SignatureOid = signatureOid,
            Value = value,
            SignedAttributes = signedAttributes,
            MessageDigest = messageDigest,
        };
        if (signature.Hash == null)
        {
            problem = $"the digest algorithm is {CmsOids.Name(digestOid)}; SHA-256, SHA-384 and SHA-512 are accepted";
            return SignatureFailure.UnsupportedAlgorithm;
        }
        // Only rsaEncryption, as sign-file and OpenSSL write it: sha256WithRSAEncryption differs from it in one
        // byte of the OID and verifies the same signature, so accepting both would leave that byte unchecked.
        if (signatureOid != CmsOids.RsaEncryption)
        {
            problem = $"the signature algorithm is {CmsOids.Name(signatureOid)}; rsaEncryption (RSA PKCS#1 v1.5) is accepted";
            return SignatureFailure.UnsupportedAlgorithm;
        }
        if (signatureParams)
            return Malformed(out problem, "the RSA signature algorithm has parameters other than NULL");
        problem = "";
        return SignatureFailure.None;
    }

    // AlgorithmIdentifier ::= SEQUENCE { algorithm OID, parameters ANY OPTIONAL }; true in hasParameters when
    // parameters other than NULL are present.
    private static string ReadAlgorithm(AsnReader reader, out bool hasParameters)
    {
        var seq = reader.ReadSequence();
        string oid = seq.ReadObjectIdentifier();
        hasParameters = false;
        if (seq.HasData)
        {
            if (seq.PeekTag().HasSameClassAndValue(Asn1Tag.Null))
                seq.ReadNull();
            else
            {
                seq.ReadEncodedValue();
                hasParameters = true;
            }
        }
        seq.ThrowIfNotEmpty();
        return oid;
    }

    // SignedAttributes: contentType must be data and messageDigest present, each once with one value.
    private static bool TryReadSignedAttributes(ReadOnlyMemory<byte> raw, out byte[]? messageDigest, out string problem)
    {
        messageDigest = null;
        var set = new AsnReader(raw, AsnEncodingRules.DER).ReadSetOf(skipSortOrderValidation: true, expectedTag: s_context0Constructed);
        bool contentType = false;
        while (set.HasData)
        {
            var attribute = set.ReadSequence();
            string oid = attribute.ReadObjectIdentifier();
            var values = attribute.ReadSetOf(skipSortOrderValidation: true);
            attribute.ThrowIfNotEmpty();
            if (oid == CmsOids.ContentType)
            {
                if (contentType)
                    return Fail(out problem, "the signed attributes repeat contentType");
                string type = values.ReadObjectIdentifier();
                if (values.HasData || type != CmsOids.Data)
                    return Fail(out problem, "the contentType attribute is not one value, data");
                contentType = true;
            }
            else if (oid == CmsOids.MessageDigest)
            {
                if (messageDigest != null)
                    return Fail(out problem, "the signed attributes repeat messageDigest");
                messageDigest = values.ReadOctetString();
                if (values.HasData)
                    return Fail(out problem, "the messageDigest attribute has more than one value");
            }
            else
            {
                while (values.HasData)
                    values.ReadEncodedValue();
            }
        }
        if (!contentType || messageDigest == null)
            return Fail(out problem, "signed attributes without contentType and messageDigest");
        problem = "";
        return true;
    }

    private static bool Fail(out string problem, string text)
    {
        problem = text;
        return false;
    }

    private static SignatureFailure Malformed(out string problem, string text)
    {
        problem = text;
        return SignatureFailure.Malformed;
    }
}
