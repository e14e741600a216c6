using System.Numerics;
using System.Security.Cryptography;

namespace XenLivepatch.Signing;

/// <summary>The two signature formats.</summary>
public enum SignatureFormat
{
    /// <summary>The seed design's appended signature: a detached PKCS#7 after the ELF, Linux's module layout.</summary>
    Appended,
    /// <summary>The ELF note <c>.note.Xen.signature</c> (XenServer, Xen's 2025 series).</summary>
    Note,
}

/// <summary>What a payload's signature block says, before any key is consulted (<c>xen-livepatch info</c>).</summary>
public sealed class SignatureInfo
{
    /// <summary>Appended or note.</summary>
    public required SignatureFormat Format { get; init; }
    /// <summary>The note's layout (note format only).</summary>
    public NoteLayout? NoteLayout { get; init; }
    /// <summary>Where the appended block lies (appended format, when its header is sound).</summary>
    public AppendedBlock? Appended { get; init; }
    /// <summary>Where the note signature lies (note format, when well-formed).</summary>
    public NoteBlock? Note { get; init; }
    /// <summary>The PKCS#7 signer (appended format, when it parsed).</summary>
    public CmsSignature? Cms { get; init; }
    /// <summary>
    /// The signed bytes, which are what the loader gets: the content before an appended block, or the file with
    /// a note's signature bytes zeroed. Empty when the block was not understood.
    /// </summary>
    public ReadOnlyMemory<byte> Covered { get; init; }
    /// <summary>None when the block is well-formed and in a supported algorithm; else Malformed or UnsupportedAlgorithm.</summary>
    public SignatureFailure Problem { get; init; }
    /// <summary>What is wrong with it (with <see cref="Problem"/>).</summary>
    public string ProblemText { get; init; } = "";

    /// <summary>"appended PKCS#7 (Linux module signature)" or "ELF note .note.Xen.signature (...)".</summary>
    public string FormatName => Format == SignatureFormat.Appended
        ? "appended PKCS#7 (Linux module signature)"
        : NoteLayout == Signing.NoteLayout.TypeEncoded
            ? $"ELF note {NoteSignature.SectionName} (type-encoded, Xen's 2025 series v3)"
            : $"ELF note {NoteSignature.SectionName} (XenServer layout)";

    /// <summary>"appended" or "note".</summary>
    public string FormatId => Format == SignatureFormat.Appended ? "appended" : "note";

    /// <summary>"RSA PKCS#1 v1.5 / SHA-256", or null when the block did not parse that far.</summary>
    public string? Algorithm => Format == SignatureFormat.Note
        ? Note != null ? "RSA PKCS#1 v1.5 / SHA-256" : null
        : Cms != null ? $"{CmsOids.Name(Cms.SignatureOid == CmsOids.RsaEncryption ? CmsOids.RsaEncryption : Cms.SignatureOid)} / {CmsOids.Name(Cms.DigestOid)}" : null;

    /// <summary>How the signature names its signer: "issuer ..., serial ..." or "key id ..."; null for the note (it names none).</summary>
    public string? Signer => Cms?.Signer.ToString();

    /// <summary>The signature value (null when the block did not parse that far).</summary>
    public byte[]? SignatureValue { get; init; }

    /// <summary>The signature value's length in bytes (the RSA modulus length); 0 when unknown.</summary>
    public int SignatureLength => SignatureValue?.Length ?? 0;
}

/// <summary>The outcome of checking a payload's signature against trusted keys.</summary>
public sealed class SignatureVerdict
{
    /// <summary>None when verified; otherwise why not.</summary>
    public required SignatureFailure Failure { get; init; }
    /// <summary>The details: which key, what differs.</summary>
    public required string Detail { get; init; }
    /// <summary>The signature block (null when unsigned).</summary>
    public SignatureInfo? Signature { get; init; }
    /// <summary>The trusted key that verified it, or that the signature names (bad signature).</summary>
    public TrustedKey? Key { get; init; }

    /// <summary>True when it verified.</summary>
    public bool Verified => Failure == SignatureFailure.None;

