using XenLivepatch.Abi;
using XenLivepatch.Elf;
using XenLivepatch.Hypervisor;
using XenLivepatch.TestKit;

namespace XenLivepatch.Tooling.Tests;

/// <summary>
/// The preview of <c>xen-livepatch info --target</c>: the trampoline it shows is the core's (EncodePatch), and
/// Iced decodes it as a jump to the loaded replacement, or as NOPs, after the ENDBR64 when there is one.
/// </summary>
public class PatchPreviewTests
{
    private static string Fixture(string name) => Repo.Path("tests", "Data", "tooling", name);

    private static OfflineTarget Target(string image)
    {
        Assert.True(OfflineTarget.TryFromImage("image", ElfFile.Load(Fixture(image)), out var target, out string? why), why);
        return target;
    }

    private static TargetPreview Preview(string payload, string image) =>
        TargetPreview.Create("greeting", File.ReadAllBytes(Fixture(payload)), Target(image), LivepatchProfile.Xen417);

    // The code of a fresh copy of the target once the payload is uploaded and applied there.
    private static OfflineHypervisor Applied(string payload, string image)
    {
        var target = Target(image);
        var hypervisor = target.Create();
        var core = new LivepatchCore(LivepatchProfile.Xen417, LivepatchArch.Get(target.Machine), hypervisor, hypervisor);
        Assert.Null(core.Upload("greeting", File.ReadAllBytes(Fixture(payload))));
        Assert.Equal(0, core.Action("greeting", LivepatchAction.Apply));
        Assert.Equal(LivepatchState.Applied, core.Find("greeting")!.State);
        return hypervisor;
    }

    private static byte[] Code(OfflineHypervisor hypervisor, ulong address, int length)
    {
        var code = new byte[length];
        Assert.Equal(MemoryReadStatus.Ok, hypervisor.Read(address, code));
        return code;
    }

    [Fact]
    public void The_jump_shown_goes_to_the_loaded_replacement_and_the_nops_cover_new_size()
    {
        var p = Preview("greeting.livepatch", "xen-syms");
        Assert.Null(p.UploadError);
        var jump = p.Functions[0];
        Assert.Equal(0, jump.PatchOffset);
        var last = jump.After[^1];
        Assert.Equal($"jmp 0x{jump.NewAddress:x}", last.Text);
        Assert.Equal(jump.OldAddress, last.Address);
        Assert.Equal(jump.Before.Sum(i => i.Bytes.Length) - 5, jump.Leftover);

        var nop = p.Functions[1];
        Assert.Equal(0UL, nop.NewAddress);
        Assert.All(nop.After, i => Assert.StartsWith("nop", i.Text, StringComparison.Ordinal));
        Assert.Equal(5, nop.After.Sum(i => i.Bytes.Length));

        // What it shows is what an APPLY writes.
        var applied = Applied("greeting.livepatch", "xen-syms");
        foreach (var f in p.Functions)
            Assert.Equal(Code(applied, f.OldAddress + (ulong)f.PatchOffset, f.Patch.Length), f.Patch);
    }

    [Fact]
    public void An_endbr64_is_kept_and_the_jump_written_after_it()
    {
        var image = LivepatchFixtures.Image();
        Assert.True(OfflineTarget.TryFromImage("xen-syms", image.File, out var target, out _));
        string obj = Tool.CompileC("#pragma GCC visibility push(hidden)\nint cet_function(int x) { return x + 2; }", Repo.TempDirectory("cet"), "cet", "gcc",
            "-O2", "-fpic", "-mno-red-zone", "-fcf-protection=none", "-ffunction-sections", "-fno-asynchronous-unwind-tables");
        Assert.True(PayloadBuilder.TryBuild(new PayloadBuildRequest { Name = "cet", Target = target, Objects = [new LinkInput("cet.o", ElfFile.Load(obj))] }, out var built, out var problem), problem?.ToString());
        var p = TargetPreview.Create("cet", built.Data, target, LivepatchProfile.Xen417);
        var f = Assert.Single(p.Functions);
        Assert.Equal(4, f.PatchOffset);
        Assert.Equal("endbr64", f.Before[0].Text);
        Assert.Equal(["endbr64", $"jmp 0x{f.NewAddress:x}"], f.After.Select(i => i.Text));
    }
}
