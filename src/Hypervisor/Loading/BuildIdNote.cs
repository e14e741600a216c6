using System.Buffers.Binary;

namespace XenLivepatch.Hypervisor;

/// <summary>
/// Xen's <c>xen_build_id_check</c> (xen/common/version.c): a build-id section holds one <c>Elf64_Note</c>
/// (12-byte header), the name "GNU" and the descriptor, which is the build-id. Xen answers ENODATA for a
/// note of another type or owner and EINVAL otherwise; before Xen 4.20 <c>prepare_payload</c> turns every
/// failure into EINVAL, since then it passes the ENODATA on (<see cref="LivepatchProfile.NoteErrnoPassesThrough"/>).
/// </summary>
internal static class BuildIdNote
{
    public const int HeaderSize = 12;
    private const uint NtGnuBuildId = 3;

    /// <summary>
    /// Parses the build-id note of <paramref name="section"/>; the refusal names the payload and the section. With
    /// <paramref name="passThrough"/>, a note of another type or owner is refused with Xen's ENODATA, else EINVAL.
    /// </summary>
    public static LivepatchError? TryParse(string payload, string section, ReadOnlySpan<byte> note, bool passThrough, out byte[] id)
    {
        id = [];
        if (note.Length <= HeaderSize)
            return Refuse.NoteTooShort(payload, section, note.Length);
        uint namesz = BinaryPrimitives.ReadUInt32LittleEndian(note);
        uint descsz = BinaryPrimitives.ReadUInt32LittleEndian(note[4..]);
        uint type = BinaryPrimitives.ReadUInt32LittleEndian(note[8..]);
        if (type != NtGnuBuildId)
            return passThrough ? Refuse.NoteNotBuildIdNoData(payload, section, type) : Refuse.NoteNotBuildId(payload, section, type);
        ulong sum = (ulong)namesz + descsz;
        if (sum > uint.MaxValue)
            return Refuse.NoteSizesOverflow(payload, section);
        if (namesz < 4)
            return Refuse.NoteNameTooShort(payload, section, namesz);
        if (sum > (ulong)(note.Length - HeaderSize))
            return Refuse.NoteTooLong(payload, section, namesz, descsz, note.Length);
        // strncmp over namesz: "GNU\0" and then whatever follows must match too, up to the first NUL.
        var name = note.Slice(HeaderSize, (int)namesz);
        ReadOnlySpan<byte> gnu = "GNU\0"u8;
        for (int i = 0; i < name.Length; i++)
        {
            byte want = i < gnu.Length ? gnu[i] : (byte)0;
            if (name[i] != want)
                return passThrough ? Refuse.NoteNotGnuNoData(payload, section) : Refuse.NoteNotGnu(payload, section);
            if (want == 0)
                break;
        }
        if (descsz == 0)
            return Refuse.NoteEmptyBuildId(payload, section);
        int descAt = HeaderSize + (int)((namesz + 3) & ~3u);
        if (descAt + (long)descsz > note.Length)
            return Refuse.NoteDescriptorPastEnd(payload, section, note.Length);
        id = note.Slice(descAt, (int)descsz).ToArray();
        return null;
    }
}
