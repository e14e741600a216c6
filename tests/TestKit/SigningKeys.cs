using System.Collections.Concurrent;

namespace XenLivepatch.TestKit;

/// <summary>A signer's files, made by openssl: the private key, its self-signed certificate and its public key.</summary>
/// <param name="Name">The signer's name (the certificate's CN is "xlp test signer NAME").</param>
/// <param name="Key">KEY.pem (PKCS#8).</param>
/// <param name="Cert">CERT.pem.</param>
/// <param name="PublicKey">PUB.pem (SubjectPublicKeyInfo).</param>
/// <param name="Directory">A directory holding only CERT.pem: a trusted-keys directory for this signer.</param>
public sealed record TestSigner(string Name, string Key, string Cert, string PublicKey, string Directory);

/// <summary>
/// Signers for the signature tests, made once per test process with openssl: "a" and "b" (RSA-2048), "big"
/// (RSA-4096), "weak" (RSA-1024) and "ec" (P-256, certificate only).
/// </summary>
public static class SigningKeys
{
    private static readonly ConcurrentDictionary<string, Lazy<TestSigner>> s_signers = new();
    private static readonly Lazy<string> s_root = new(() => Repo.TempDirectory("signers"));

    /// <summary>The signer <paramref name="name"/> (a, b, big, weak, ec).</summary>
    public static TestSigner Get(string name) => s_signers.GetOrAdd(name, n => new Lazy<TestSigner>(() => Make(n))).Value;

    /// <summary>RSA-2048 signer "a".</summary>
    public static TestSigner A => Get("a");

    /// <summary>RSA-2048 signer "b".</summary>
    public static TestSigner B => Get("b");

    private static TestSigner Make(string name)
    {
        string dir = Path.Combine(s_root.Value, name);
        System.IO.Directory.CreateDirectory(dir);
        string key = Path.Combine(dir, "key.pem"), cert = Path.Combine(dir, "cert.pem"), pub = Path.Combine(dir, "pub.pem");
        string[] algorithm = name switch
        {
            "big" => ["-newkey", "rsa:4096"],
            "weak" => ["-newkey", "rsa:1024"],
            "ec" => ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"],
            _ => ["-newkey", "rsa:2048"],
        };
        Tool.Run("openssl", ["req", "-x509", .. algorithm, "-keyout", key, "-out", cert, "-sha256", "-days", "3650", "-nodes",
            "-subj", $"/CN=xlp test signer {name}"]).EnsureSuccess();
        Tool.Run("openssl", "pkey", "-in", key, "-pubout", "-out", pub).EnsureSuccess();
        string trusted = Path.Combine(dir, "trusted");
        System.IO.Directory.CreateDirectory(trusted);
        File.Copy(cert, Path.Combine(trusted, "cert.pem"));
        return new TestSigner(name, key, cert, pub, trusted);
    }
}
