using System.Text.Json;
using XenLivepatch.Signing;
using XenLivepatch.TestKit;

namespace XenLivepatch.Cli.Tests;

/// <summary><c>sign</c>, <c>build --sign-key</c>, and the signature in <c>info</c> and <c>check</c>.</summary>
public class SignCommandTests
{
    private static readonly Lazy<(TestImage Image, string Hello)> s_payload = new(() =>
    {
        var image = LivepatchFixtures.Image();
        return (image, LivepatchFixtures.BuildPayload(image, "xen_hello_world", ["hello_world.c"], "--modinfo", "LIVEPATCH_RULEZ"));
    });

    private static string Copy(string path, string name)
    {
        string to = Path.Combine(Repo.TempDirectory("sign-cmd"), name);
        File.Copy(path, to);
        return to;
    }

    [Fact]
    public void Sign_writes_either_format_and_resigning_replaces_the_signature()
    {
        var (_, hello) = s_payload.Value;
        string file = Copy(hello, "xen_hello_world.livepatch");
        var r = CliRun.Ours("sign", file, "--key", SigningKeys.A.Key, "--cert", SigningKeys.A.Cert);
        Assert.True(r.ExitCode == 0, r.Stderr);
        Assert.Contains("signed: appended PKCS#7 (Linux module signature), RSA PKCS#1 v1.5 / SHA-256, by CN=xlp test signer a (RSA-2048)", r.Stdout, StringComparison.Ordinal);
        Assert.True(PayloadSignatures.Verify(File.ReadAllBytes(file), TrustStore.Load(SigningKeys.A.Cert)).Verified);

        string note = Path.Combine(Path.GetDirectoryName(file)!, "note.livepatch");
        r = CliRun.Ours("sign", file, "--key", SigningKeys.B.Key, "-o", note);
        Assert.True(r.ExitCode == 0, r.Stderr);
        Assert.Contains("signed: ELF note .note.Xen.signature (XenServer layout)", r.Stdout, StringComparison.Ordinal);
        Assert.Contains("replaced its appended PKCS#7 (Linux module signature) signature", r.Stdout, StringComparison.Ordinal);
        using var keyB = SigningKey.Load(SigningKeys.B.Key, null);
        Assert.Equal(PayloadSigner.SignNote(File.ReadAllBytes(hello), keyB.Key), File.ReadAllBytes(note));
    }

    [Theory]
    [InlineData(64, "give the private key", "sign", "PAYLOAD")]
    [InlineData(64, "give --cert", "sign", "PAYLOAD", "--key", "KEY", "--format", "appended")]
    [InlineData(64, "use appended or note", "sign", "PAYLOAD", "--key", "KEY", "--format", "pgp")]
    [InlineData(66, "no PEM private key", "sign", "PAYLOAD", "--key", "CERT")]
    [InlineData(66, "RSA-1024", "sign", "PAYLOAD", "--key", "WEAK")]
    [InlineData(65, "the note format needs an ELF payload", "sign", "JUNK", "--key", "KEY")]
    [InlineData(64, "give the private key with --sign-key", "build", "-o", "OUT", "--sign-cert", "CERT", "x.o")]
    public void Wrong_signing_requests_say_what_to_do(int exit, string message, params string[] args)
    {
        var (_, hello) = s_payload.Value;
        string junk = Path.Combine(Repo.TempDirectory("junk"), "junk");
        File.WriteAllBytes(junk, new byte[64]);
        string[] real = [.. args.Select(a => a switch
        {
            "PAYLOAD" => hello, "KEY" => SigningKeys.A.Key, "CERT" => SigningKeys.A.Cert, "WEAK" => SigningKeys.Get("weak").Key,
            "JUNK" => junk, "OUT" => Path.Combine(Repo.TempDirectory("out"), "out.livepatch"), _ => a,
        })];
        var r = CliRun.Ours(real);
        Assert.Equal(exit, r.ExitCode);
        Assert.Contains(message, r.Stderr, StringComparison.Ordinal);
    }

