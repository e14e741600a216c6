using System.Buffers.Binary;
using System.Security.Cryptography.Pkcs;
using System.Security.Cryptography.X509Certificates;
using XenLivepatch.TestKit;

namespace XenLivepatch.Signing.Tests;

/// <summary>
/// Both formats against independent tools: Linux's own sign-file (Debian's linux-kbuild-6.1), openssl cms and
/// dgst, objcopy (XenServer's way of adding the note), readelf, ld, and .NET's SignedCms as a second CMS reader.
/// </summary>
public class InteropTests
{
    private const string SignFile = "/usr/lib/linux-kbuild-6.1/scripts/sign-file";

    private static string RequireSignFile()
    {
        Assert.True(File.Exists(SignFile), $"{SignFile} is missing: ./build.sh installs Debian's linux-kbuild-6.1 (apt-get install linux-kbuild-6.1)");
        return SignFile;
    }

    private static byte[] SignWithSignFile(string dir, byte[] payload, TestSigner signer, params string[] options)
    {
        string file = Fixtures.Write(dir, "sf.livepatch", payload);
        Tool.Run(RequireSignFile(), [.. options, "sha256", signer.Key, signer.Cert, file]).EnsureSuccess();
        return File.ReadAllBytes(file);
    }

    [Fact]
    public void Payload_signed_by_linux_sign_file_is_verified()
    {
        string dir = Repo.TempDirectory("signfile");
        byte[] signed = SignWithSignFile(dir, Fixtures.Payload, SigningKeys.A);
        var verdict = PayloadSignatures.Verify(signed, Fixtures.Trust(SigningKeys.A));
        Assert.True(verdict.Verified, verdict.ToString());
        Assert.Equal(SignatureFormat.Appended, verdict.Signature!.Format);
        Assert.Equal(Fixtures.Payload, verdict.Signature.Covered.ToArray());
        Assert.Contains("xlp test signer a", verdict.Key!.ToString(), StringComparison.Ordinal);

        // sign-file -k names the signer by subjectKeyIdentifier: found by key id, in certificates and bare keys.
        byte[] byKeyId = SignWithSignFile(dir, Fixtures.Payload, SigningKeys.A, "-k");
        Assert.True(PayloadSignatures.Verify(byKeyId, Fixtures.Trust(SigningKeys.A)).Verified);
        Assert.True(PayloadSignatures.Verify(byKeyId, TrustStore.Load(SigningKeys.A.PublicKey)).Verified);
        Assert.Equal(SignatureFailure.UnknownKey, PayloadSignatures.Verify(byKeyId, Fixtures.Trust(SigningKeys.B)).Failure);
    }

    [Fact]
    public void Our_appended_signature_is_byte_identical_to_sign_file_for_the_same_key_and_content()
    {
        // RSA PKCS#1 v1.5 is deterministic, so the same key and content give the same PKCS#7 when the encoding
        // is sign-file's: the whole file is expected to match, not only its layout.
        string dir = Repo.TempDirectory("signfile-same");
        using var key = Fixtures.Key(SigningKeys.A);
        Assert.Equal(SignWithSignFile(dir, Fixtures.Payload, SigningKeys.A), PayloadSigner.SignAppended(Fixtures.Payload, key));
        Assert.Equal(SignWithSignFile(dir, Fixtures.Payload, SigningKeys.A, "-k"), PayloadSigner.SignAppended(Fixtures.Payload, key, useKeyId: true));
    }

    [Fact]
    public void Our_appended_signature_verifies_with_openssl_cms_and_dotnet_signedcms()
    {
        string dir = Repo.TempDirectory("cms");
        byte[] signed = Fixtures.Sign(Fixtures.Payload, SigningKeys.A, SignatureFormat.Appended);
        Assert.True(AppendedSignature.HasTrailer(signed));
        int sigLength = (int)BinaryPrimitives.ReadUInt32BigEndian(signed.AsSpan(signed.Length - 32, 4));
        byte[] pkcs7 = signed[(signed.Length - 40 - sigLength)..^40];
        string content = Fixtures.Write(dir, "content", signed[..(signed.Length - 40 - sigLength)]);
        string p7 = Fixtures.Write(dir, "sig.p7", pkcs7);
        Assert.Equal(Fixtures.Payload, File.ReadAllBytes(content));

        var ok = Tool.Run("openssl", "cms", "-verify", "-binary", "-inform", "DER", "-in", p7, "-content", content,
            "-certfile", SigningKeys.A.Cert, "-CAfile", SigningKeys.A.Cert, "-purpose", "any", "-out", "/dev/null");
        Assert.True(ok.ExitCode == 0, ok.Stderr);
        Assert.Contains("Verification successful", ok.Stderr, StringComparison.Ordinal);
        var asn1 = Tool.Run("openssl", "asn1parse", "-inform", "DER", "-in", p7).EnsureSuccess().Stdout;
        Assert.Contains(":sha256", asn1, StringComparison.Ordinal);
        Assert.Contains(":rsaEncryption", asn1, StringComparison.Ordinal);
        Assert.DoesNotContain("messageDigest", asn1, StringComparison.Ordinal);

        // Another signer's certificate: openssl refuses, as we do.
        string other = Fixtures.Write(dir, "other.p7", pkcs7);
        var bad = Tool.Run("openssl", "cms", "-verify", "-binary", "-inform", "DER", "-in", other, "-content", content,
            "-certfile", SigningKeys.B.Cert, "-CAfile", SigningKeys.B.Cert, "-purpose", "any", "-out", "/dev/null");
        Assert.NotEqual(0, bad.ExitCode);

        var cms = new SignedCms(new ContentInfo(Fixtures.Payload), detached: true);
        cms.Decode(pkcs7);
        Assert.Single(cms.SignerInfos);
        Assert.Empty(cms.SignerInfos[0].SignedAttributes);
        Assert.Empty(cms.Certificates);
        using var cert = X509CertificateLoader.LoadCertificateFromFile(SigningKeys.A.Cert);
        cms.CheckSignature([cert], verifySignatureOnly: true);
    }

