using XenLivepatch.TestKit;

namespace XenLivepatch.Signing.Tests;

/// <summary>Payloads and keys the signature tests share: a real payload built by Xen's recipe, signers made by openssl.</summary>
internal static class Fixtures
{
    private static readonly Lazy<byte[]> s_payload = new(() =>
        File.ReadAllBytes(LivepatchFixtures.BuildPayload(LivepatchFixtures.Image(), "hello", ["hello_world.c"], "--modinfo", "A=B")));

    /// <summary>xen_hello_world as Xen's gcc/objcopy/ld recipe builds it (unsigned, about 5 KB).</summary>
    public static byte[] Payload => s_payload.Value;

    /// <summary>The payload's file (for the external tools).</summary>
    public static string Write(string directory, string name, byte[] bytes)
    {
        string path = Path.Combine(directory, name);
        File.WriteAllBytes(path, bytes);
        return path;
    }

    public static SigningKey Key(TestSigner s) => SigningKey.Load(s.Key, s.Cert);

    public static TrustStore Trust(params TestSigner[] signers) => TrustStore.Of(signers.SelectMany(s => TrustStore.Load(s.Cert).Keys));

    public static byte[] Sign(byte[] payload, TestSigner signer, SignatureFormat format)
    {
        using var key = Key(signer);
        return PayloadSigner.Sign(payload, key, format);
    }

    public static PayloadTrust Require(params TestSigner[] signers) => new(SignaturePolicy.Require, Trust(signers));
}
