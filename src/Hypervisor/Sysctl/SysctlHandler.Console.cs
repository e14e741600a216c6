using System.Globalization;
using System.Text;
using XenLivepatch.Abi;

namespace XenLivepatch.Hypervisor;

/// <summary>
/// The console sysctls of <c>do_sysctl</c> (xen/common/sysctl.c), so that a tool reads the livepatch core's state
/// the way <c>xl debug-keys x</c> and <c>xl dmesg</c> do on real Xen: XEN_SYSCTL_debug_keys runs each key's
/// handler (only 'x', the livepatch one, is registered here), XEN_SYSCTL_readconsole reads the ring it printed to.
/// </summary>
public sealed partial class SysctlHandler
{
    /// <summary>The console ring: the core's log lines and what debug keys print.</summary>
    public XenConsole Console { get; }

    // do_sysctl's other commands; the interface version and the privilege were checked already.
    private int OtherSysctl(uint cmd, Span<byte> sysctl, IGuestMemory guest)
    {
        var union = sysctl.Slice(XenSysctl.UnionOffset, XenSysctl.UnionSize);
        switch (cmd)
        {
            case SysctlCommands.ReadConsole:
            {
                var op = SysctlReadConsole.Read(union);
                int rc = Console.Read(ref op, guest);
                // Xen copies the structure back (count and index) whatever the result.
                op.Write(union);
                return rc;
            }
            case SysctlCommands.DebugKeys:
            {
                var op = SysctlDebugKeys.Read(union);
                Span<byte> key = stackalloc byte[1];
                for (uint i = 0; i < op.NrKeys; i++)
                {
                    if (!guest.Read(op.Keys + i, key))
                        return -(int)XenErrno.EFAULT;
                    HandleKeypress((char)key[0]);
                }
                return 0;
            }
            default:
                return LivepatchCheck.SysctlNotLivepatch.Rc();
        }
    }

    // handle_keypress: a key with no handler does nothing.
    private void HandleKeypress(char key)
    {
        if (key == 'x')
            PrintAll(key);
    }

    /// <summary>
    /// <c>livepatch_printall</c>, debug key 'x': the hypervisor's build-id, then per payload its name, state,
    /// regions and pages, its metadata, each function's old and new address and size, and its build-ids
    /// (reference §4.8). Addresses print as Xen's <c>%p</c>: 16 lowercase hex digits.
    /// </summary>
    public void PrintAll(char key = 'x')
    {
        var lines = new List<string> { $"'{key}' pressed - Dumping all livepatch patches" };
        if (!Core.Symbols.BuildId.IsEmpty)
            lines.Add("build-id: " + Convert.ToHexStringLower(Core.Symbols.BuildId.Span));
        Core.Read((payloads, _) =>
        {
            foreach (var p in payloads)
            {
                var m = p.Memory;
                ulong pages = (PayloadAllocation.PageAlign(m.TextSize) + PayloadAllocation.PageAlign(m.RwSize) + m.RoSize + PayloadAllocation.PageSize - 1) / PayloadAllocation.PageSize;
                lines.Add(string.Create(CultureInfo.InvariantCulture,
                    $" name={p.Name} state={StateName(p.State)}({(uint)p.State}) {Pointer(m.TextAddress)} (.data={Pointer(m.RwAddress)}, .rodata={Pointer(m.RoAddress)}) using {pages} pages."));
                // livepatch_display_metadata: printed at XENLOG_INFO, which a key handler always shows.
                string[] metadata = Encoding.UTF8.GetString(p.Metadata.Span).Split('\0', StringSplitOptions.RemoveEmptyEntries);
                if (metadata.Length > 0)
                {
                    lines.Add("livepatch: module metadata:");
                    foreach (string s in metadata)
                        lines.Add("livepatch:   " + s);
                }
                foreach (var f in p.Functions)
                    lines.Add(string.Create(CultureInfo.InvariantCulture, $"    {f.Name} patch {Pointer(f.OldAddress)}({f.Entry.OldSize}) with {Pointer(f.NewAddress)} ({f.Entry.NewSize})"));
                if (!p.BuildId.IsEmpty)
                    lines.Add("build-id=" + Convert.ToHexStringLower(p.BuildId.Span));
                if (!p.Depends.IsEmpty)
                    lines.Add("depend-on=" + Convert.ToHexStringLower(p.Depends.Span));
                if (!p.XenDepends.IsEmpty)
                    lines.Add("depend-on-xen=" + Convert.ToHexStringLower(p.XenDepends.Span));
            }
            return 0;
        });
        foreach (string line in lines)
            Console.PrintLine(line);
    }

    private static string StateName(LivepatchState state) => state switch
    {
        LivepatchState.Checked => "CHECKED",
        LivepatchState.Applied => "APPLIED",
        _ => "unknown",
    };

    private static string Pointer(ulong address) => address.ToString("x16", CultureInfo.InvariantCulture);
}
