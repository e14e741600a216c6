using System.Buffers.Binary;
using XenLivepatch.Abi;
using XenLivepatch.TestKit;

namespace XenLivepatch.Hypervisor.Tests;

/// <summary>
/// What the core writes over an arm64 function, compared with the instructions GNU as assembles: a B within
/// [-128 MiB, +128 MiB), NOPs, and Xen's break instruction where the B cannot be encoded (the upload checks
/// pass +128 MiB and a replacement off a word boundary; real Xen then says so and writes the break:
/// <see cref="XenArm64DifferentialTests"/> sees it on its console).
/// </summary>
public class Arm64PatchTests
{
    private const ulong Old = 0x10234560;

    private static uint Patch(ulong newAddr, ulong place = Old, uint newSize = 12)
    {
        var f = new LivepatchFunc { NewAddr = newAddr, OldAddr = Old, NewSize = newSize, OldSize = 12, Version = 2 };
        var dest = new byte[Arm64Arch.Instance.PatchLength(f, 0)];
        Arm64Arch.Instance.EncodePatch(f, place, dest);
        return BinaryPrimitives.ReadUInt32LittleEndian(dest);
    }

    // The words GNU as assembles for these lines at address 0.
    private static uint[] Assemble(params string[] lines)
    {
        string dir = Repo.TempDirectory("arm64-as");
        string s = Path.Combine(dir, "p.s"), o = Path.Combine(dir, "p.o"), bin = Path.Combine(dir, "p.bin");
        File.WriteAllText(s, string.Join('\n', lines) + "\n");
        Tool.Run("aarch64-linux-gnu-as", "-o", o, s).EnsureSuccess();
        Tool.Run("aarch64-linux-gnu-objcopy", "-O", "binary", "--only-section=.text", o, bin).EnsureSuccess();
        var bytes = File.ReadAllBytes(bin);
        return Enumerable.Range(0, bytes.Length / 4).Select(i => BinaryPrimitives.ReadUInt32LittleEndian(bytes.AsSpan(i * 4))).ToArray();
    }

    [Fact]
    public void A_branch_within_reach_is_the_B_gnu_as_assembles()
    {
        // Each line sits 4 bytes further than the one before: the offsets below account for it.
        var asm = Assemble("b .+8", "b .+0x7fffffc", "b .-0x8000000", "b .-4");
        Assert.Equal(asm[0], Patch(Old + 8));
        Assert.Equal(asm[1], Patch(Old + 0x7fffffc));
        Assert.Equal(asm[2], Patch(Old - 0x8000000));
        Assert.Equal(asm[3], Patch(Old - 4));
    }

    [Fact]
    public void A_branch_the_B_cannot_encode_is_xens_break_instruction()
    {
        uint brk = Assemble("brk #0x800")[0];
        Assert.Equal(Arm64Arch.BreakFault, brk);
        Assert.Equal(brk, Patch(Old + 0x8000000));          // +128 MiB: passes the upload check, not the encoder
        Assert.Equal(brk, Patch(Old - 0x8000004));
        Assert.Equal(brk, Patch(Old + 0x102));               // a replacement off a word boundary
        Assert.Equal(brk, Patch(Old + 0x100, place: Old + 2));
    }

    [Fact]
    public void A_nop_patch_is_a_run_of_nops()
    {
        uint nop = Assemble("nop")[0];
        var f = new LivepatchFunc { NewAddr = 0, OldAddr = Old, NewSize = 8, OldSize = 12, Version = 2 };
        var dest = new byte[Arm64Arch.Instance.PatchLength(f, 0)];
        Arm64Arch.Instance.EncodePatch(f, Old, dest);
        Assert.Equal(8, dest.Length);
        Assert.Equal([nop, nop], [BinaryPrimitives.ReadUInt32LittleEndian(dest), BinaryPrimitives.ReadUInt32LittleEndian(dest.AsSpan(4))]);
    }
}