    [Fact]
    public void Build_signs_what_it_writes_and_check_and_info_verify_it()
    {
        var (image, _) = s_payload.Value;
        string dir = Repo.TempDirectory("build-signed");
        string obj = Tool.CompileC("const char *xen_extra_version(void) { return \"Signed\"; }", dir, "signed", "gcc", "-O2", "-ffunction-sections", "-fno-asynchronous-unwind-tables");
        string output = Path.Combine(dir, "xen_signed.livepatch");
        var built = CliRun.Ours("build", "-o", output, "--target", image.Path, "--sign-key", SigningKeys.A.Key, "--sign-cert", SigningKeys.A.Cert, obj);
        Assert.True(built.ExitCode == 0, built.Stderr);
        Assert.Contains("signed: appended PKCS#7", built.Stdout, StringComparison.Ordinal);

        var check = CliRun.Ours("check", output, "--target", image.Path, "--trusted-keys", SigningKeys.A.Directory);
        Assert.True(check.ExitCode == 0, check.Stderr);
        Assert.Contains("signature: verified by CN=xlp test signer a", check.Stdout, StringComparison.Ordinal);
        Assert.Contains("(signature policy require)", check.Stdout, StringComparison.Ordinal);

        var wrong = CliRun.Ours("check", output, "--target", image.Path, "--trusted-keys", SigningKeys.B.Directory);
        Assert.Equal(1, wrong.ExitCode);
        Assert.StartsWith("error 22 (EINVAL): xen_signed: signature check failed (unknown key): signed by issuer CN=xlp test signer a", wrong.Stderr, StringComparison.Ordinal);

        var info = CliRun.Ours("info", output, "--trusted-keys", SigningKeys.A.Directory);
        Assert.Equal(0, info.ExitCode);
        Assert.Contains("  signature    appended PKCS#7 (Linux module signature), RSA PKCS#1 v1.5 / SHA-256, 2048-bit signature, signer issuer CN=xlp test signer a, serial ", info.Stdout, StringComparison.Ordinal);
        Assert.Contains("               signs the first ", info.Stdout, StringComparison.Ordinal);
        Assert.Contains("               verified by CN=xlp test signer a", info.Stdout, StringComparison.Ordinal);
        var json = CliRun.Ours("info", output, "--json", "--trusted-keys", SigningKeys.B.Directory);
        using var doc = JsonDocument.Parse(json.Stdout);
        var sig = doc.RootElement.GetProperty("signature");
        Assert.Equal(("appended", 2048), (sig.GetProperty("format").GetString(), sig.GetProperty("bits").GetInt32()));
        Assert.Equal("unknown key", sig.GetProperty("verification").GetProperty("reason").GetString());
    }

    [Fact]
    public void Check_applies_the_signature_policy_first()
    {
        var (image, hello) = s_payload.Value;
        var required = CliRun.Ours("check", hello, "--target", image.Path, "--trusted-keys", SigningKeys.A.Directory);
        Assert.Equal(1, required.ExitCode);
        Assert.StartsWith("error 22 (EINVAL): xen_hello_world: signature check failed (unsigned)", required.Stderr, StringComparison.Ordinal);

        var verify = CliRun.Ours("check", hello, "--target", image.Path, "--trusted-keys", SigningKeys.A.Directory, "--signature-policy", "verify");
        Assert.Equal(0, verify.ExitCode);
        Assert.Contains("signature: not verified (unsigned)", verify.Stdout, StringComparison.Ordinal);

        var none = CliRun.Ours("check", hello, "--target", image.Path, "--json");
        using (var doc = JsonDocument.Parse(none.Stdout))
            Assert.Equal("none", doc.RootElement.GetProperty("signature_policy").GetString());

        Assert.Equal(64, CliRun.Ours("check", hello, "--target", image.Path, "--signature-policy", "require").ExitCode);
        var bad = CliRun.Ours("check", hello, "--target", image.Path, "--trusted-keys", "/nonexistent/keys");
        Assert.Equal(66, bad.ExitCode);
        Assert.Contains("no such directory", bad.Stderr, StringComparison.Ordinal);

        // Unsigned, its ELF broken: the signature check answers first.
        byte[] broken = File.ReadAllBytes(hello);
        broken[7] = 3;
        string path = Path.Combine(Repo.TempDirectory("check-order"), "xen_hello_world.livepatch");
        File.WriteAllBytes(path, broken);
        Assert.Equal((1, "error 22 (EINVAL)"), Refusal(CliRun.Ours("check", path, "--target", image.Path, "--trusted-keys", SigningKeys.A.Directory)));
        Assert.Equal((1, "error 95 (EOPNOTSUPP)"), Refusal(CliRun.Ours("check", path, "--target", image.Path)));
    }

    private static (int, string) Refusal(CliRun r) => (r.ExitCode, r.Stderr[..r.Stderr.IndexOf(':', StringComparison.Ordinal)]);

    [Fact]
    public void Sign_has_help()
    {
        var r = CliRun.Ours("sign", "--help");
        Assert.Equal(0, r.ExitCode);
        Assert.StartsWith("Usage: xen-livepatch sign <payload> --key <key.pem>", r.Stdout, StringComparison.Ordinal);
    }
}
