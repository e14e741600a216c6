using System.Security.Cryptography;
using CsCheck;
using XenLivepatch.TestKit;

namespace XenLivepatch.Host.Tests;

/// <summary>The store's own SHA-256 (no libssl needed in dom0) gives the digests OpenSSL and sha256sum give.</summary>
public class Sha256Tests
{
    [Fact]
    public void Every_length_around_the_padding_boundaries_and_random_data_hash_as_OpenSSL_does()
    {
        for (int n = 0; n <= 200; n++)
        {
            byte[] data = [.. Enumerable.Range(0, n).Select(i => (byte)(i * 7 + n))];
            Assert.Equal(SHA256.HashData(data), Sha256.Hash(data));
        }
        Gen.Byte.Array[0, 5000].Sample(data => Assert.Equal(SHA256.HashData(data), Sha256.Hash(data)), iter: 500);
    }

    [Fact]
    public void A_payload_hashes_as_sha256sum_says()
    {
        string path = SandboxBuild.PayloadPath("xen_hello_world");
        string expected = Tool.Run("sha256sum", path).EnsureSuccess().Stdout.Split(' ')[0];
        Assert.Equal(expected, Convert.ToHexStringLower(Sha256.Hash(File.ReadAllBytes(path))));
        Assert.Equal("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", Convert.ToHexStringLower(Sha256.Hash([])));
    }
}
