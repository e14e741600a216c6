using System.Globalization;
using XenLivepatch.Abi;

namespace XenLivepatch.Control;

/// <summary>
/// Finds the <c>XEN_SYSCTL_INTERFACE_VERSION</c> a hypervisor accepts, the way XTF's livepatch-priv-check does:
/// a harmless sysctl (a LIST size probe) is sent with a candidate version; -EACCES means "not this version"
/// (do_sysctl checks it before anything else, privilege included), any other answer means it is the one.
/// The known versions go first (Xen 4.17–4.20: 0x15, 4.21+: 0x16, the 2016 design: 0x0D), then 0x00–0x7F.
/// </summary>
public static class InterfaceProbe
{
    /// <summary>The highest version tried.</summary>
    public const uint Highest = 0x7F;

    /// <summary>The answer: the dialect found (null when none), and what to tell the user.</summary>
    /// <param name="Abi">The dialect, or null when every version got -EACCES.</param>
    /// <param name="Rc">The probe's result at that version (0, or -EPERM, -ENOSYS, ...).</param>
    /// <param name="Problem">Why no version was found.</param>
    /// <param name="Advice">What to do about it.</param>
    /// <param name="Warning">A problem calls will run into (not privileged, no live patching), or null.</param>
    public sealed record Outcome(LivepatchAbi? Abi, int Rc, string? Problem, string? Advice, string? Warning);

    /// <summary>The probe sysctl for <paramref name="interfaceVersion"/>: LIST with every field 0 (nr 0: sizes only).</summary>
    public static byte[] Request(uint interfaceVersion)
    {
        // An all-zero union is LIST with nr = 0 in both layouts: nothing is read from or written to the caller.
        var probe = new LivepatchAbi("probe", SysctlLayout.Xen414, interfaceVersion, 2);
        return XenSysctl.EncodeLivepatch(probe, new SysctlLivepatchOp { Cmd = LivepatchSubOp.List });
    }

    /// <summary>The candidates in the order they are tried.</summary>
    public static IEnumerable<uint> Candidates()
    {
        uint[] known = [LivepatchAbi.Xen417.InterfaceVersion, LivepatchAbi.Xen421.InterfaceVersion, LivepatchAbi.Seed2016.InterfaceVersion];
        foreach (uint v in known)
            yield return v;
        for (uint v = 0; v <= Highest; v++)
        {
            if (Array.IndexOf(known, v) < 0)
                yield return v;
        }
    }

    /// <summary>
    /// The dialect of interface version <paramref name="version"/>: a known one, or for another version the layout
    /// it must have (the 4.14 structures came with 0x13; payload version 2 with them).
    /// </summary>
    public static LivepatchAbi DialectOf(uint version) =>
        LivepatchAbi.All.FirstOrDefault(a => a.InterfaceVersion == version)
        ?? (version >= 0x13
            ? new LivepatchAbi($"sysctl-0x{version:x2}", SysctlLayout.Xen414, version, 2)
            : new LivepatchAbi($"sysctl-0x{version:x2}", SysctlLayout.Seed2016, version, 1));

    /// <summary>Runs the probe with <paramref name="call"/> (version → the probe's hypercall result).</summary>
    public static async Task<Outcome> RunAsync(Func<uint, ValueTask<int>> call, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(call);
        foreach (uint version in Candidates())
        {
            cancellationToken.ThrowIfCancellationRequested();
            int rc = await call(version).ConfigureAwait(false);
            if (rc == -(int)XenErrno.EACCES)
                continue;
            var abi = DialectOf(version);
            string? warning = rc switch
            {
                >= 0 => null,
                -(int)XenErrno.EPERM => "the hypervisor refuses live patching to this caller (EPERM): only the control domain " +
                    "(dom0, as root) may use it, or a domain that XSM/FLASK grants xen2:livepatch_op",
                -(int)XenErrno.ENOSYS => "the hypervisor has no live patching (ENOSYS): it was built without CONFIG_LIVEPATCH",
                _ => $"the hypervisor answered a LIST size probe with {XenErrors.Name(-rc)} ({XenErrors.Message(-rc)})",
            };
            return new Outcome(abi, rc, null, null, warning);
        }
        return new Outcome(null, -(int)XenErrno.EACCES,
            string.Create(CultureInfo.InvariantCulture, $"the hypervisor accepted none of the sysctl interface versions 0x00 to 0x{Highest:x2} (each got EACCES)"),
            "this is not a hypervisor this tool knows how to talk to; check that it is Xen (4.7 or later) or our sandbox", null);
    }

    /// <summary>
    /// Finishes opening <paramref name="transport"/>: with <paramref name="abi"/> given, uses it; otherwise probes the
    /// interface version over the transport and hands the dialect found to <paramref name="setAbi"/>. A transport that
    /// fails (its <see cref="LivepatchTransportException"/>, with <paramref name="callAdvice"/>) or finds no version is
    /// disposed; <paramref name="where"/> prefixes the no-version problem (a socket's path, or nothing).
    /// </summary>
    internal static async Task<TransportOpenResult> OpenAsync<T>(T transport, LivepatchAbi? abi, Action<T, LivepatchAbi> setAbi,
        string callAdvice, string? where, CancellationToken cancellationToken)
        where T : ISysctlTransport
    {
        if (abi != null)
        {
            setAbi(transport, abi);
            return TransportOpenResult.Opened(transport);
        }
        Outcome probe;
        try
        {
            probe = await RunAsync(v => transport.CallAsync(Request(v), [], cancellationToken), cancellationToken).ConfigureAwait(false);
        }
        catch (LivepatchTransportException e)
        {
            await transport.DisposeAsync().ConfigureAwait(false);
            return TransportOpenResult.Failed(e.Message, callAdvice);
        }
        if (probe.Abi == null)
        {
            await transport.DisposeAsync().ConfigureAwait(false);
            return TransportOpenResult.Failed(where == null ? probe.Problem! : $"{where}: {probe.Problem}", probe.Advice!);
        }
        setAbi(transport, probe.Abi);
        return TransportOpenResult.Opened(transport, probe.Warning);
    }
}

/// <summary>The outcome of opening a transport: the transport, or what went wrong and what to do.</summary>
/// <param name="Transport">The transport, or null.</param>
/// <param name="Problem">What went wrong (when <paramref name="Transport"/> is null).</param>
/// <param name="Advice">What to do next (when <paramref name="Transport"/> is null).</param>
/// <param name="Warning">A problem the calls will meet although the transport opened (EPERM, ENOSYS), or null.</param>
public sealed record TransportOpenResult(ISysctlTransport? Transport, string? Problem, string? Advice, string? Warning)
{
    /// <summary>A transport that opened.</summary>
    public static TransportOpenResult Opened(ISysctlTransport transport, string? warning = null) => new(transport, null, null, warning);

    /// <summary>No transport: what went wrong and what to do next.</summary>
    public static TransportOpenResult Failed(string problem, string advice) => new(null, problem, advice, null);
}