    /// <summary>"verified by ..." or "bad signature: ...".</summary>
    public override string ToString() => Verified ? $"verified: {Detail}" : $"{Failure.Name()}: {Detail}";
}

/// <summary>Finds, parses and verifies payload signatures of both formats.</summary>
public static class PayloadSignatures
{
    /// <summary>
    /// Reads the signature block of <paramref name="data"/>. An appended trailer wins over a note (the note is then
    /// part of the signed content). Returns false for an unsigned payload.
    /// </summary>
    public static bool TryInspect(ReadOnlyMemory<byte> data, out SignatureInfo? info)
    {
        var appended = AppendedSignature.TryFind(data.Span, out var block, out string problem);
        if (appended != SignatureFailure.Unsigned)
        {
            if (appended != SignatureFailure.None)
            {
                info = new SignatureInfo { Format = SignatureFormat.Appended, Problem = appended, ProblemText = problem };
                return true;
            }
            var cms = CmsParser.TryParse(data.Slice(block.Pkcs7Offset, block.Pkcs7Length), out var signature, out problem);
            info = new SignatureInfo
            {
                Format = SignatureFormat.Appended,
                Appended = block,
                Cms = signature,
                SignatureValue = signature?.Value,
                Covered = data[..block.ContentLength],
                Problem = cms,
                ProblemText = problem,
            };
            return true;
        }
        var note = NoteSignature.TryFind(data, out var noteBlock, out problem);
        if (note == SignatureFailure.Unsigned)
        {
            info = null;
            return false;
        }
        info = note == SignatureFailure.None
            ? new SignatureInfo
            {
                Format = SignatureFormat.Note,
                NoteLayout = noteBlock.Layout,
                Note = noteBlock,
                SignatureValue = data.Span.Slice(noteBlock.SignatureOffset, noteBlock.SignatureLength).ToArray(),
                Covered = NoteSignature.Covered(data.Span, noteBlock),
            }
            : new SignatureInfo { Format = SignatureFormat.Note, Problem = note, ProblemText = problem };
        return true;
    }

    /// <summary>Checks the signature of <paramref name="data"/> against <paramref name="keys"/>.</summary>
    public static SignatureVerdict Verify(ReadOnlyMemory<byte> data, TrustStore keys)
    {
        ArgumentNullException.ThrowIfNull(keys);
        if (!TryInspect(data, out var info))
            return new SignatureVerdict { Failure = SignatureFailure.Unsigned, Detail = "the payload carries no signature (no appended signature, no .note.Xen.signature)" };
        if (info!.Problem != SignatureFailure.None)
            return new SignatureVerdict { Failure = info.Problem, Detail = info.ProblemText, Signature = info };
        return info.Format == SignatureFormat.Appended ? VerifyAppended(info, keys) : VerifyNote(info, keys);
    }

    private static SignatureVerdict VerifyAppended(SignatureInfo info, TrustStore keys)
    {
        var cms = info.Cms!;
        var hash = cms.Hash!.Value;
        var content = info.Covered.Span;
        byte[] digest = Digest(hash, content);
        byte[] signed = digest;
        if (cms.SignedAttributes != null)
        {
            if (!cms.MessageDigest.AsSpan().SequenceEqual(digest))
                return Verdict(info, SignatureFailure.BadSignature, $"the messageDigest attribute does not match the {CmsOids.Name(cms.DigestOid)} of the payload's {content.Length} signed bytes");
            signed = Digest(hash, cms.SignedAttributes);
        }

        var named = keys.Keys.Where(k => k.Matches(cms.Signer)).ToList();
        foreach (var key in named)
        {
            if (Verifies(key, signed, cms.Value, hash))
                return Verdict(info, SignatureFailure.None, $"by {key}", key);
        }
        if (named.Count > 0)
            return Verdict(info, SignatureFailure.BadSignature,
                $"the signature by {named[0]} does not match the payload's {content.Length} signed bytes", named[0]);
        // A bare public key has no issuer and serial number: it matches signers named by key identifier
        // (sign-file -k) only, so that no byte of the block goes unchecked.
        string hint = cms.Signer.IsIssuerAndSerial && keys.Keys.Any(k => k.Certificate == null)
            ? "; a trusted public key without its certificate matches only signatures that name it by key identifier (sign-file -k)"
            : "";
        return Verdict(info, SignatureFailure.UnknownKey, $"signed by {cms.Signer}, which is not a trusted key ({Trusted(keys)}){hint}");
    }

