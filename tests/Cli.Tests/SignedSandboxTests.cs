using System.Text.Json;
using XenLivepatch.TestKit;

namespace XenLivepatch.Cli.Tests;

/// <summary>
/// The sandbox with <c>--signature-policy require --trusted-keys DIR</c>: a payload the trusted key signed loads
/// and applies while the vCPUs run; the unsigned one and one signed by another key are refused at upload with
/// the signature check's errno (EINVAL) and leave nothing; <c>get</c> and <c>list --json</c> say by which key it
/// was verified; <c>demo --signed</c> shows it in one process.
/// </summary>
[Collection("sandbox")]
public sealed class SignedSandboxTests
{
    [Fact]
    public void The_demo_signed_refuses_the_unsigned_and_the_untrusted_and_applies_the_signed()
    {
        var r = CliRun.Ours("demo", "--image", SandboxBuild.Image, "--signed");
        Assert.True(r.ExitCode == 0, r.Stdout + r.Stderr);
        Assert.Contains("signature policy require", r.Stdout, StringComparison.Ordinal);
        Assert.Contains("uploading xen_hello_world unsigned ... refused: -22 (EINVAL)", r.Stdout, StringComparison.Ordinal);
        Assert.Contains("signature check failed (unsigned)", r.Stdout, StringComparison.Ordinal);
        Assert.Contains("uploading xen_hello_world signed by an untrusted key ... refused: -22 (EINVAL)", r.Stdout, StringComparison.Ordinal);
        Assert.Contains("signature check failed (unknown key): signed by issuer CN=someone else", r.Stdout, StringComparison.Ordinal);
        Assert.Contains("the hypervisor verified its signature (appended) by CN=xen-livepatch demo signer", r.Stdout, StringComparison.Ordinal);
        Assert.Contains("the vCPUs now read \"Hello World\"", r.Stdout, StringComparison.Ordinal);
        Assert.Contains("[7/7] What the vCPUs read", r.Stdout, StringComparison.Ordinal);
    }

    [Fact]
    public void A_sandbox_requiring_signatures_applies_only_what_a_trusted_key_signed()
    {
        string dir = SandboxProcess.ShortDirectory();
        string socket = Path.Combine(dir, "sandbox.sock");
        Directory.CreateDirectory(dir);
        try
        {
            string hello = SandboxBuild.PayloadPath("xen_hello_world");
            string byA = Path.Combine(dir, "xen_hello_world.livepatch");
            string byB = Path.Combine(dir, "other", "xen_hello_world.livepatch");
            Directory.CreateDirectory(Path.GetDirectoryName(byB)!);
            Assert.Equal(0, CliRun.Ours("sign", hello, "--key", SigningKeys.A.Key, "--cert", SigningKeys.A.Cert, "-o", byA).ExitCode);
            Assert.Equal(0, CliRun.Ours("sign", byA, "--key", SigningKeys.B.Key, "--format", "note", "-o", byB).ExitCode);

            using var server = SandboxProcess.Start(socket, "--vcpus", "2",
                "--signature-policy", "require", "--trusted-keys", SigningKeys.A.Directory);
            try
            {
                Assert.True(server.WaitUntilServing(), server.Output());
                Assert.Contains("signature policy require; trusted: CN=xlp test signer a", server.Output(), StringComparison.Ordinal);
                var env = new Dictionary<string, string> { ["XEN_LIVEPATCH_SANDBOX"] = socket };

                var unsigned = SandboxCommandTests.Run(env, "upload", "xen_hello_world", hello);
                Assert.Equal(1, unsigned.ExitCode);
                Assert.Contains("Error 22: Invalid argument", unsigned.Stderr, StringComparison.Ordinal);
                Assert.True(server.WaitFor("(XEN) livepatch: xen_hello_world: signature check failed (unsigned)"), server.Output());

                var other = SandboxCommandTests.Run(env, "load", byB);
                Assert.Equal(1, other.ExitCode);
                Assert.Contains("Error 22: Invalid argument", other.Stderr, StringComparison.Ordinal);
                Assert.True(server.WaitFor("xen_hello_world: signature check failed (unknown key): no trusted key made this 2048-bit RSA signature"), server.Output());
                Assert.Equal((0, "Nothing to list\n"), (SandboxCommandTests.Run(env, "list").ExitCode, SandboxCommandTests.Run(env, "list").Stdout));

                var upload = SandboxCommandTests.Run(env, "upload", "xen_hello_world", byA);
                Assert.True(upload.ExitCode == 0, upload.Stderr + server.Output());
                // A busy host can keep a vCPU thread off its core past Xen's 30 ms: exit 2 (EBUSY) is retried.
                CliRun apply = null!;
                for (int i = 0; i < 10 && (apply = SandboxCommandTests.Run(env, "apply", "xen_hello_world")).ExitCode == 2; i++)
                    Thread.Sleep(200);
                Assert.True(apply.ExitCode == 0, apply.Stderr + server.Output());
                Assert.True(server.WaitFor("reads XENVER_extraversion \"Hello World\""), server.Output());

                var get = SandboxCommandTests.Run(env, "get", "xen_hello_world");
                Assert.Equal(0, get.ExitCode);
                Assert.StartsWith("xen_hello_world: APPLIED\n  signature: verified by CN=xlp test signer a (key id ", get.Stdout, StringComparison.Ordinal);
                // Xen's own list text is unchanged.
                Assert.Contains("xen_hello_world                         | APPLIED    | LIVEPATCH_RULEZ\n", SandboxCommandTests.Run(env, "list").Stdout, StringComparison.Ordinal);
                var json = SandboxCommandTests.Run(env, "--json", "list");
                using (var doc = JsonDocument.Parse(json.Stdout))
                {
                    var sig = doc.RootElement.GetProperty("payloads")[0].GetProperty("signature");
                    Assert.Equal("require", sig.GetProperty("policy").GetString());
                    Assert.True(sig.GetProperty("verified").GetBoolean());
                    Assert.Equal("appended", sig.GetProperty("format").GetString());
                    Assert.StartsWith("CN=xlp test signer a", sig.GetProperty("key").GetString(), StringComparison.Ordinal);
                }

                CliRun revert = null!;
                for (int i = 0; i < 10 && (revert = SandboxCommandTests.Run(env, "revert", "xen_hello_world")).ExitCode == 2; i++)
                    Thread.Sleep(200);
                Assert.Equal(0, revert.ExitCode);
                Assert.Equal(0, SandboxCommandTests.Run(env, "unload", "xen_hello_world").ExitCode);
            }
            finally
            {
                Assert.True(server.Interrupt());
            }
            Assert.Equal(0, server.Process.ExitCode);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }
}
