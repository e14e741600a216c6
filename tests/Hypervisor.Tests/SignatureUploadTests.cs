using XenLivepatch.Abi;
using XenLivepatch.Signing;
using XenLivepatch.TestKit;

namespace XenLivepatch.Hypervisor.Tests;

/// <summary>
/// The livepatch core's signature check at UPLOAD: first, before any other check reads the payload; a refusal
/// is EINVAL with the payload's name and the reason, logged, and leaves nothing; the loader reads only the
/// signed bytes.
/// </summary>
public class SignatureUploadTests
{
    private static readonly Lazy<byte[]> s_hello = new(() =>
        File.ReadAllBytes(LivepatchFixtures.BuildPayload(LivepatchFixtures.Image(), "xen_hello_world", ["hello_world.c"], "--modinfo", "A=B")));

    private static (LivepatchCore Core, OfflineHypervisor Target, List<string> Log) Core(SignaturePolicy policy, params TestSigner[] trusted)
    {
        var target = Targets.Offline(LivepatchFixtures.Image());
        var keys = TrustStore.Of(trusted.SelectMany(s => TrustStore.Load(s.Cert).Keys));
        var core = new LivepatchCore(LivepatchProfile.Xen417, LivepatchArch.Get(target.Machine), target, target) { Trust = new PayloadTrust(policy, keys) };
        var log = new List<string>();
        core.Log += log.Add;
        return (core, target, log);
    }

    private static byte[] Signed(byte[] payload, TestSigner signer, SignatureFormat format)
    {
        using var key = SigningKey.Load(signer.Key, signer.Cert);
        return PayloadSigner.Sign(payload, key, format);
    }

    [Theory]
    [InlineData(SignatureFormat.Appended)]
    [InlineData(SignatureFormat.Note)]
    public void A_payload_a_trusted_key_signed_loads_as_the_unsigned_one_does(SignatureFormat format)
    {
        var (core, _, _) = Core(SignaturePolicy.Require, SigningKeys.A);
        Assert.Null(core.Upload("xen_hello_world", Signed(s_hello.Value, SigningKeys.A, format)));
        var p = core.Find("xen_hello_world")!;
        Assert.True(p.Signature!.Verified);
        Assert.Contains("xlp test signer a", p.Signature.Key!.ToString(), StringComparison.Ordinal);

        var (plain, _, _) = Core(SignaturePolicy.None);
        Assert.Null(plain.Upload("xen_hello_world", s_hello.Value));
        var q = plain.Find("xen_hello_world")!;
        Assert.Null(q.Signature);
        Assert.Equal(q.Symbols.Select(s => s.Name), p.Symbols.Select(s => s.Name));
        Assert.Equal(q.Functions.Select(f => (f.Name, f.Entry.OldSize)), p.Functions.Select(f => (f.Name, f.Entry.OldSize)));
        Assert.Equal(q.BuildId.ToArray(), p.BuildId.ToArray());
        Assert.Equal(0, core.Action("xen_hello_world", LivepatchAction.Apply));
        Assert.Equal(LivepatchState.Applied, core.Find("xen_hello_world")!.State);
    }

    [Theory]
    [InlineData("unsigned", "unsigned")]
    [InlineData("other key", "unknown key")]
    [InlineData("changed", "bad signature")]
    public void Refusals_are_einval_naming_the_payload_and_the_reason_and_leave_nothing(string what, string reason)
    {
        var (core, target, log) = Core(SignaturePolicy.Require, SigningKeys.A);
        byte[] data = what switch
        {
            "unsigned" => s_hello.Value,
            "other key" => Signed(s_hello.Value, SigningKeys.B, SignatureFormat.Appended),
            _ => Signed(s_hello.Value, SigningKeys.A, SignatureFormat.Appended),
        };
        if (what == "changed")
            data[300] ^= 1;
        var before = Targets.Snapshot(core, target);
        var error = core.Upload("xen_hello_world", data);
        Assert.NotNull(error);
        Assert.Equal((LivepatchCheck.SignatureRefused, XenErrno.EINVAL), (error.Check, error.Errno));
        Assert.Equal(SignatureCheck.Errno, error.Errno);
        Assert.StartsWith($"xen_hello_world: signature check failed ({reason}): ", error.Message, StringComparison.Ordinal);
        Assert.EndsWith("(signature policy require)", error.Message, StringComparison.Ordinal);
        Assert.Equal(before, Targets.Snapshot(core, target));
        Assert.Contains(error.Message, log);
    }

    [Fact]
    public void The_signature_check_comes_before_every_other_upload_check()
    {
        byte[] broken = (byte[])s_hello.Value.Clone();
        broken[7] = 3; // EI_OSABI: the ELF header check's EOPNOTSUPP
        Assert.Equal(XenErrno.EOPNOTSUPP, Core(SignaturePolicy.None).Core.Upload("p", broken)!.Errno);
        Assert.Equal(LivepatchCheck.SignatureRefused, Core(SignaturePolicy.Require, SigningKeys.A).Core.Upload("p", broken)!.Check);
        // Signed, the same broken ELF passes the signature check and meets the loader's.
        Assert.Equal(XenErrno.EOPNOTSUPP, Core(SignaturePolicy.Require, SigningKeys.A).Core.Upload("p", Signed(broken, SigningKeys.A, SignatureFormat.Appended))!.Errno);
    }

    [Fact]
    public void The_loader_reads_only_what_the_signature_covers()
    {
        // A payload cut short of its last section header: with the signature's bytes after it, the section header
        // table would fit in the file. The loader sees only the signed bytes, so the table does not fit: EINVAL from
        // the ELF header check, as for the cut payload alone.
        byte[] cut = s_hello.Value[..^32];
        var alone = Core(SignaturePolicy.None).Core.Upload("p", cut);
        var signed = Core(SignaturePolicy.Require, SigningKeys.A).Core.Upload("p", Signed(cut, SigningKeys.A, SignatureFormat.Appended));
        Assert.NotNull(alone);
        Assert.Equal(alone, signed);
        // Under policy none the signature's bytes are the payload's, as on Xen 4.17: the table fits there.
        var unchecked_ = Core(SignaturePolicy.None).Core.Upload("p", Signed(cut, SigningKeys.A, SignatureFormat.Appended));
        Assert.NotEqual(alone, unchecked_);
    }

    [Fact]
    public void Verify_loads_unsigned_payloads_and_logs_that_they_are_not_verified()
    {
        var (core, _, log) = Core(SignaturePolicy.Verify, SigningKeys.A);
        Assert.Null(core.Upload("xen_hello_world", s_hello.Value));
        Assert.Equal(SignatureFailure.Unsigned, core.Find("xen_hello_world")!.Signature!.Failure);
        Assert.Contains(log, l => l.StartsWith("xen_hello_world: signature not verified (unsigned", StringComparison.Ordinal));
    }
}