    [Fact]
    public void Signed_attributes_made_by_openssl_cms_are_verified()
    {
        // Not sign-file's default, but Linux accepts them: openssl cms -sign without -noattr.
        string dir = Repo.TempDirectory("cms-attrs");
        string content = Fixtures.Write(dir, "payload", Fixtures.Payload);
        string p7 = Path.Combine(dir, "sig.p7");
        Tool.Run("openssl", "cms", "-sign", "-binary", "-nocerts", "-md", "sha256", "-outform", "DER", "-in", content,
            "-signer", SigningKeys.A.Cert, "-inkey", SigningKeys.A.Key, "-out", p7).EnsureSuccess();
        byte[] signed = AppendedSignature.Append(Fixtures.Payload, File.ReadAllBytes(p7));
        Assert.NotNull(PayloadSignatures.Verify(signed, Fixtures.Trust(SigningKeys.A)).Signature!.Cms!.SignedAttributes);
        Assert.True(PayloadSignatures.Verify(signed, Fixtures.Trust(SigningKeys.A)).Verified);
        byte[] changed = (byte[])signed.Clone();
        changed[100] ^= 1;
        Assert.Equal(SignatureFailure.BadSignature, PayloadSignatures.Verify(changed, Fixtures.Trust(SigningKeys.A)).Failure);
    }

