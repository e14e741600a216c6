using System.Buffers.Binary;
using System.Text;

namespace XenLivepatch.Signing;

/// <summary>
/// Where an appended signature lies in a signed file. The layout (seed design, "Signature checking
/// requirements", which borrows Linux's module signature) is, in this order: the signed content, a DER
/// PKCS#7/CMS SignedData of <see cref="Pkcs7Length"/> bytes, the 12-byte <c>struct module_signature</c>
/// (<c>algo, hash, id_type, signer_len, key_id_len, __pad[3], __be32 sig_len</c>) and the 28-byte trailer
/// <c>"~Module signature appended~\n"</c>.
/// </summary>
/// <param name="ContentLength">The signed bytes: the file's first <paramref name="ContentLength"/> bytes.</param>
/// <param name="Pkcs7Offset">Where the PKCS#7 starts (= <paramref name="ContentLength"/>).</param>
/// <param name="Pkcs7Length">Its length (the header's <c>sig_len</c>).</param>
public readonly record struct AppendedBlock(int ContentLength, int Pkcs7Offset, int Pkcs7Length);

/// <summary>
/// The appended (Linux module) signature layout: finds and checks the trailer and header of a signed file, and
/// writes them. Every length comes from the file and is checked against it before use.
/// </summary>
public static class AppendedSignature
{
    /// <summary>The trailer that marks a signed file.</summary>
    public static ReadOnlySpan<byte> Magic => "~Module signature appended~\n"u8;

    /// <summary>The trailer's length (28).</summary>
    public const int MagicLength = 28;

    /// <summary><c>sizeof(struct module_signature)</c>.</summary>
    public const int HeaderLength = 12;

    /// <summary>The header and the trailer together.</summary>
    public const int TrailerLength = HeaderLength + MagicLength;

    /// <summary><c>PKEY_ID_PKCS7</c>: the only identifier type Linux (and we) accept.</summary>
    public const byte IdTypePkcs7 = 2;

    /// <summary>The largest PKCS#7 accepted: a signer with a few certificates fits in a few KiB.</summary>
    public const int MaxPkcs7Length = 64 * 1024;

    /// <summary>True when <paramref name="data"/> ends with the trailer (the file claims to be signed).</summary>
    public static bool HasTrailer(ReadOnlySpan<byte> data) =>
        data.Length >= MagicLength && data[^MagicLength..].SequenceEqual(Magic);

    /// <summary>
    /// Reads the header before the trailer. Returns <see cref="SignatureFailure.Unsigned"/> when there is no
    /// trailer, <see cref="SignatureFailure.None"/> with the block when the header is sound, and otherwise
    /// <see cref="SignatureFailure.Malformed"/> or <see cref="SignatureFailure.UnsupportedAlgorithm"/> (what
    /// Linux's <c>mod_check_sig</c> calls -EBADMSG and -ENOPKG) with the reason.
    /// </summary>
    public static SignatureFailure TryFind(ReadOnlySpan<byte> data, out AppendedBlock block, out string problem)
    {
        block = default;
        problem = "";
        if (!HasTrailer(data))
        {
            problem = "no appended signature trailer";
            return SignatureFailure.Unsigned;
        }
        if (data.Length < TrailerLength)
        {
            problem = $"the file is {data.Length} bytes: too short for the {HeaderLength}-byte signature header before the trailer";
            return SignatureFailure.Malformed;
        }
        var h = data.Slice(data.Length - TrailerLength, HeaderLength);
        byte algo = h[0], hash = h[1], idType = h[2], signerLength = h[3], keyIdLength = h[4];
        uint sigLength = BinaryPrimitives.ReadUInt32BigEndian(h[8..]);
        if (idType != IdTypePkcs7)
        {
            string form = idType switch
            {
                0 => "an OpenPGP key identifier (PKEY_ID_PGP)",
                1 => "an X.509 key identifier with raw signature (PKEY_ID_X509)",
                _ => $"key identifier type {idType}",
            };
            problem = $"the signature header names {form}; only PKCS#7 signatures (id_type 2) are accepted";
            return SignatureFailure.UnsupportedAlgorithm;
        }
        if (algo != 0 || hash != 0 || signerLength != 0 || keyIdLength != 0 || h[5] != 0 || h[6] != 0 || h[7] != 0)
        {
            problem = $"the PKCS#7 signature header must have algo, hash, signer_len, key_id_len and padding 0 (has {Convert.ToHexStringLower(h[..8])})";
            return SignatureFailure.Malformed;
        }
        long room = data.Length - TrailerLength;
        if (sigLength == 0)
        {
            problem = "the signature header gives a PKCS#7 of 0 bytes";
            return SignatureFailure.Malformed;
        }
        if (sigLength > MaxPkcs7Length)
        {
            problem = $"the signature header gives a PKCS#7 of {sigLength} bytes, more than the {MaxPkcs7Length} accepted";
            return SignatureFailure.Malformed;
        }
        // Strictly less: the signed content may not be empty.
        if (sigLength >= room)
        {
            problem = $"the signature header gives a PKCS#7 of {sigLength} bytes, but only {room} bytes precede the header";
            return SignatureFailure.Malformed;
        }
        int content = (int)(room - sigLength);
        block = new AppendedBlock(content, content, (int)sigLength);
        return SignatureFailure.None;
    }

    /// <summary>
    /// The unsigned content: <paramref name="data"/> without every well-formed appended signature at its end
    /// (a file signed twice loses both). What is not a well-formed block is left as it is.
    /// </summary>
    public static ReadOnlyMemory<byte> Strip(ReadOnlyMemory<byte> data)
    {
        while (TryFind(data.Span, out var block, out _) == SignatureFailure.None)
            data = data[..block.ContentLength];
        return data;
    }

    /// <summary>Writes <paramref name="content"/> followed by <paramref name="pkcs7"/>, the header and the trailer.</summary>
    public static byte[] Append(ReadOnlySpan<byte> content, ReadOnlySpan<byte> pkcs7)
    {
        if (pkcs7.Length is 0 or > MaxPkcs7Length)
            throw new ArgumentOutOfRangeException(nameof(pkcs7), pkcs7.Length, $"a PKCS#7 signature is 1 to {MaxPkcs7Length} bytes");
        var result = new byte[content.Length + pkcs7.Length + TrailerLength];
        content.CopyTo(result);
        pkcs7.CopyTo(result.AsSpan(content.Length));
        var h = result.AsSpan(content.Length + pkcs7.Length, HeaderLength);
        h[2] = IdTypePkcs7;
        BinaryPrimitives.WriteUInt32BigEndian(h[8..], (uint)pkcs7.Length);
        Magic.CopyTo(result.AsSpan(result.Length - MagicLength));
        return result;
    }

    /// <summary>The trailer as text, for messages.</summary>
    public static string MagicText => Encoding.ASCII.GetString(Magic).Replace("\n", "\\n", StringComparison.Ordinal);
}
