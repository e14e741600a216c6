using System.Globalization;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using XenLivepatch.Abi;
using XenLivepatch.Elf;
using XenLivepatch.Hypervisor;
using XenLivepatch.Signing;
using XenLivepatch.TestKit;

namespace XenLivepatch.Bench;

/// <summary>
/// Signature verification at UPLOAD for a payload of 2040 KiB (the largest synthetic payload that uploads under
/// Xen's 2 MiB limit once signed), RSA-2048 with SHA-256, in both formats: the check alone (parse, hash,
/// RSA; for the note also the zeroed copy the loader gets), beside SHA-256 of the same bytes, and the whole
/// UPLOAD under policy require beside policy none. Goal: verification within 5 ms.
/// </summary>
internal static class SignatureBench
{
    public static void Run(TextWriter o)
    {
        byte[] payload = SyntheticPayload.Build(510, 2040 * 1024);
        using var rsa = RSA.Create(2048);
        var request = new CertificateRequest("CN=xlp bench signer", rsa, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        using var self = request.CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddDays(1));
        using var certificate = X509CertificateLoader.LoadCertificate(self.RawData);
        using var key = SigningKey.FromKey(RSA.Create(rsa.ExportParameters(true)), X509CertificateLoader.LoadCertificate(self.RawData));
        var trust = new PayloadTrust(SignaturePolicy.Require, TrustStore.Of([TrustedKey.FromCertificate(certificate, "bench")]));
        o.WriteLine($"Signature verification, RSA-2048 / SHA-256, payload {payload.Length:N0} bytes (goal: 5 ms)");
        o.WriteLine($"{"what",-44} {"p50 ms",8} {"p99 ms",8}");
        Row(o, "SHA-256 of the payload alone", Harness.Sample(minRuns: 300, minSeconds: 2, action: () => SHA256.HashData(payload)));
        foreach (var format in new[] { SignatureFormat.Appended, SignatureFormat.Note })
        {
            byte[] signed = PayloadSigner.Sign(payload, key, format);
            if (!trust.Check(signed).Accepted)
                throw new InvalidOperationException("the benchmark payload does not verify");
            string name = format == SignatureFormat.Appended ? "appended PKCS#7" : "ELF note";
            Row(o, $"verify, {name}", Harness.Sample(minRuns: 300, minSeconds: 2, action: () =>
            {
                if (!trust.Check(signed).Accepted)
                    throw new InvalidOperationException("verification failed");
            }));
            Row(o, $"UPLOAD+UNLOAD, {name}, policy require", Upload(signed, trust));
        }
        Row(o, "UPLOAD+UNLOAD, unsigned, policy none", Upload(payload, PayloadTrust.None));
    }

    private static double[] Upload(byte[] payload, PayloadTrust trust)
    {
        if (!OfflineHypervisor.TryFromXenSyms(SyntheticPayload.XenSyms(1000), SyntheticPayload.BuildId, ElfMachine.X86_64, out var target, out string? why))
            throw new InvalidOperationException(why);
        var core = new LivepatchCore(LivepatchProfile.Xen417, X86_64Arch.Instance, target, target) { Trust = trust };
        return Harness.Sample(minRuns: 300, minSeconds: 2, action: () =>
        {
            if (core.Upload("bench", payload) is { } e)
                throw new InvalidOperationException("upload failed: " + e);
            core.Action("bench", LivepatchAction.Unload);
        });
    }

    private static void Row(TextWriter o, string what, double[] samples) =>
        o.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"{what,-44} {Harness.Percentile(samples, 50) * 1e3,8:F2} {Harness.Percentile(samples, 99) * 1e3,8:F2}"));
}