    [Fact]
    public void Note_signature_made_with_openssl_dgst_and_objcopy_is_verified()
    {
        // XenServer's recipe: add the section with a zeroed signature, sign the file, write the signature in.
        string dir = Repo.TempDirectory("xs-note");
        string payload = Fixtures.Write(dir, "payload", Fixtures.Payload);
        string zero = Fixtures.Write(dir, "zero.note", Note(new byte[256]));
        string unsigned = Path.Combine(dir, "unsigned"), signedPath = Path.Combine(dir, "signed"), sig = Path.Combine(dir, "sig");
        Tool.Run("objcopy", "--add-section", $"{NoteSignature.SectionName}={zero}", payload, unsigned).EnsureSuccess();
        Tool.Run("openssl", "dgst", "-sha256", "-sign", SigningKeys.A.Key, "-out", sig, unsigned).EnsureSuccess();
        string note = Fixtures.Write(dir, "sig.note", Note(File.ReadAllBytes(sig)));
        Tool.Run("objcopy", "--update-section", $"{NoteSignature.SectionName}={note}", unsigned, signedPath).EnsureSuccess();

        byte[] signed = File.ReadAllBytes(signedPath);
        var verdict = PayloadSignatures.Verify(signed, Fixtures.Trust(SigningKeys.A));
        Assert.True(verdict.Verified, verdict.ToString());
        Assert.Equal(SignatureFormat.Note, verdict.Signature!.Format);
        Assert.Equal(File.ReadAllBytes(unsigned), verdict.Signature.Covered.ToArray());
        Assert.Equal(SignatureFailure.UnknownKey, PayloadSignatures.Verify(signed, Fixtures.Trust(SigningKeys.B)).Failure);
        // The bare public key, as Xen's 2025 series builds it in, verifies it too.
        Assert.True(PayloadSignatures.Verify(signed, TrustStore.Load(SigningKeys.A.PublicKey)).Verified);

        // Re-signed by us: in place (objcopy laid the file out, and B's signature has the same size), nothing
        // else changes; a key of another size cannot fit there, and says what to do.
        using var b = Fixtures.Key(SigningKeys.B);
        byte[] resigned = PayloadSigner.SignNote(signed, b.Key);
        Assert.True(PayloadSignatures.Verify(resigned, Fixtures.Trust(SigningKeys.B)).Verified);
        Assert.Equal(SignatureFailure.None, NoteSignature.TryFind(signed, out var block, out _));
        Assert.Equal(signed.Length, resigned.Length);
        Assert.All(Enumerable.Range(0, signed.Length).Where(i => signed[i] != resigned[i]),
            i => Assert.InRange(i, block.SignatureOffset, block.SignatureOffset + block.SignatureLength - 1));
        using var big = Fixtures.Key(SigningKeys.Get("big"));
        Assert.Contains("objcopy --remove-section", Assert.Throws<SigningException>(() => PayloadSigner.SignNote(signed, big.Key)).Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Our_note_signature_verifies_with_openssl_dgst_and_reads_with_readelf_objcopy_and_ld()
    {
        string dir = Repo.TempDirectory("our-note");
        byte[] signed = Fixtures.Sign(Fixtures.Payload, SigningKeys.A, SignatureFormat.Note);
        string path = Fixtures.Write(dir, "signed", signed);

        // The signature, as objcopy extracts the section: 12-byte note header, "Xen\0", the 8-byte header, then it.
        string section = Path.Combine(dir, "section");
        Tool.Run("objcopy", "--dump-section", $"{NoteSignature.SectionName}={section}", path, Path.Combine(dir, "copy")).EnsureSuccess();
        byte[] note = File.ReadAllBytes(section);
        Assert.Equal("Xen\0"u8.ToArray(), note[12..16]);
        Assert.Equal(new byte[] { 1, 0, 0, 0, 0, 1, 0, 0 }, note[16..24]);
        byte[] signature = note[24..(24 + 256)];
        string sig = Fixtures.Write(dir, "sig", signature);

        // The signed bytes are the file with the signature zeroed; found here by searching, not by our offsets.
        int at = signed.AsSpan().IndexOf(signature);
        Assert.True(at > 0 && signed.AsSpan(at + 1).IndexOf(signature) < 0);
        byte[] zeroed = (byte[])signed.Clone();
        Array.Clear(zeroed, at, 256);
        string zeroedPath = Fixtures.Write(dir, "zeroed", zeroed);
        var dgst = Tool.Run("openssl", "dgst", "-sha256", "-verify", SigningKeys.A.PublicKey, "-signature", sig, zeroedPath);
        Assert.True(dgst.ExitCode == 0, dgst.Stdout + dgst.Stderr);
        Assert.Contains("Verified OK", dgst.Stdout, StringComparison.Ordinal);
        Assert.NotEqual(0, Tool.Run("openssl", "dgst", "-sha256", "-verify", SigningKeys.B.PublicKey, "-signature", sig, zeroedPath).ExitCode);

        var notes = Tool.Run("readelf", "-W", "-n", path).EnsureSuccess();
        Assert.Contains($"Displaying notes found in: {NoteSignature.SectionName}", notes.Stdout, StringComparison.Ordinal);
        Assert.Contains("Build ID", notes.Stdout, StringComparison.Ordinal);
        Assert.Empty(Tool.Run("readelf", "-W", "-a", path).Stderr);
        // The payload's own sections, symbols and relocations are what they were.
        string unsignedPath = Fixtures.Write(dir, "unsigned", Fixtures.Payload);
        Assert.Equal(Tool.Run("readelf", "-W", "-s", "-r", unsignedPath).Stdout, Tool.Run("readelf", "-W", "-s", "-r", path).Stdout);
        var elf = XenLivepatch.Elf.ElfFile.Read(Fixtures.Payload);
        for (int i = 1; i < elf.SectionCount; i++)
        {
            // The section name table gains the new name at its end.
            string name = elf.GetSectionName(i);
            if (name == ".shstrtab")
            {
                var after = XenLivepatch.Elf.ElfFile.Read(signed);
                Assert.Equal([.. elf.GetSectionData(i).ToArray(), .. ".note.Xen.signature\0"u8], after.GetSectionData(after.FindSection(name)).ToArray());
                continue;
            }
            Assert.Equal(Tool.Run("readelf", "-W", "-x", name, unsignedPath).Stdout, Tool.Run("readelf", "-W", "-x", name, path).Stdout);
        }
        Tool.Run("ld", "-r", path, "-o", Path.Combine(dir, "relinked.o")).EnsureSuccess();
    }

    private static byte[] Note(byte[] signature)
    {
        var n = new byte[12 + 4 + 8 + signature.Length];
        BinaryPrimitives.WriteUInt32LittleEndian(n, 4);
        BinaryPrimitives.WriteUInt32LittleEndian(n.AsSpan(4), (uint)(8 + signature.Length));
        "Xen\0"u8.CopyTo(n.AsSpan(12));
        BinaryPrimitives.WriteUInt16LittleEndian(n.AsSpan(16), 1);
        BinaryPrimitives.WriteUInt32LittleEndian(n.AsSpan(20), (uint)signature.Length);
        signature.CopyTo(n, 24);
        return n;
    }
}
