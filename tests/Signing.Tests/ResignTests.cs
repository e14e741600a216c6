using XenLivepatch.TestKit;

namespace XenLivepatch.Signing.Tests;

/// <summary>Signing a signed payload replaces its signature and changes nothing else.</summary>
public class ResignTests
{
    [Theory]
    [InlineData(SignatureFormat.Appended, "a", "b")]
    [InlineData(SignatureFormat.Note, "a", "b")]
    [InlineData(SignatureFormat.Note, "a", "big")]
    [InlineData(SignatureFormat.Note, "big", "a")]
    public void Resigning_equals_signing_the_unsigned_payload(SignatureFormat format, string first, string second)
    {
        byte[] once = Fixtures.Sign(Fixtures.Payload, SigningKeys.Get(first), format);
        byte[] twice = Fixtures.Sign(once, SigningKeys.Get(second), format);
        Assert.Equal(Fixtures.Sign(Fixtures.Payload, SigningKeys.Get(second), format), twice);
        Assert.True(PayloadSignatures.Verify(twice, Fixtures.Trust(SigningKeys.Get(second))).Verified);
        Assert.Equal(SignatureFailure.UnknownKey, PayloadSignatures.Verify(twice, Fixtures.Trust(SigningKeys.Get(first))).Failure);
    }

    [Fact]
    public void Signing_keeps_every_byte_of_the_unsigned_payload_in_place()
    {
        byte[] appended = Fixtures.Sign(Fixtures.Payload, SigningKeys.A, SignatureFormat.Appended);
        Assert.Equal(Fixtures.Payload, appended[..Fixtures.Payload.Length]);
        byte[] note = Fixtures.Sign(Fixtures.Payload, SigningKeys.A, SignatureFormat.Note);
        // Only e_shoff (8 bytes at 40) and e_shnum (2 bytes at 60) of the ELF header differ.
        var differing = Enumerable.Range(0, Fixtures.Payload.Length).Where(i => note[i] != Fixtures.Payload[i]).ToList();
        Assert.All(differing, i => Assert.True(i is >= 40 and < 48 or >= 60 and < 62, $"byte {i} changed"));
    }

    [Fact]
    public void A_note_signed_payload_resigned_in_the_appended_format_is_refused_with_what_to_do()
    {
        byte[] note = Fixtures.Sign(Fixtures.Payload, SigningKeys.A, SignatureFormat.Note);
        var e = Assert.Throws<SigningException>(() => Fixtures.Sign(note, SigningKeys.A, SignatureFormat.Appended));
        Assert.Contains("--format note", e.Message, StringComparison.Ordinal);
        // The other way converts: the appended signature goes, the note comes.
        byte[] appended = Fixtures.Sign(Fixtures.Payload, SigningKeys.A, SignatureFormat.Appended);
        Assert.Equal(note, Fixtures.Sign(appended, SigningKeys.A, SignatureFormat.Note));
    }

    [Fact]
    public void Keys_that_are_too_small_or_not_rsa_or_not_the_certificates_are_refused()
    {
        var weak = SigningKeys.Get("weak");
        Assert.Contains("2048", Assert.Throws<SigningException>(() => SigningKey.Load(weak.Key, weak.Cert)).Message, StringComparison.Ordinal);
        var ec = SigningKeys.Get("ec");
        Assert.Contains("EC", Assert.Throws<SigningException>(() => SigningKey.Load(ec.Key, null)).Message, StringComparison.Ordinal);
        Assert.Contains("not the private key's", Assert.Throws<SigningException>(() => SigningKey.Load(SigningKeys.A.Key, SigningKeys.B.Cert)).Message, StringComparison.Ordinal);
        using var keyOnly = SigningKey.Load(SigningKeys.A.Key, null);
        Assert.Contains("--cert", Assert.Throws<SigningException>(() => PayloadSigner.SignAppended(Fixtures.Payload, keyOnly)).Message, StringComparison.Ordinal);
        Assert.Contains("ELF", Assert.Throws<SigningException>(() => PayloadSigner.SignNote(new byte[100], keyOnly.Key)).Message, StringComparison.Ordinal);

        // Linux's signing_key.pem holds the key and the certificate: one file is enough.
        string both = Path.Combine(Repo.TempDirectory("signing-key"), "signing_key.pem");
        File.WriteAllText(both, File.ReadAllText(SigningKeys.A.Key) + File.ReadAllText(SigningKeys.A.Cert));
        using var linux = SigningKey.Load(both, null);
        Assert.NotNull(linux.Certificate);
    }
}