    private static SignatureVerdict VerifyNote(SignatureInfo info, TrustStore keys)
    {
        var block = info.Note!.Value;
        var covered = info.Covered.Span;
        byte[] digest = SHA256.HashData(covered);
        var candidates = keys.Keys.Where(k => k.ModulusLength == block.SignatureLength).ToList();
        if (candidates.Count == 0)
            return Verdict(info, SignatureFailure.UnknownKey, $"a {block.SignatureLength * 8}-bit RSA signature, and no trusted key is that size ({Trusted(keys)})");
        byte[] signature = info.SignatureValue!;
        foreach (var key in candidates)
        {
            if (Verifies(key, digest, signature, HashAlgorithmName.SHA256))
                return Verdict(info, SignatureFailure.None, $"by {key}", key);
        }
        // The note names no key. A signature that one of the keys made over other bytes still decodes, under that
        // key, to a PKCS#1 v1.5 SHA-256 encoding: then the bytes changed; otherwise the signer is someone else.
        foreach (var key in candidates)
        {
            if (IsPkcs1Sha256Encoding(key, signature))
                return Verdict(info, SignatureFailure.BadSignature, $"the signature by {key} does not match the payload's {covered.Length} signed bytes", key);
        }
        return Verdict(info, SignatureFailure.UnknownKey, $"no trusted key made this {block.SignatureLength * 8}-bit RSA signature ({Trusted(keys)})");
    }

    private static bool Verifies(TrustedKey key, byte[] hash, byte[] signature, HashAlgorithmName algorithm) =>
        signature.Length == key.ModulusLength && key.Rsa.VerifyHash(hash, signature, algorithm, RSASignaturePadding.Pkcs1);

    // RFC 8017 §9.2: EM = 0x00 0x01 PS (0xff...) 0x00 DigestInfo(SHA-256).
    private static bool IsPkcs1Sha256Encoding(TrustedKey key, byte[] signature)
    {
        var s = new BigInteger(signature, isUnsigned: true, isBigEndian: true);
        if (s >= key.Modulus)
            return false;
        byte[] m = BigInteger.ModPow(s, key.Exponent, key.Modulus).ToByteArray(isUnsigned: true, isBigEndian: true);
        ReadOnlySpan<byte> prefix = [0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05, 0x00, 0x04, 0x20];
        // The leading 0x00 is dropped by the conversion: m is one byte shorter than the modulus.
        int padding = key.ModulusLength - 3 - prefix.Length - 32;
        if (m.Length != key.ModulusLength - 1 || padding < 8 || m[0] != 0x01)
            return false;
        for (int i = 1; i <= padding; i++)
        {
            if (m[i] != 0xff)
                return false;
        }
        return m[padding + 1] == 0 && m.AsSpan(padding + 2, prefix.Length).SequenceEqual(prefix);
    }

    private static byte[] Digest(HashAlgorithmName hash, ReadOnlySpan<byte> data)
    {
        if (hash == HashAlgorithmName.SHA384)
            return SHA384.HashData(data);
        if (hash == HashAlgorithmName.SHA512)
            return SHA512.HashData(data);
        return SHA256.HashData(data);
    }

    private static string Trusted(TrustStore keys) => keys.Keys.Count switch
    {
        0 => "no key is trusted",
        1 => $"trusted: {keys.Keys[0]}",
        int n => $"{n} keys are trusted",
    };

    private static SignatureVerdict Verdict(SignatureInfo info, SignatureFailure failure, string detail, TrustedKey? key = null) =>
        new() { Failure = failure, Detail = detail, Signature = info, Key = key };
}
