using XenLivepatch.TestKit;

namespace XenLivepatch.Signing.Tests;

/// <summary>
/// The three policies: none passes every byte through unchecked (Xen 4.17); require accepts only what a trusted
/// key verifies; verify refuses bad and malformed signatures and lets through, recorded as not verified, what it
/// cannot check (as Linux loads modules without enforcement).
/// </summary>
public class PolicyTests
{
    private static byte[] Unsigned => Fixtures.Payload;
    private static byte[] SignedByA(SignatureFormat f) => Fixtures.Sign(Fixtures.Payload, SigningKeys.A, f);
    private static byte[] SignedByB(SignatureFormat f) => Fixtures.Sign(Fixtures.Payload, SigningKeys.B, f);

    private static byte[] BadSignature(SignatureFormat f)
    {
        byte[] b = SignedByA(f);
        b[200] ^= 0x20; // inside the ELF, inside the signed content
        return b;
    }

    [Fact]
    public void None_accepts_everything_and_hands_the_loader_every_byte()
    {
        var trust = new PayloadTrust(SignaturePolicy.None, Fixtures.Trust(SigningKeys.A));
        foreach (byte[] p in new[] { Unsigned, SignedByB(SignatureFormat.Appended), BadSignature(SignatureFormat.Note), [1, 2, 3] })
        {
            var d = trust.Check(p);
            Assert.True(d.Accepted);
            Assert.Null(d.Verdict);
            Assert.Equal(p, d.Payload.ToArray());
        }
    }

    [Theory]
    [InlineData(SignatureFormat.Appended)]
    [InlineData(SignatureFormat.Note)]
    public void Require_refuses_unsigned_wrong_key_and_bad_signature_with_the_reason(SignatureFormat format)
    {
        var trust = Fixtures.Require(SigningKeys.A);
        var ok = trust.Check(SignedByA(format));
        Assert.True(ok.Accepted);
        Assert.True(ok.Verdict!.Verified);
        Assert.Contains("xlp test signer a", ok.Verdict.Detail, StringComparison.Ordinal);

        var unsigned = trust.Check(Unsigned);
        Assert.False(unsigned.Accepted);
        Assert.Equal(SignatureFailure.Unsigned, unsigned.Verdict!.Failure);
        Assert.StartsWith("signature check failed (unsigned): ", unsigned.Refusal, StringComparison.Ordinal);
        Assert.EndsWith("(signature policy require)", unsigned.Refusal, StringComparison.Ordinal);

        var wrongKey = trust.Check(SignedByB(format));
        Assert.False(wrongKey.Accepted);
        Assert.Equal(SignatureFailure.UnknownKey, wrongKey.Verdict!.Failure);
        Assert.Contains("(unknown key)", wrongKey.Refusal, StringComparison.Ordinal);

        var bad = trust.Check(BadSignature(format));
        Assert.False(bad.Accepted);
        Assert.Equal(SignatureFailure.BadSignature, bad.Verdict!.Failure);
        Assert.Contains("xlp test signer a", bad.Refusal, StringComparison.Ordinal);

        // With both keys trusted, B's signature verifies, by B.
        var both = Fixtures.Require(SigningKeys.A, SigningKeys.B).Check(SignedByB(format));
        Assert.True(both.Accepted);
        Assert.Contains("xlp test signer b", both.Verdict!.Detail, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(SignatureFormat.Appended)]
    [InlineData(SignatureFormat.Note)]
    public void Verify_refuses_only_what_is_provably_wrong(SignatureFormat format)
    {
        var trust = new PayloadTrust(SignaturePolicy.Verify, Fixtures.Trust(SigningKeys.A));
        var unsigned = trust.Check(Unsigned);
        Assert.True(unsigned.Accepted);
        Assert.Equal(SignatureFailure.Unsigned, unsigned.Verdict!.Failure);
        Assert.Equal(Unsigned, unsigned.Payload.ToArray());

        var wrongKey = trust.Check(SignedByB(format));
        Assert.True(wrongKey.Accepted);
        Assert.Equal(SignatureFailure.UnknownKey, wrongKey.Verdict!.Failure);
        // The signature block is not handed to the loader even when the key is unknown.
        if (format == SignatureFormat.Appended)
            Assert.Equal(Unsigned, wrongKey.Payload.ToArray());

        Assert.False(trust.Check(BadSignature(format)).Accepted);
        Assert.True(trust.Check(SignedByA(format)).Verdict!.Verified);
    }

    [Fact]
    public void Malformed_and_unsupported_blocks_are_named_as_such()
    {
        var trust = Fixtures.Require(SigningKeys.A);
        byte[] signed = SignedByA(SignatureFormat.Appended);

        byte[] idType = (byte[])signed.Clone();
        idType[^38] = 1; // id_type: PKEY_ID_X509, the seed's older form
        var d = trust.Check(idType);
        Assert.Equal(SignatureFailure.UnsupportedAlgorithm, d.Verdict!.Failure);
        Assert.Contains("(unsupported algorithm)", d.Refusal, StringComparison.Ordinal);
        Assert.True(new PayloadTrust(SignaturePolicy.Verify, trust.Keys).Check(idType).Accepted);

        byte[] length = (byte[])signed.Clone();
        length[^29] = 0xff; // sig_len's low byte: the PKCS#7 now starts elsewhere
        d = trust.Check(length);
        Assert.Equal(SignatureFailure.Malformed, d.Verdict!.Failure);
        Assert.Contains("(malformed signature block)", d.Refusal, StringComparison.Ordinal);
        Assert.False(new PayloadTrust(SignaturePolicy.Verify, trust.Keys).Check(length).Accepted);

        byte[] huge = (byte[])signed.Clone();
        huge[^32] = 0x7f; // sig_len far larger than the file
        Assert.Equal(SignatureFailure.Malformed, trust.Check(huge).Verdict!.Failure);

        byte[] hash = SignedByA(SignatureFormat.Note);
        Assert.Equal(SignatureFailure.None, NoteSignature.TryFind(hash, out var block, out _));
        hash[block.SignatureOffset - 5] = 1; // the note's hash byte: not SHA-256
        Assert.Equal(SignatureFailure.UnsupportedAlgorithm, trust.Check(hash).Verdict!.Failure);
    }

    [Fact]
    public void Policy_names_parse()
    {
        foreach (string name in SignatureNames.PolicyNames)
        {
            Assert.True(SignatureNames.TryParsePolicy(name, out var p));
            Assert.Equal(name, p.Name());
        }
        Assert.False(SignatureNames.TryParsePolicy("enforce", out _));
    }
}
