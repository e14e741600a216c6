using XenLivepatch.Abi;
using XenLivepatch.Elf;
using XenLivepatch.TestKit;

namespace XenLivepatch.Hypervisor.Tests;

/// <summary>A payload built with Xen's recipe uploads, and the loaded payload is what the file says.</summary>
public class UploadTests
{
    private static string HelloWorld(TestImage image) =>
        LivepatchFixtures.BuildPayload(image, "xen_hello_world", ["hello_world.c"], "--modinfo", "LIVEPATCH_RULEZ");

    [Fact]
    public void Hello_world_uploads_as_checked_with_its_function_resolved()
    {
        var image = LivepatchFixtures.Image();
        var (core, target) = Targets.Core();
        string path = HelloWorld(image);
        Assert.Null(core.Upload("xen_hello_world", File.ReadAllBytes(path)));
        var p = Assert.Single(core.Payloads);
        Assert.Equal((LivepatchState.Checked, 0, 2u), (p.State, p.Rc, core.Version));
        var f = Assert.Single(p.Functions);
        Assert.Equal("xen_extra_version", f.Name);
        Assert.Equal(image.Address("xen_extra_version"), f.OldAddress);
        Assert.Equal(p.Memory.TextAddress, f.NewAddress & ~0xfUL);
        Assert.Equal(8u, f.Entry.OldSize);
        var file = ElfFile.Load(path);
        Assert.True(file.TryGetGnuBuildId(out var id, out _));
        Assert.Equal(id.ToArray(), p.BuildId.ToArray());
        Assert.Equal(image.BuildId, p.Depends.ToArray());
        Assert.Equal(image.BuildId, p.XenDepends.ToArray());
        Assert.Equal("LIVEPATCH_RULEZ\0"u8.ToArray(), p.Metadata.ToArray());
        // The replacement keeps its target's name and overrides it; nothing else is exported.
        Assert.Contains(p.Symbols, s => s.Name == "xen_extra_version" && !s.IsNew && s.Value == f.NewAddress);
        Assert.True(p.SafeToReapply);
        Assert.Single(target.Allocations);
    }

    [Fact]
    public void The_replacement_is_relocated_to_return_its_string()
    {
        var image = LivepatchFixtures.Image();
        var (core, target) = Targets.Core();
        Assert.Null(core.Upload("hw", File.ReadAllBytes(HelloWorld(image))));
        var f = core.Payloads[0].Functions[0];
        // lea rip-relative then ret: follow the displacement to the string.
        var code = new byte[8];
        Assert.Equal(MemoryReadStatus.Ok, target.Read(f.NewAddress, code));
        Assert.Equal(new byte[] { 0x48, 0x8d, 0x05 }, code[..3]);
        ulong str = f.NewAddress + 7 + (ulong)(long)BitConverter.ToInt32(code, 3);
        var text = new byte[12];
        Assert.Equal(MemoryReadStatus.Ok, target.Read(str, text));
        Assert.Equal("Hello World\0"u8.ToArray(), text);
    }

    [Fact]
    public void A_name_already_loaded_gets_EEXIST_and_changes_nothing()
    {
        var image = LivepatchFixtures.Image();
        var (core, target) = Targets.Core();
        byte[] bytes = File.ReadAllBytes(HelloWorld(image));
        Assert.Null(core.Upload("xen_hello_world", bytes));
        var before = Targets.Snapshot(core, target);
        var e = core.Upload("xen_hello_world", bytes);
        Assert.Equal(XenErrno.EEXIST, e?.Errno);
        Assert.Equal(before, Targets.Snapshot(core, target));
    }

    [Fact]
    public void The_same_build_id_under_another_name_gets_EEXIST()
    {
        var image = LivepatchFixtures.Image();
        var (core, target) = Targets.Core();
        byte[] bytes = File.ReadAllBytes(HelloWorld(image));
        Assert.Null(core.Upload("first", bytes));
        var before = Targets.Snapshot(core, target);
        var e = core.Upload("second", bytes);
        Assert.Equal(XenErrno.EEXIST, e?.Errno);
        Assert.Contains("already loaded as first", e!.Message, StringComparison.Ordinal);
        Assert.Equal(before, Targets.Snapshot(core, target));
    }

    [Fact]
    public void A_payload_for_another_hypervisor_is_refused_with_EINVAL()
    {
        var image = LivepatchFixtures.Image();
        string other = LivepatchFixtures.BuildPayload(LivepatchFixtures.Image(), "hw", ["hello_world.c"]);
        var bytes = File.ReadAllBytes(other);
        // Flip one byte of the xen_depends build-id.
        var f = ElfFile.Read(bytes);
        int s = f.FindSection(".livepatch.xen_depends");
        bytes[(int)f.SectionHeaders[s].Offset + 20] ^= 0xff;
        var (core, target) = Targets.Core();
        var e = core.Upload("hw", bytes);
        Assert.Equal(XenErrno.EINVAL, e?.Errno);
        Assert.Contains("check against hypervisor build-id failed", e!.Message, StringComparison.Ordinal);
        Assert.Equal((1u, 0, 0), (core.Version, core.Payloads.Count, target.Allocations.Count));
        _ = image;
    }
}
