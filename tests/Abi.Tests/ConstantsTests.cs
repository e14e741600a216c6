using System.Globalization;
using System.Text;
using XenLivepatch.TestKit;
using XenLivepatch.Tools.Gen;

namespace XenLivepatch.Abi.Tests;

/// <summary>Constants agree with their sources: errno values and texts with the C library, tables with their generated code.</summary>
public class ConstantsTests
{
    [Fact]
    public void Errno_values_and_messages_are_the_c_librarys()
    {
        var values = Enum.GetValues<XenErrno>();
        var c = new StringBuilder("#include <errno.h>\n#include <stdio.h>\n#include <string.h>\nint main(void) {\n");
        foreach (var e in values)
            c.Append(CultureInfo.InvariantCulture, $"  printf(\"%s|%d|%s\\n\", \"{e}\", {e}, strerror({e}));\n");
        c.Append("  return 0;\n}\n");
        string dir = Repo.TempDirectory("errno");
        File.WriteAllText(Path.Combine(dir, "errno.c"), c.ToString());
        Tool.Run("gcc", "-o", Path.Combine(dir, "errno"), Path.Combine(dir, "errno.c")).EnsureSuccess();
        var lines = Tool.Run(Path.Combine(dir, "errno")).EnsureSuccess().Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(values.Length, lines.Length);
        foreach (string line in lines)
        {
            string[] p = line.Split('|');
            var e = Enum.Parse<XenErrno>(p[0]);
            Assert.Equal((p[0], int.Parse(p[1], CultureInfo.InvariantCulture), p[2]), (e.ToString(), (int)e, e.GetMessage()));
        }
    }

    [Fact]
    public void The_errno_values_livepatch_uses_are_xens()
    {
        // xen/include/public/errno.h, as the livepatch code returns them (reference §1.1).
        Assert.Equal(
            [1, 2, 7, 11, 12, 13, 14, 16, 17, 22, 34, 38, 61, 75, 95, 105],
            new[] { XenErrno.EPERM, XenErrno.ENOENT, XenErrno.E2BIG, XenErrno.EAGAIN, XenErrno.ENOMEM, XenErrno.EACCES, XenErrno.EFAULT, XenErrno.EBUSY,
                    XenErrno.EEXIST, XenErrno.EINVAL, XenErrno.ERANGE, XenErrno.ENOSYS, XenErrno.ENODATA, XenErrno.EOVERFLOW, XenErrno.EOPNOTSUPP, XenErrno.ENOBUFS }.Select(e => (int)e));
    }

    [Fact]
    public void Livepatch_constants_are_the_abis()
    {
        Assert.Equal(27u, Livepatch.SysctlCommand);
        Assert.Equal((0u, 1u, 2u, 3u), ((uint)LivepatchSubOp.Upload, (uint)LivepatchSubOp.Get, (uint)LivepatchSubOp.List, (uint)LivepatchSubOp.Action));
        Assert.Equal((1u, 2u, 3u, 4u), ((uint)LivepatchAction.Unload, (uint)LivepatchAction.Revert, (uint)LivepatchAction.Apply, (uint)LivepatchAction.Replace));
        Assert.Equal((1u, 2u), ((uint)LivepatchState.Checked, (uint)LivepatchState.Applied));
        Assert.Equal((1u, 1u), ((uint)LivepatchOpFlags.Force, (uint)LivepatchActionFlags.ApplyNoDeps));
        Assert.Equal((128, 31, 2097152UL, 30_000_000u, 1024u, 1024), (Livepatch.NameSize, Livepatch.OpaqueSize, Livepatch.MaxPayloadSize, Livepatch.DefaultTimeoutNs, Livepatch.ListMaxBatch, Livepatch.MaxSections));
        Assert.Equal((0x0Du, 0x15u, 0x16u), (LivepatchAbi.Seed2016.InterfaceVersion, LivepatchAbi.Xen417.InterfaceVersion, LivepatchAbi.Xen421.InterfaceVersion));
        Assert.Equal(((byte)1, (byte)2), (LivepatchAbi.Seed2016.PayloadVersion, LivepatchAbi.Xen417.PayloadVersion));
        Assert.Equal(LivepatchAbi.Xen417, LivepatchAbi.FromName("xen-4.17"));
        Assert.False(LivepatchAbi.Xen417.ListSizesAreInputs);
        Assert.True(LivepatchAbi.Xen421.ListSizesAreInputs);
    }

    [Fact]
    public void Generated_tables_are_up_to_date()
    {
        foreach (var (path, text) in TableGenerator.GenerateAll(Repo.Root))
            Assert.True(File.ReadAllText(Repo.Path(path)) == text, $"{path} is stale: run 'dotnet run --project tools/Gen'");
    }
}
