using System.Buffers.Binary;
using XenLivepatch.TestKit;

namespace XenLivepatch.Cli.Tests;

/// <summary>
/// Payloads for Debian's Xen 4.17 under QEMU: tests/qemu/build-hello-payload.sh's hello world, and variants of it
/// made with objcopy: new symbol names (so several can be loaded at once: Xen refuses a payload whose symbols
/// another loaded payload already defines) and, optionally, a <c>.livepatch.depends</c> that is not the
/// hypervisor's build-id. The arm64 forms are for the arm64 Xen of tests/qemu-arm64.
/// </summary>
internal static class QemuPayloads
{
    /// <summary>Builds xen_hello_world.livepatch for the QEMU hypervisor into <paramref name="directory"/>; returns its path.</summary>
    public static string Hello(string directory)
    {
        XenQemu.EnsureFetched();
        Tool.Run("bash", Repo.Path("tests", "qemu", "build-hello-payload.sh"), directory, XenQemu.HypervisorImage).EnsureSuccess();
        return Path.Combine(directory, "xen_hello_world.livepatch");
    }

    /// <summary>Builds the hello world for the hypervisor <paramref name="image"/> (with symbols) into <paramref name="directory"/>.</summary>
    public static string HelloFor(string image, string directory) => XenQemu.BuildHello(directory, image);

    /// <summary>Builds xen_hello_world.livepatch for the arm64 QEMU hypervisor into <paramref name="directory"/>; returns its path.</summary>
    public static string HelloArm64(string directory)
    {
        XenQemuArm64.EnsureFetched();
        Tool.Run("bash", Repo.Path("tests", "qemu", "build-hello-payload.sh"), "--arch", "arm64", directory, XenQemuArm64.XenSyms).EnsureSuccess();
        return Path.Combine(directory, "xen_hello_world.livepatch");
    }

    /// <summary>
    /// A copy of <paramref name="hello"/> at <paramref name="output"/> whose symbols carry <paramref name="suffix"/>; with
    /// <paramref name="wrongDepends"/> its <c>.livepatch.depends</c> names a build-id no hypervisor or payload has, with
    /// <paramref name="wrongXenDepends"/> its <c>.livepatch.xen_depends</c> another hypervisor's.
    /// </summary>
    public static string Variant(string hello, string output, string suffix, bool wrongDepends = false, bool wrongXenDepends = false, string objcopy = "objcopy")
    {
        var args = new List<string>
        {
            "--redefine-sym", $"livepatch_xen_hello_world=livepatch_{suffix}",
            "--redefine-sym", $"patched_function=patched_function_{suffix}",
            "--redefine-sym", $"xen_hello_world=xen_hello_{suffix}",
        };
        // Its own build-id: Xen refuses a payload with the build-id of a loaded one (EEXIST).
        string id = output + ".build-id.bin";
        File.WriteAllBytes(id, BuildIdNote(System.Security.Cryptography.SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(suffix))[..20]));
        args.AddRange(["--update-section", $".note.gnu.build-id={id}"]);
        if (wrongDepends)
        {
            string bin = output + ".depends.bin";
            File.WriteAllBytes(bin, BuildIdNote(Enumerable.Repeat((byte)0xab, 20).ToArray()));
            args.AddRange(["--update-section", $".livepatch.depends={bin}"]);
        }
        if (wrongXenDepends)
        {
            string bin = output + ".xen_depends.bin";
            File.WriteAllBytes(bin, BuildIdNote(Enumerable.Repeat((byte)0xcd, 20).ToArray()));
            args.AddRange(["--update-section", $".livepatch.xen_depends={bin}"]);
        }
        args.AddRange([hello, output]);
        Tool.Run(objcopy, args).EnsureSuccess();
        return output;
    }

    // An NT_GNU_BUILD_ID note: namesz 4, descsz 20, type 3, "GNU\0", the 20 bytes.
    private static byte[] BuildIdNote(byte[] id)
    {
        byte[] note = new byte[36];
        BinaryPrimitives.WriteUInt32LittleEndian(note, 4);
        BinaryPrimitives.WriteUInt32LittleEndian(note.AsSpan(4), 20);
        BinaryPrimitives.WriteUInt32LittleEndian(note.AsSpan(8), 3);
        "GNU\0"u8.CopyTo(note.AsSpan(12));
        id.CopyTo(note.AsSpan(16));
        return note;
    }
}
