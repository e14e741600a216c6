using System.Buffers.Binary;
using XenLivepatch.TestKit;

namespace XenLivepatch.Signing.Tests;

/// <summary>
/// Under <c>require</c>, no change to a signed payload gets through: every single-byte change of the signed
/// content, the signature and the header and trailer (exhaustive over every byte of a small payload; every value
/// of every byte outside the content), truncations at every length, appended garbage; sampled over a large
/// payload. Each attempt is refused with a reason, none throws, and none hands the loader a byte the signature
/// did not cover.
/// </summary>
public class TamperTests
{
    private static readonly Random s_random = new(1515);

    private static void AssertRefused(PayloadTrust trust, byte[] tampered, string what)
    {
        TrustDecision decision;
        try
        {
            decision = trust.Check(tampered);
        }
        catch (Exception e)
        {
            throw new Xunit.Sdk.XunitException($"{what}: the check threw {e}");
        }
        Assert.False(decision.Accepted, $"{what}: accepted ({decision.Verdict})");
        Assert.NotEqual(SignatureFailure.None, decision.Verdict!.Failure);
        Assert.NotEmpty(decision.Refusal);
    }

    [Theory]
    [InlineData(SignatureFormat.Appended)]
    [InlineData(SignatureFormat.Note)]
    public void Every_single_byte_change_of_a_small_signed_payload_is_refused(SignatureFormat format)
    {
        byte[] signed = Fixtures.Sign(Fixtures.Payload, SigningKeys.A, format);
        var trust = Fixtures.Require(SigningKeys.A);
        Assert.True(trust.Check(signed).Accepted);
        int refused = 0;
        byte[] copy = (byte[])signed.Clone();
        for (int i = 0; i < signed.Length; i++)
        {
            byte old = copy[i];
            copy[i] = (byte)(old ^ (1 + s_random.Next(255)));
            AssertRefused(trust, copy, $"byte {i} 0x{old:x2} -> 0x{copy[i]:x2}");
            copy[i] = old;
            refused++;
        }
        Assert.Equal(signed.Length, refused);
    }

    [Theory]
    [InlineData(SignatureFormat.Appended)]
    [InlineData(SignatureFormat.Note)]
    public void Every_value_of_every_header_byte_and_every_bit_of_the_signature_is_refused(SignatureFormat format)
    {
        byte[] signed = Fixtures.Sign(Fixtures.Payload, SigningKeys.A, format);
        var trust = Fixtures.Require(SigningKeys.A);
        var (start, end) = SignatureBytes(signed, format);
        // The fixed-size headers: the appended format's 12-byte header and 28-byte trailer; the note's 12-byte
        // note header, its name and the 8-byte signature header.
        var header = format == SignatureFormat.Appended ? Enumerable.Range(signed.Length - 40, 40) : Enumerable.Range(start, 24);
        byte[] copy = (byte[])signed.Clone();
        int attempts = 0;
        for (int i = start; i < end; i++)
        {
            byte old = copy[i];
            var values = header.Contains(i) ? Enumerable.Range(0, 256).Where(v => v != old) : Enumerable.Range(0, 8).Select(bit => old ^ (1 << bit));
            foreach (int v in values)
            {
                copy[i] = (byte)v;
                AssertRefused(trust, copy, $"byte {i} 0x{old:x2} -> 0x{v:x2}");
                attempts++;
            }
            copy[i] = old;
        }
        Assert.True(attempts > 8 * (end - start));
    }

    [Theory]
    [InlineData(SignatureFormat.Appended)]
    [InlineData(SignatureFormat.Note)]
    public void Truncations_and_appended_garbage_are_refused(SignatureFormat format)
    {
        byte[] signed = Fixtures.Sign(Fixtures.Payload, SigningKeys.A, format);
        var trust = Fixtures.Require(SigningKeys.A);
        for (int length = 0; length < signed.Length; length++)
            AssertRefused(trust, signed[..length], $"truncated to {length} bytes");
        foreach (int extra in new[] { 1, 3, 4, 12, 40, 4096 })
        {
            byte[] longer = new byte[signed.Length + extra];
            signed.CopyTo(longer, 0);
            s_random.NextBytes(longer.AsSpan(signed.Length));
            AssertRefused(trust, longer, $"{extra} bytes of garbage appended");
            Array.Clear(longer, signed.Length, extra);
            AssertRefused(trust, longer, $"{extra} zero bytes appended");
        }
    }

    [Theory]
    [InlineData(SignatureFormat.Appended)]
    [InlineData(SignatureFormat.Note)]
    public void Changes_sampled_over_a_large_signed_payload_are_refused(SignatureFormat format)
    {
        // About 2 MiB: the payload with its ELF intact and random bytes after it (inside the signed content).
        byte[] large = new byte[2 * 1024 * 1024 - 8192];
        Fixtures.Payload.CopyTo(large, 0);
        s_random.NextBytes(large.AsSpan(Fixtures.Payload.Length));
        byte[] signed = Fixtures.Sign(large, SigningKeys.A, format);
        var trust = Fixtures.Require(SigningKeys.A);
        var accepted = trust.Check(signed);
        Assert.True(accepted.Accepted);
        var (start, end) = SignatureBytes(signed, format);
        var positions = Enumerable.Range(0, 400).Select(_ => s_random.Next(signed.Length))
            .Concat(Enumerable.Range(start, end - start)).Concat([0, 1, 63, signed.Length - 1]);
        foreach (int i in positions)
        {
            byte old = signed[i];
            signed[i] = (byte)(old ^ (1 + s_random.Next(255)));
            AssertRefused(trust, signed, $"byte {i}");
            signed[i] = old;
        }
    }

    [Theory]
    [InlineData(SignatureFormat.Appended)]
    [InlineData(SignatureFormat.Note)]
    public void The_loader_gets_exactly_the_signed_bytes(SignatureFormat format)
    {
        byte[] signed = Fixtures.Sign(Fixtures.Payload, SigningKeys.A, format);
        var decision = Fixtures.Require(SigningKeys.A).Check(signed);
        Assert.True(decision.Accepted);
        if (format == SignatureFormat.Appended)
        {
            Assert.Equal(Fixtures.Payload, decision.Payload.ToArray());
        }
        else
        {
            // The whole file, with the signature's bytes (and only them) zero.
            Assert.Equal(SignatureFailure.None, NoteSignature.TryFind(signed, out var block, out _));
            byte[] expected = (byte[])signed.Clone();
            Array.Clear(expected, block.SignatureOffset, block.SignatureLength);
            Assert.Equal(expected, decision.Payload.ToArray());
            Assert.Equal(256, block.SignatureLength);
        }
    }

    // The bytes that are not the signed content: for the appended format the PKCS#7, header and trailer; for the
    // note, the note section's bytes (its header, name, signature header and signature).
    private static (int Start, int End) SignatureBytes(byte[] signed, SignatureFormat format)
    {
        if (format == SignatureFormat.Appended)
        {
            int sigLength = (int)BinaryPrimitives.ReadUInt32BigEndian(signed.AsSpan(signed.Length - 32, 4));
            return (signed.Length - 40 - sigLength, signed.Length);
        }
        Assert.Equal(SignatureFailure.None, NoteSignature.TryFind(signed, out var block, out _));
        return (block.SignatureOffset - 24, block.SignatureOffset + block.SignatureLength);
    }
}
