using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using XenLivepatch.Abi;
using XenLivepatch.Control;
using XenLivepatch.Hypervisor;
using XenLivepatch.Sandbox;
using XenLivepatch.Signing;

namespace XenLivepatch.Cli;

/// <summary>
/// The livepatch operations the demo needs, made as a toolstack makes them: the control library's client
/// encodes each one as the <c>xen_sysctl</c> bytes of the hypercall (interface version probed as on real Xen)
/// and the sandbox's sysctl handler decodes them, over the in-process transport. The handler answers
/// synchronously, so the tasks are complete when they return.
/// </summary>
internal sealed class DemoSysctlClient
{
    private readonly LivepatchClient _client;

    private DemoSysctlClient(LivepatchClient client) => _client = client;

    public static DemoSysctlClient? Open(SandboxHost host, out string? problem)
    {
        var handler = host.Handler;
        var opened = InProcessTransport.OpenAsync(
            (sysctl, buffers) => handler.Handle(sysctl, new GuestBuffers(buffers), privileged: true),
            description: "the sandbox hypervisor in this process").GetAwaiter().GetResult();
        problem = opened.Problem;
        if (opened.Transport is not InProcessTransport transport)
            return null;
        // The sandbox's report of signature checks, as its socket gives it (not part of the sysctl).
        transport.SignatureStatus = name => host.Core.Find(name) is { } p
            ? PayloadSignatureStatus.FromFields(SignatureCheck.Status(host.Core.Trust, p.Signature).ToDictionary(f => f.Key, f => f.Value, StringComparer.Ordinal))
            : null;
        return new DemoSysctlClient(new LivepatchClient(transport));
    }

    public PayloadSignatureStatus? Signature(string name) => _client.GetSignatureStatusAsync(name).GetAwaiter().GetResult();

    public int Upload(string name, byte[] payload) => _client.UploadAsync(name, payload).GetAwaiter().GetResult().Rc;

    public int Action(string name, LivepatchAction action, uint timeoutNs = 0) =>
        _client.ActionAsync(name, action, timeoutNs).GetAwaiter().GetResult().Rc;

    /// <summary>The payload's rc as GET reports it, or GET's own error.</summary>
    public int Rc(string name) => _client.GetAsync(name).GetAwaiter().GetResult() is var g && g.Result.Succeeded ? g.Status.Rc : g.Result.Rc;

    public string State(string name) =>
        _client.GetAsync(name).GetAwaiter().GetResult().State?.ToString().ToUpperInvariant() ?? "gone";
}

/// <summary>The demo's signers: a trusted key (the sandbox trusts its certificate) and another one.</summary>
internal sealed class DemoSigners : IDisposable
{
    private DemoSigners(SigningKey trusted, SigningKey untrusted)
    {
        Trusted = trusted;
        Untrusted = untrusted;
        Trust = new PayloadTrust(SignaturePolicy.Require, TrustStore.Of([TrustedKey.FromCertificate(trusted.Certificate!, "the demo")]));
    }

    public SigningKey Trusted { get; }
    public SigningKey Untrusted { get; }
    public PayloadTrust Trust { get; }

    public static DemoSigners Create() => new(Make("xen-livepatch demo signer"), Make("someone else"));

    private static SigningKey Make(string name)
    {
        var rsa = RSA.Create(2048);
        var request = new CertificateRequest($"CN={name}", rsa, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        request.CertificateExtensions.Add(new X509SubjectKeyIdentifierExtension(request.PublicKey, critical: false));
        var now = DateTimeOffset.UtcNow;
        using var certificate = request.CreateSelfSigned(now.AddDays(-1), now.AddYears(1));
        return SigningKey.FromKey(rsa, X509CertificateLoader.LoadCertificate(certificate.RawData));
    }

    public void Dispose()
    {
        Trusted.Dispose();
        Untrusted.Dispose();
    }
}

/// <summary>Indents every line written through it.</summary>
internal sealed class PrefixWriter(TextWriter inner, string prefix) : TextWriter
{
    private bool _lineStart = true;

    public override System.Text.Encoding Encoding => inner.Encoding;

    public override void Write(char value)
    {
        if (_lineStart)
            inner.Write(prefix);
        inner.Write(value);
        _lineStart = value == '\n';
    }
}
