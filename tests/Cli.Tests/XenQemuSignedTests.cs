using XenLivepatch.Signing;
using XenLivepatch.TestKit;

namespace XenLivepatch.Cli.Tests;

/// <summary>
/// Real Xen 4.17 checks no signature (Debian's 4.17.7 under QEMU): a payload signed in either format, by our
/// <c>sign</c> and by Linux's <c>sign-file</c>, uploads and applies there exactly as the unsigned one does, with
/// Debian's C <c>xen-livepatch</c>. The appended signature lies after the ELF (Xen's checks look at the headers
/// and sections only); the note is a non-SHF_ALLOC section (Xen ignores those). One boot.
/// </summary>
public class XenQemuSignedTests
{
    // An emulated CPU on a busy host can miss the 30 ms quiesce deadline: exit 2 (EBUSY) is retried, as Xen's
    // tool asks.
    private const string Script = """
        set -e
        retry() { for i in 1 2 3 4 5 6 7 8 9 10; do rc=0; "$@" || rc=$?; [ $rc -ne 2 ] && return $rc; sleep 1; done; return $rc; }
        cat /sys/hypervisor/version/extra > out/extra-before
        for p in xen_signed_appended xen_signed_note xen_signed_signfile; do
          xen-livepatch upload $p $p.livepatch > out/upload-$p 2>&1
          retry xen-livepatch apply $p
          cat /sys/hypervisor/version/extra > out/extra-$p
          xen-livepatch list > out/list-$p
          retry xen-livepatch revert $p
          xen-livepatch unload $p
        done
        cat /sys/hypervisor/version/extra > out/extra-after
        """;

    [Fact]
    public void Payloads_signed_in_either_format_upload_and_apply_on_real_xen_417()
    {
        var (buildId, xensyms) = XenQemu.Symbols();
        string work = Repo.TempDirectory("qemu-signed");
        string symbols = Path.Combine(work, "xensyms");
        File.WriteAllText(symbols, xensyms);
        string files = Path.Combine(work, "in");
        Directory.CreateDirectory(files);
        string obj = Tool.CompileC("#pragma GCC visibility push(hidden)\nconst char *xen_extra_version(void) { return \"Signed World\"; }",
            work, "signed", "gcc", "-O2", "-fpic", "-mno-red-zone", "-fcf-protection=none", "-ffunction-sections", "-fno-asynchronous-unwind-tables", "-fno-common");
        var signer = SigningKeys.A;
        foreach (string format in new[] { "appended", "note", "signfile" })
        {
            string name = $"xen_signed_{format}";
            string payload = Path.Combine(files, name + ".livepatch");
            var built = CliRun.Ours("build", "-o", payload, "--symbols", symbols, "--build-id", buildId, "--metadata", $"SIGNED={format}", obj);
            Assert.True(built.ExitCode == 0, built.Stdout + built.Stderr);
            if (format == "signfile")
            {
                Tool.Run("/usr/lib/linux-kbuild-6.1/scripts/sign-file", "sha256", signer.Key, signer.Cert, payload).EnsureSuccess();
            }
            else
            {
                var signed = CliRun.Ours("sign", payload, "--key", signer.Key, "--cert", signer.Cert, "--format", format);
                Assert.True(signed.ExitCode == 0, signed.Stdout + signed.Stderr);
            }
            var verdict = PayloadSignatures.Verify(File.ReadAllBytes(payload), TrustStore.Load(signer.Cert));
            Assert.True(verdict.Verified, verdict.ToString());
        }

        var r = XenQemu.Run(files, Script);

        Assert.True(r.ScriptExitCode == 0, $"the script exited {r.ScriptExitCode}:\n{r.RunLog}\n{r.SerialLog[^Math.Min(4000, r.SerialLog.Length)..]}");
        string before = r.File("extra-before").Trim();
        Assert.NotEqual("Signed World", before);
        foreach (string format in new[] { "appended", "note", "signfile" })
        {
            string name = $"xen_signed_{format}";
            Assert.Equal("Signed World", r.File($"extra-{name}").Trim());
            Assert.Contains($"Uploading {name}.livepatch... completed", r.File($"upload-{name}"), StringComparison.Ordinal);
            Assert.Matches($@"(?m)^{name}\s+\|\s+APPLIED\s+\|\s+SIGNED={format}\s*$", r.File($"list-{name}"));
            Assert.Contains($"(XEN) livepatch: {name} finished APPLY with rc=0", r.SerialLog, StringComparison.Ordinal);
        }
        Assert.Equal(before, r.File("extra-after").Trim());
        Assert.DoesNotContain("FATAL PAGE FAULT", r.SerialLog, StringComparison.Ordinal);
    }
}
