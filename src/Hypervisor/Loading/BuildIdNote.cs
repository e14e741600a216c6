using System.Buffers.Binary;
using XenLivepatch.Abi;

namespace XenLivepatch.Hypervisor;

/// <summary>
/// Xen's <c>xen_build_id_check</c> (xen/common/version.c): a build-id section holds one <c>Elf64_Note</c>
/// (12-byte header), the name "GNU" and the descriptor, which is the build-id.
/// </summary>
internal static class BuildIdNote
{
    public const int HeaderSize = 12;
    private const uint NtGnuBuildId = 3;

    /// <summary>Parses a build-id note; the error is Xen's errno for each failure.</summary>
    public static XenErrno? TryParse(ReadOnlySpan<byte> note, out byte[] id, out string why)
    {
        id = [];
        if (note.Length <= HeaderSize)
        {
            why = $"the note is {note.Length} bytes, no larger than its 12-byte header";
            return XenErrno.EINVAL;
        }
        uint namesz = BinaryPrimitives.ReadUInt32LittleEndian(note);
        uint descsz = BinaryPrimitives.ReadUInt32LittleEndian(note[4..]);
        uint type = BinaryPrimitives.ReadUInt32LittleEndian(note[8..]);
        if (type != NtGnuBuildId)
        {
            why = $"the note's type is {type}, not NT_GNU_BUILD_ID";
            return XenErrno.ENODATA;
        }
        ulong sum = (ulong)namesz + descsz;
        if (sum > uint.MaxValue)
        {
            why = "the note's name and descriptor sizes overflow";
            return XenErrno.EINVAL;
        }
        if (namesz < 4)
        {
            why = $"the note's name size is {namesz}, less than the 4 of \"GNU\"";
            return XenErrno.EINVAL;
        }
        if (sum > (ulong)(note.Length - HeaderSize))
        {
            why = $"the note's name ({namesz}) and descriptor ({descsz}) run past its {note.Length} bytes";
            return XenErrno.EINVAL;
        }
        // strncmp over namesz: "GNU\0" and then whatever follows must match too, up to the first NUL.
        var name = note.Slice(HeaderSize, (int)namesz);
        ReadOnlySpan<byte> gnu = "GNU\0"u8;
        for (int i = 0; i < name.Length; i++)
        {
            byte want = i < gnu.Length ? gnu[i] : (byte)0;
            if (name[i] != want)
            {
                why = "the note's owner is not \"GNU\"";
                return XenErrno.ENODATA;
            }
            if (want == 0)
                break;
        }
        if (descsz == 0)
        {
            why = "the note's build-id is empty";
            return XenErrno.EINVAL;
        }
        int descAt = HeaderSize + (int)((namesz + 3) & ~3u);
        if (descAt + (long)descsz > note.Length)
        {
            why = $"the note's descriptor runs past its {note.Length} bytes";
            return XenErrno.EINVAL;
        }
        id = note.Slice(descAt, (int)descsz).ToArray();
        why = "";
        return null;
    }
}
