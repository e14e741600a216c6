using System.Globalization;
using System.Text;
using XenLivepatch.Elf;
using XenLivepatch.TestKit;

namespace XenLivepatch.Hypervisor.Tests;

/// <summary>
/// Placement and relocation against GNU ld: payloads compiled from the relocation corpus (C at several -O
/// levels and code models, plus assembly using every supported relocation type) are uploaded; then ld links
/// the same file with each section at the address our loader chose and each hypervisor symbol at its value.
/// Every loaded byte must be ld's byte.
/// </summary>
public class RelocationOracleTests
{
    public static TheoryData<string, string> Variants => new()
    {
        { "x86_64", "-O0" },
        { "x86_64", "-O2" },
        { "x86_64", "-Os" },
        { "x86_64", "-O2 -fno-pic -mcmodel=large" },
        { "aarch64", "-O0" },
        { "aarch64", "-O2" },
        { "aarch64", "-Os -fno-pie -mcmodel=large" },
        { "aarch64", "-O2 -fno-pie" },
    };

    [Theory, MemberData(nameof(Variants))]
    public void Loaded_bytes_equal_what_ld_links_at_the_same_addresses(string arch, string cflags)
    {
        var image = LivepatchFixtures.Image(arch);
        // ld merges the strings of SHF_MERGE sections (and shares suffixes); Xen loads sections as they are.
        // Without mergeable sections both place every string where the object says.
        string payload = LivepatchFixtures.BuildPayload(image, "reloc", ["reloc/code.c", $"reloc/{arch}.S"], "--cflags", cflags + " -fno-merge-constants");
        var target = Targets.Offline(image);
        var core = new LivepatchCore(LivepatchProfile.Xen417, LivepatchArch.Get(target.Machine), target, target);
        var error = core.Upload("reloc", File.ReadAllBytes(payload));
        Assert.True(error == null, error?.ToString());
        var loaded = core.Payloads[0];

        string dir = Path.GetDirectoryName(payload)!;
        var script = new StringBuilder("SECTIONS\n{\n");
        foreach (var s in loaded.Sections)
            script.Append(CultureInfo.InvariantCulture, $"  {s.Name} 0x{s.Address:x} : {{ *({s.Name}) }}\n");
        script.Append("  /DISCARD/ : { *(*) }\n}\n");
        string scriptPath = Path.Combine(dir, "place.ld");
        File.WriteAllText(scriptPath, script.ToString());

        var file = ElfFile.Load(payload);
        var symbols = file.GetSymbolTable(file.FindSymbolTable());
        var args = new List<string>();
        var (ld, ldArgs) = Linker.For(file.Header.Machine, file.Layout);
        args.AddRange(ldArgs);
        for (int i = 1; i < symbols.Count; i++)
        {
            var sym = symbols[i];
            if (sym.SectionIndex == 0 && sym.Binding != ElfSymbolBinding.Local)
                args.Add($"--defsym={symbols.GetName(sym)}=0x{image.Address(symbols.GetName(sym)):x}");
        }
        string linked = Path.Combine(dir, "linked.elf");
        args.AddRange(["-o", linked, "-T", scriptPath, "-e", "0", "--no-warn-rwx-segments", "-z", "max-page-size=4096", payload]);
        Tool.Run(ld, args).EnsureSuccess();

        var output = ElfFile.Load(linked);
        Assert.NotEmpty(loaded.Sections);
        // ld drops an input build-id note without --build-id; notes are copied verbatim and never relocated. It drops
        // empty output sections too, which Xen places (at an address, with no bytes to compare).
        foreach (var s in loaded.Sections.Where(s => s.Name != ".note.gnu.build-id" && s.Size != 0))
        {
            int index = output.FindSection(s.Name);
            Assert.True(index > 0, $"ld's output has no {s.Name}");
            var sh = output.SectionHeaders[index];
            Assert.Equal((s.Name, s.Address, s.Size), (s.Name, sh.Address, sh.Size));
            var ours = new byte[s.Size];
            Assert.Equal(MemoryReadStatus.Ok, target.Read(s.Address, ours));
            byte[] theirs = sh.Type == ElfSectionType.NoBits ? new byte[sh.Size] : output.GetSectionData(index).ToArray();
            Assert.True(theirs.AsSpan().SequenceEqual(ours), $"{s.Name} at 0x{s.Address:x} differs from ld's:\n  ours {Convert.ToHexString(ours)}\n  ld's {Convert.ToHexString(theirs)}");
        }
    }
}
