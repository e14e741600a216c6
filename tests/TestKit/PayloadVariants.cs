using System.Buffers.Binary;

namespace XenLivepatch.TestKit;

/// <summary>Payloads changed with objcopy: their build-id notes replaced, for the checks that read them.</summary>
public static class PayloadVariants
{
    /// <summary>
    /// A copy of <paramref name="payload"/> in <paramref name="directory"/> (same file name) whose
    /// <c>.livepatch.xen_depends</c> names another hypervisor (ab…ab) and whose own build-id is cd…cd, so that it is
    /// another payload made for another hypervisor.
    /// </summary>
    public static string ForAnotherHypervisor(string payload, string directory)
    {
        string output = Path.Combine(directory, Path.GetFileName(payload));
        string xen = output + ".xen.bin", id = output + ".id.bin";
        File.WriteAllBytes(xen, BuildIdNote(Enumerable.Repeat((byte)0xab, 20).ToArray()));
        File.WriteAllBytes(id, BuildIdNote(Enumerable.Repeat((byte)0xcd, 20).ToArray()));
        Tool.Run("objcopy", "--update-section", $".livepatch.xen_depends={xen}", "--update-section", $".note.gnu.build-id={id}", payload, output).EnsureSuccess();
        File.Delete(xen);
        File.Delete(id);
        return output;
    }

    /// <summary>An NT_GNU_BUILD_ID note: namesz 4, descsz, type 3, "GNU\0", the bytes.</summary>
    public static byte[] BuildIdNote(byte[] id)
    {
        ArgumentNullException.ThrowIfNull(id);
        byte[] note = new byte[16 + (id.Length + 3) / 4 * 4];
        BinaryPrimitives.WriteUInt32LittleEndian(note, 4);
        BinaryPrimitives.WriteUInt32LittleEndian(note.AsSpan(4), (uint)id.Length);
        BinaryPrimitives.WriteUInt32LittleEndian(note.AsSpan(8), 3);
        "GNU\0"u8.CopyTo(note.AsSpan(12));
        id.CopyTo(note.AsSpan(16));
        return note;
    }
}
