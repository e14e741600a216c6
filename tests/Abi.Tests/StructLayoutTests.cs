using System.Globalization;
using System.Text;
using XenLivepatch.TestKit;

namespace XenLivepatch.Abi.Tests;

/// <summary>
/// Every member our encoders read and write sits where gcc puts it: a C program, compiled at test time from
/// the structure definitions in <see cref="CStructs"/>, prints offsetof/sizeof of each member for both
/// layouts, and our descriptors must agree with it exactly and cover each structure without gaps.
/// </summary>
public class StructLayoutTests
{
    private sealed record StructSpec(string CName, int Size, IReadOnlyList<AbiField> Fields, bool Tiles = true);

    private static List<StructSpec> Specs(SysctlLayout layout)
    {
        string l = layout == SysctlLayout.Seed2016 ? "2016" : "2020";
        return
        [
            new("xen_livepatch_name", XenLivepatchName.SizeOf, XenLivepatchName.Fields),
            new("xen_livepatch_status", XenLivepatchStatus.SizeOf, XenLivepatchStatus.Fields),
            new("xen_sysctl_livepatch_upload", SysctlLivepatchUpload.SizeOf, SysctlLivepatchUpload.Fields),
            new("xen_sysctl_livepatch_get", SysctlLivepatchGet.SizeOf, SysctlLivepatchGet.Fields),
            new("xen_sysctl_livepatch_list_" + l, SysctlLivepatchList.SizeOf(layout), SysctlLivepatchList.Fields(layout)),
            new("xen_sysctl_livepatch_action_" + l, SysctlLivepatchAction.SizeOf(layout), SysctlLivepatchAction.Fields(layout)),
            new("xen_sysctl_livepatch_op_" + l, SysctlLivepatchOp.SizeOf(layout), SysctlLivepatchOp.Fields(layout), Tiles: false),
            new("xen_sysctl_" + l, XenSysctl.SizeOf, XenSysctl.Fields(layout), Tiles: false),
            new("livepatch_func_v1", LivepatchFunc.SizeOf(1), LivepatchFunc.Fields(1)),
            new("livepatch_func_v2", LivepatchFunc.SizeOf(2), LivepatchFunc.Fields(2)),
            new("livepatch_expectation", LivepatchExpectation.SizeOf, [new("data", 1, LivepatchExpectation.DataSize)], Tiles: false),
            new("xen_sysctl_readconsole", SysctlReadConsole.SizeOf, SysctlReadConsole.Fields, Tiles: false),
            new("xen_sysctl_debug_keys", SysctlDebugKeys.SizeOf, SysctlDebugKeys.Fields, Tiles: false),
            new("xen_build_id", XenBuildId.HeaderSize, XenBuildId.Fields),
        ];
    }

    private static Dictionary<string, (int Offset, int Size)> CompileAndMeasure(SysctlLayout layout)
    {
        string l = layout == SysctlLayout.Seed2016 ? "2016" : "2020";
        var c = new StringBuilder();
        c.AppendLine(CStructs.Common);
        c.AppendLine(CStructs.Layout(layout == SysctlLayout.Seed2016).Replace("_L ", "_" + l + " ", StringComparison.Ordinal).Replace("_L;", "_" + l + ";", StringComparison.Ordinal));
        c.AppendLine("int main(void) {");
        foreach (var spec in Specs(layout))
        {
            c.AppendLine(CultureInfo.InvariantCulture, $"  printf(\"{spec.CName} - 0 %zu\\n\", sizeof(struct {spec.CName}));");
            foreach (var f in spec.Fields)
                c.AppendLine(CultureInfo.InvariantCulture, $"  printf(\"{spec.CName} {f.Path} %zu %zu\\n\", offsetof(struct {spec.CName}, {f.Path}), sizeof(((struct {spec.CName} *)0)->{f.Path}));");
        }
        c.AppendLine("  return 0;\n}");
        string dir = Repo.TempDirectory("abi-layout");
        string src = Path.Combine(dir, "layout.c");
        string exe = Path.Combine(dir, "layout");
        File.WriteAllText(src, c.ToString());
        Tool.Run("gcc", "-std=gnu11", "-Wall", "-Werror", "-o", exe, src).EnsureSuccess();
        var result = new Dictionary<string, (int, int)>();
        foreach (string line in Tool.Run(exe).EnsureSuccess().Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries))
        {
            string[] p = line.Split(' ');
            result[p[0] + " " + p[1]] = (int.Parse(p[2], CultureInfo.InvariantCulture), int.Parse(p[3], CultureInfo.InvariantCulture));
        }
        return result;
    }

    [Theory]
    [InlineData(SysctlLayout.Seed2016)]
    [InlineData(SysctlLayout.Xen414)]
    public void Every_member_is_where_gcc_puts_it(SysctlLayout layout)
    {
        var gcc = CompileAndMeasure(layout);
        foreach (var spec in Specs(layout))
        {
            Assert.Equal((spec.CName, gcc[spec.CName + " -"].Size), (spec.CName, spec.Size));
            foreach (var f in spec.Fields)
                Assert.Equal((spec.CName, f.Path, gcc[spec.CName + " " + f.Path]), (spec.CName, f.Path, (f.Offset, f.Size)));
        }
    }

    [Theory]
    [InlineData(SysctlLayout.Seed2016)]
    [InlineData(SysctlLayout.Xen414)]
    public void Descriptors_cover_each_structure_without_gaps(SysctlLayout layout)
    {
        foreach (var spec in Specs(layout).Where(s => s.Tiles))
        {
            var leaves = spec.Fields.Where(f => !spec.Fields.Any(p => f.Path.StartsWith(p.Path + ".", StringComparison.Ordinal))).OrderBy(f => f.Offset).ToList();
            int at = 0;
            foreach (var f in leaves)
            {
                Assert.True(f.Offset == at, $"{spec.CName}: gap or overlap before {f.Path} (at {at}, member at {f.Offset})");
                at = f.Offset + f.Size;
            }
            Assert.Equal(spec.Size, at);
        }
    }

    [Fact]
    public void Sizes_are_the_ones_the_abi_documents()
    {
        Assert.Equal((16, 8, 32, 24), (XenLivepatchName.SizeOf, XenLivepatchStatus.SizeOf, SysctlLivepatchUpload.SizeOf, SysctlLivepatchGet.SizeOf));
        Assert.Equal((40, 64), (SysctlLivepatchList.SizeOf(SysctlLayout.Seed2016), SysctlLivepatchList.SizeOf(SysctlLayout.Xen414)));
        Assert.Equal((24, 32), (SysctlLivepatchAction.SizeOf(SysctlLayout.Seed2016), SysctlLivepatchAction.SizeOf(SysctlLayout.Xen414)));
        Assert.Equal((48, 72), (SysctlLivepatchOp.SizeOf(SysctlLayout.Seed2016), SysctlLivepatchOp.SizeOf(SysctlLayout.Xen414)));
        Assert.Equal(136, XenSysctl.SizeOf);
        Assert.Equal((64, 104), (LivepatchFunc.SizeOf(1), LivepatchFunc.SizeOf(2)));
        Assert.Equal(32, LivepatchExpectation.SizeOf);
    }
}
