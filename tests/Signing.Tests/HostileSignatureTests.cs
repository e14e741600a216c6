using System.Buffers.Binary;
using XenLivepatch.TestKit;

namespace XenLivepatch.Signing.Tests;

/// <summary>
/// The signature parsers on hostile input: random and mutated signature blocks (lengths, offsets, DER tags and
/// lengths, nesting, note headers) never throw, never verify, and never let the covered range leave the file.
/// </summary>
public class HostileSignatureTests
{
    private static long Iterations => long.TryParse(Environment.GetEnvironmentVariable("XLP_MUTATIONS"), out long n) ? n : 3000;

    private static void Check(byte[] data, TrustStore keys, string what)
    {
        SignatureVerdict verdict;
        try
        {
            verdict = PayloadSignatures.Verify(data, keys);
        }
        catch (Exception e)
        {
            throw new Xunit.Sdk.XunitException($"{what}: {e}");
        }
        Assert.False(verdict.Verified, $"{what}: verified");
        if (verdict.Signature is { Covered.IsEmpty: false } s)
            Assert.True(s.Covered.Length <= data.Length, what);
    }

    [Fact]
    public void Mutated_pkcs7_blocks_are_refused_without_exceptions()
    {
        var keys = Fixtures.Trust(SigningKeys.A);
        byte[] signed = Fixtures.Sign(Fixtures.Payload, SigningKeys.A, SignatureFormat.Appended);
        int sigLength = (int)BinaryPrimitives.ReadUInt32BigEndian(signed.AsSpan(signed.Length - 32, 4));
        byte[] content = signed[..(signed.Length - 40 - sigLength)];
        byte[] pkcs7 = signed[(signed.Length - 40 - sigLength)..^40];
        var rnd = new Random(15);
        for (long i = 0; i < Iterations; i++)
        {
            byte[] p = Mutate(pkcs7, rnd);
            if (p.AsSpan().SequenceEqual(pkcs7) || p.Length == 0)
                continue;
            Check(AppendedSignature.Append(content, p), keys, $"mutation {i}");
        }
    }

    [Fact]
    public void Random_headers_and_lengths_are_refused_without_exceptions()
    {
        var keys = Fixtures.Trust(SigningKeys.A);
        var rnd = new Random(16);
        for (long i = 0; i < Iterations; i++)
        {
            byte[] data = new byte[rnd.Next(0, 600)];
            rnd.NextBytes(data);
            if (data.Length >= 28 && rnd.Next(4) != 0)
                AppendedSignature.Magic.CopyTo(data.AsSpan(data.Length - 28));
            if (data.Length >= 40 && rnd.Next(2) == 0)
            {
                data[^38] = 2;
                data.AsSpan(data.Length - 40, 2).Clear();
                data.AsSpan(data.Length - 37, 5).Clear();
                BinaryPrimitives.WriteUInt32BigEndian(data.AsSpan(data.Length - 32), (uint)rnd.Next(-8, data.Length + 8));
            }
            Check(data, keys, $"random input {i}");
        }
    }

    [Fact]
    public void Deeply_nested_and_oversized_der_is_refused()
    {
        var keys = Fixtures.Trust(SigningKeys.A);
        // 20,000 nested SEQUENCEs with definite lengths (a recursive reader would overflow its stack).
        var nested = new List<byte>();
        for (int depth = 0; depth < 20000; depth++)
        {
            int len = nested.Count;
            byte[] header = len < 128 ? [0x30, (byte)len] : len < 256 ? [0x30, 0x81, (byte)len] : len < 65536 ? [0x30, 0x82, (byte)(len >> 8), (byte)len] : [0x30, 0x83, (byte)(len >> 16), (byte)(len >> 8), (byte)len];
            if (nested.Count + header.Length > AppendedSignature.MaxPkcs7Length)
                break;
            nested.InsertRange(0, header);
        }
        var verdict = PayloadSignatures.Verify(AppendedSignature.Append(Fixtures.Payload, nested.ToArray()), keys);
        Assert.Equal(SignatureFailure.Malformed, verdict.Failure);
        // Indefinite lengths (BER, not DER), and a length running past the block.
        Assert.Equal(SignatureFailure.Malformed, PayloadSignatures.Verify(AppendedSignature.Append(Fixtures.Payload, [0x30, 0x80, 0x06, 0x00, 0x00, 0x00]), keys).Failure);
        Assert.Equal(SignatureFailure.Malformed, PayloadSignatures.Verify(AppendedSignature.Append(Fixtures.Payload, [0x30, 0x84, 0x7f, 0xff, 0xff, 0xff, 0x06]), keys).Failure);
    }

    [Fact]
    public void Mutated_note_sections_are_refused_without_exceptions()
    {
        var keys = Fixtures.Trust(SigningKeys.A);
        byte[] signed = Fixtures.Sign(Fixtures.Payload, SigningKeys.A, SignatureFormat.Note);
        Assert.Equal(SignatureFailure.None, NoteSignature.TryFind(signed, out var block, out _));
        var elf = XenLivepatch.Elf.ElfFile.Read(signed);
        int tableStart = (int)elf.Header.SectionHeaderOffset;
        int noteStart = block.SignatureOffset - 24;
        var rnd = new Random(17);
        for (long i = 0; i < Iterations; i++)
        {
            byte[] b = (byte[])signed.Clone();
            int changes = rnd.Next(1, 5);
            for (int c = 0; c < changes; c++)
            {
                // Aim at the note, the section headers (offsets, sizes, types, names) and the ELF header.
                int at = rnd.Next(3) switch
                {
                    0 => noteStart + rnd.Next(24),
                    1 => tableStart + rnd.Next(b.Length - tableStart),
                    _ => rnd.Next(64),
                };
                b[at] = rnd.Next(3) == 0 ? (byte)0xff : (byte)rnd.Next(256);
            }
            if (b.AsSpan().SequenceEqual(signed))
                continue;
            Check(b, keys, $"note mutation {i}");
        }
    }

    private static byte[] Mutate(byte[] seed, Random rnd)
    {
        var b = new List<byte>(seed);
        int rounds = rnd.Next(1, 4);
        for (int r = 0; r < rounds && b.Count > 0; r++)
        {
            int at = rnd.Next(b.Count);
            switch (rnd.Next(6))
            {
                case 0: b[at] = (byte)rnd.Next(256); break;
                case 1: b[at] = rnd.Next(2) == 0 ? (byte)0x80 : (byte)0xff; break; // long-form and huge lengths
                case 2: b.RemoveAt(at); break;
                case 3: b.Insert(at, (byte)rnd.Next(256)); break;
                case 4: b.RemoveRange(at, b.Count - at); break;
                default: b.InsertRange(at, [0x30, 0x84, 0xff, 0xff, 0xff, 0xff]); break;
            }
        }
        return [.. b];
    }
}
