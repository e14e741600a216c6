namespace XenLivepatch.Abi;

/// <summary>The two layouts of the sysctl livepatch structures.</summary>
public enum SysctlLayout
{
    /// <summary>
    /// The seed's form (Xen 4.7–4.13, the 2016 design): <c>list</c> is 40 bytes with 128-byte name slots,
    /// <c>action</c> 24 bytes without flags, <c>livepatch_func</c> version 1 (64 bytes).
    /// </summary>
    Seed2016,

    /// <summary>
    /// Xen 4.14 and later: <c>list</c> is 64 bytes (packed names, metadata), <c>action</c> 32 bytes with
    /// flags, <c>livepatch_func</c> version 2 (104 bytes, with an expectation).
    /// </summary>
    Xen414,
}

/// <summary>
/// One dialect of the livepatch sysctl: its layout, the <c>XEN_SYSCTL_INTERFACE_VERSION</c> to send, and the
/// payload version its hypervisor accepts. The interface version is what the hypervisor checks first: any
/// other value gets -EACCES.
/// </summary>
public sealed record LivepatchAbi(string Name, SysctlLayout Layout, uint InterfaceVersion, byte PayloadVersion)
{
    /// <summary>The seed design's 2016 form (Xen 4.7, interface 0x0D, payload version 1).</summary>
    public static LivepatchAbi Seed2016 { get; } = new("seed-2016", SysctlLayout.Seed2016, 0x0000000D, 1);

    /// <summary>Xen 4.17 (interface 0x15, as Debian's libxenctrl 4.17 sends it; payload version 2).</summary>
    public static LivepatchAbi Xen417 { get; } = new("xen-4.17", SysctlLayout.Xen414, 0x00000015, 2);

    /// <summary>Xen 4.21 and later (interface 0x16: LIST takes buffer sizes in and may answer -ENOBUFS).</summary>
    public static LivepatchAbi Xen421 { get; } = new("xen-4.21", SysctlLayout.Xen414, 0x00000016, 2);

    /// <summary>Every known dialect.</summary>
    public static IReadOnlyList<LivepatchAbi> All { get; } = [Seed2016, Xen417, Xen421];

    /// <summary>True when LIST's <c>*_total_size</c> fields are buffer sizes on input (interface 0x16 and later).</summary>
    public bool ListSizesAreInputs => InterfaceVersion >= 0x16;

    /// <summary>Finds a dialect by name ("seed-2016", "xen-4.17", "xen-4.21").</summary>
    public static LivepatchAbi? FromName(string name) => All.FirstOrDefault(a => a.Name == name);

    /// <summary>Size of <c>livepatch_func</c> in this dialect's payloads.</summary>
    public int FuncSize => LivepatchFunc.SizeOf(PayloadVersion);
}
