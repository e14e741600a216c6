using XenLivepatch.TestKit;

namespace XenLivepatch.Signing.Tests;

/// <summary>What a trusted-keys directory may hold, and the errors that say what to put there instead.</summary>
public class TrustStoreTests
{
    [Fact]
    public void Certificates_public_keys_and_der_certificates_are_read()
    {
        string dir = Repo.TempDirectory("trusted");
        File.Copy(SigningKeys.A.Cert, Path.Combine(dir, "a.pem"));
        File.Copy(SigningKeys.B.PublicKey, Path.Combine(dir, "b.pub"));
        Tool.Run("openssl", "x509", "-in", SigningKeys.Get("big").Cert, "-outform", "DER", "-out", Path.Combine(dir, "signing_key.x509")).EnsureSuccess();
        Tool.Run("openssl", "rsa", "-in", SigningKeys.A.Key, "-RSAPublicKey_out", "-out", Path.Combine(dir, "a.rsapub")).EnsureSuccess();
        File.WriteAllText(Path.Combine(dir, ".hidden"), "not read");
        var store = TrustStore.Load(dir);
        Assert.Equal(4, store.Keys.Count);
        Assert.Contains(store.Keys, k => k.Certificate?.Subject == "CN=xlp test signer big" && k.KeySize == 4096);
        Assert.Equal(2, store.Keys.Count(k => k.Certificate == null));
        // A's certificate and A's bare RSA public key have the same key identifier.
        Assert.Equal(2, store.Keys.Count(k => k.KeyId.SequenceEqual(store.Keys.First(c => c.Certificate?.Subject == "CN=xlp test signer a").KeyId)));
    }

    [Theory]
    [InlineData("key", "private key")]
    [InlineData("weak", "2048")]
    [InlineData("ec", "ECDSA")]
    [InlineData("empty", "no PEM")]
    public void Unusable_files_are_refused_naming_the_file(string what, string expected)
    {
        string dir = Repo.TempDirectory("untrusted");
        string file = Path.Combine(dir, what + ".pem");
        switch (what)
        {
            case "key": File.Copy(SigningKeys.A.Key, file); break;
            case "weak": File.Copy(SigningKeys.Get("weak").Cert, file); break;
            case "ec": File.Copy(SigningKeys.Get("ec").Cert, file); break;
            default: File.WriteAllText(file, "-----BEGIN NOTHING-----\nAAAA\n-----END NOTHING-----\n"); break;
        }
        var e = Assert.Throws<TrustStoreException>(() => TrustStore.Load(dir));
        Assert.Contains(file, e.Message, StringComparison.Ordinal);
        Assert.Contains(expected, e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void An_empty_or_missing_directory_is_refused()
    {
        Assert.Contains("empty", Assert.Throws<TrustStoreException>(() => TrustStore.Load(Repo.TempDirectory("none"))).Message, StringComparison.Ordinal);
        Assert.Contains("no such", Assert.Throws<TrustStoreException>(() => TrustStore.Load("/nonexistent/keys")).Message, StringComparison.Ordinal);
    }
}
