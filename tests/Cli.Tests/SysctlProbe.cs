using System.Buffers.Binary;
using System.Globalization;
using System.Text;
using XenLivepatch.Abi;
using XenLivepatch.TestKit;

namespace XenLivepatch.Cli.Tests;

/// <summary>
/// tests/qemu/sysctl-probe.c's commands run against our core through the same <c>do_sysctl</c> entry point, answered
/// in the probe's words: raw livepatch sysctls (the op's flags word, LIST's sizes in and out, the action's pad word,
/// unknown sub-ops), so that what real Xen answered in dom0 and what our profile answers compare line for line.
/// </summary>
internal static class SysctlProbe
{
    /// <summary>Builds the probe for dom0 (a host program: run.sh adds its libraries) into <paramref name="directory"/>.</summary>
    public static string Build(string directory)
    {
        string output = Path.Combine(directory, "sysctl-probe");
        Tool.Run("gcc", "-O2", "-Wall", "-Werror", "-o", output, Repo.Path("tests", "qemu", "sysctl-probe.c")).EnsureSuccess();
        return output;
    }

    /// <summary>Runs <paramref name="commands"/> against <paramref name="xen"/>; files are read from <paramref name="directory"/>.</summary>
    public static string Run(OfflineXen xen, string commands, string directory)
    {
        var sb = new StringBuilder();
        uint version = 0x16;
        foreach (string raw in commands.Split('\n'))
        {
            string line = raw.Trim();
            if (line.Length == 0 || line[0] == '#')
                continue;
            string[] w = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
            switch (w[0])
            {
                case "interface":
                    version = Number(w[1]);
                    sb.Append(line).Append('\n');
                    break;
                case "sleep":
                    break;
                case "upload":
                {
                    byte[] data = File.ReadAllBytes(Path.Combine(directory, w[2]));
                    var name = NameBuffer(w[1]);
                    var payload = new WireBuffer(0x200000, data, In: true, Out: false);
                    var op = new SysctlLivepatchOp
                    {
                        Cmd = LivepatchSubOp.Upload, Flags = Number(w[3]),
                        Upload = new SysctlLivepatchUpload(Name(name), (ulong)data.Length, payload.Address),
                    };
                    sb.Append($"{line}: rc={Call(xen, version, op, [name, payload]).Rc}\n");
                    break;
                }
                case "get":
                {
                    var name = NameBuffer(w[1]);
                    var op = new SysctlLivepatchOp { Cmd = LivepatchSubOp.Get, Flags = Number(w[2]), Get = new SysctlLivepatchGet(Name(name), default) };
                    var (rc, back) = Call(xen, version, op, [name]);
                    var status = back.Get.Status;
                    sb.Append(CultureInfo.InvariantCulture, $"{line}: rc={rc} state={status.State} status_rc={status.Rc}\n");
                    break;
                }
                case "list":
                {
                    uint nr = Number(w[2]), nameSize = Number(w[3]), metaSize = Number(w[4]);
                    int entries = (int)Math.Min(nr, 1024);
                    var status = new WireBuffer(0x100000, new byte[entries * 8], false, true);
                    var len = new WireBuffer(0x110000, new byte[entries * 4], false, true);
                    var metaLen = new WireBuffer(0x120000, new byte[entries * 4], false, true);
                    var names = new WireBuffer(0x130000, new byte[nameSize], false, true);
                    var meta = new WireBuffer(0x180000, new byte[metaSize], false, true);
                    var op = new SysctlLivepatchOp
                    {
                        Cmd = LivepatchSubOp.List,
                        List = new SysctlLivepatchList
                        {
                            Idx = Number(w[1]), Nr = nr, NameTotalSize = nameSize, MetadataTotalSize = metaSize,
                            Status = status.Address, Name = names.Address, Len = len.Address, Metadata = meta.Address, MetadataLen = metaLen.Address,
                        },
                    };
                    var (rc, back) = Call(xen, version, op, [status, len, metaLen, names, meta]);
                    var l = back.List;
                    sb.Append(CultureInfo.InvariantCulture, $"{line}: rc={rc} version={l.Version} nr={l.Nr} name_total_size={l.NameTotalSize} metadata_total_size={l.MetadataTotalSize}");
                    int at = 0;
                    for (int k = 0; k < rc && k < 1024; k++)
                    {
                        uint n = BinaryPrimitives.ReadUInt32LittleEndian(len.Data.AsSpan(4 * k));
                        var text = names.Data.AsSpan(at, (int)Math.Min(n, 128));
                        int nul = text.IndexOf((byte)0);
                        string shown = Encoding.Latin1.GetString(nul < 0 ? text : text[..nul]);
                        uint state = BinaryPrimitives.ReadUInt32LittleEndian(status.Data.AsSpan(8 * k));
                        int src = BinaryPrimitives.ReadInt32LittleEndian(status.Data.AsSpan(8 * k + 4));
                        uint ml = BinaryPrimitives.ReadUInt32LittleEndian(metaLen.Data.AsSpan(4 * k));
                        sb.Append(CultureInfo.InvariantCulture, $" [{shown} len={n} state={state} rc={src} metadata_len={ml}]");
                        at += (int)n;
                    }
                    sb.Append('\n');
                    break;
                }
                case "action":
                {
                    var name = NameBuffer(w[1]);
                    var op = new SysctlLivepatchOp
                    {
                        Cmd = LivepatchSubOp.Action,
                        Action = new SysctlLivepatchAction { Name = Name(name), Cmd = Number(w[2]), Flags = Number(w[3]), Pad = Number(w[4]) },
                    };
                    sb.Append($"{line}: rc={Call(xen, version, op, [name]).Rc}\n");
                    break;
                }
                case "op":
                    sb.Append($"{line}: rc={Call(xen, version, new SysctlLivepatchOp { Cmd = (LivepatchSubOp)Number(w[1]), Flags = Number(w[2]) }, []).Rc}\n");
                    break;
                default:
                    sb.Append($"{line}: unknown command\n");
                    break;
            }
        }
        return sb.ToString();
    }

    private static uint Number(string s) => s.StartsWith("0x", StringComparison.OrdinalIgnoreCase)
        ? uint.Parse(s.AsSpan(2), NumberStyles.HexNumber, CultureInfo.InvariantCulture)
        : (uint)long.Parse(s, CultureInfo.InvariantCulture);

    private static WireBuffer NameBuffer(string name) => new(0x10000, Encoding.ASCII.GetBytes(name + "\0"), In: true, Out: false);

    private static XenLivepatchName Name(WireBuffer b) => new(b.Address, (ushort)b.Data.Length);

    // The whole sysctl as the probe sends it (the 4.14+ layout, any interface version), and what came back.
    private static (int Rc, SysctlLivepatchOp Back) Call(OfflineXen xen, uint version, SysctlLivepatchOp op, IReadOnlyList<WireBuffer> buffers)
    {
        byte[] sysctl = XenSysctl.EncodeLivepatch(new LivepatchAbi("probe", SysctlLayout.Xen414, version, 2), op);
        int rc = xen.Sysctl(sysctl, buffers);
        return (rc, XenSysctl.ReadLivepatch(sysctl, SysctlLayout.Xen414));
    }
}
