using System.Text;
using XenLivepatch.Abi;

namespace XenLivepatch.Control;

/// <summary>What XENVER_build_id answered: the call's result and, on success, the build-id.</summary>
/// <param name="Result">The call's result (the byte count on success).</param>
/// <param name="BuildId">The running hypervisor's build-id (empty on failure).</param>
public sealed record BuildIdResult(LivepatchResult Result, byte[] BuildId)
{
    /// <summary>The build-id as <c>/sys/hypervisor/properties/buildid</c> prints it: lowercase hex.</summary>
    public string Hex => Convert.ToHexStringLower(BuildId);
}

/// <summary>What one XEN_SYSCTL_readconsole read: the bytes, and the index where the next incremental read starts.</summary>
/// <param name="Result">The call's result.</param>
/// <param name="Data">The bytes read.</param>
/// <param name="Index">Where the read stopped.</param>
public sealed record ConsoleRead(LivepatchResult Result, byte[] Data, uint Index);

/// <summary>What <see cref="LivepatchClient.DumpAsync"/> found: the 'x' dump, or why there is none.</summary>
/// <param name="Result">The first call that failed, or success.</param>
/// <param name="Dump">The dump (null on failure).</param>
/// <param name="Problem">Why there is no dump although every call succeeded (the lock was held, the ring overflowed).</param>
public sealed record DumpResult(LivepatchResult Result, LivepatchDump? Dump, string? Problem);

public sealed partial class LivepatchClient
{
    /// <summary>How many bytes one console read asks for (what <c>xl dmesg</c> reads at a time).</summary>
    public const int ConsoleChunk = 16 * 1024;

    /// <summary>How often <see cref="DumpAsync"/> presses 'x' again when Xen answers "Lock held. Try again."</summary>
    public const int DumpAttempts = 3;

    /// <summary>
    /// <c>xc_version(XENVER_build_id)</c>: the running hypervisor's build-id, which every payload's
    /// <c>.livepatch.xen_depends</c> must equal. Errors: -EPERM (not the control domain), -ENODATA (built without
    /// one), -ENOSYS (a transport or sandbox that cannot ask).
    /// </summary>
    public async Task<BuildIdResult> GetBuildIdAsync(CancellationToken cancellationToken = default)
    {
        var arg = new WireBuffer(0x10_0000, XenBuildId.Request(XenVersion.MaxBuildId), In: true, Out: true);
        int rc = await Transport.XenVersionAsync(XenVersion.BuildId, arg, cancellationToken).ConfigureAwait(false);
        if (rc < 0)
            return new BuildIdResult(new LivepatchResult(LivepatchCall.BuildId, rc), []);
        if (rc == 0 || rc > XenVersion.MaxBuildId)
            return new BuildIdResult(new LivepatchResult(LivepatchCall.BuildId, -(int)XenErrno.EOVERFLOW), []);
        return new BuildIdResult(new LivepatchResult(LivepatchCall.BuildId, rc), arg.Data.AsSpan(XenBuildId.FieldLocations.Buf, rc).ToArray());
    }

    /// <summary><c>xc_send_debug_keys</c>: presses <paramref name="keys"/> on the hypervisor's console (XEN_SYSCTL_debug_keys).</summary>
    public async Task<LivepatchResult> DebugKeysAsync(string keys, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(keys);
        byte[] bytes = Encoding.ASCII.GetBytes(keys);
        var buffers = new GuestLayout();
        var keyBuffer = buffers.In(bytes);
        byte[] sysctl = SysctlCommands.Encode(SysctlCommands.DebugKeys, Abi.InterfaceVersion,
            u => new SysctlDebugKeys(keyBuffer.Address, (uint)bytes.Length).Write(u));
        int rc = await Transport.CallAsync(sysctl, buffers.Buffers, cancellationToken).ConfigureAwait(false);
        return new LivepatchResult(LivepatchCall.DebugKeys, rc);
    }

    /// <summary>
    /// One XEN_SYSCTL_readconsole (<c>xc_readconsolering</c>): up to <paramref name="count"/> bytes of the console
    /// ring, from its oldest byte, or from <paramref name="index"/> when given and still in the ring.
    /// </summary>
    public async Task<ConsoleRead> ReadConsoleAsync(uint? index = null, int count = ConsoleChunk, CancellationToken cancellationToken = default)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(count);
        var buffers = new GuestLayout();
        var data = buffers.Out(count);
        byte[] sysctl = SysctlCommands.Encode(SysctlCommands.ReadConsole, Abi.InterfaceVersion,
            u => new SysctlReadConsole(0, index.HasValue ? (byte)1 : (byte)0, index ?? 0, data.Address, (uint)count).Write(u));
        int rc = await Transport.CallAsync(sysctl, buffers.Buffers, cancellationToken).ConfigureAwait(false);
        var back = SysctlReadConsole.Read(sysctl.AsSpan(XenSysctl.UnionOffset));
        if (rc < 0)
            return new ConsoleRead(new LivepatchResult(LivepatchCall.ReadConsole, rc), [], back.Index);
        if (back.Count > (uint)count)
            return new ConsoleRead(new LivepatchResult(LivepatchCall.ReadConsole, -(int)XenErrno.EOVERFLOW), [], back.Index);
        return new ConsoleRead(new LivepatchResult(LivepatchCall.ReadConsole, 0), data.Data.AsSpan(0, (int)back.Count).ToArray(), back.Index);
    }

    /// <summary>
    /// What Xen's debug key 'x' prints, read as <c>xl debug-keys x</c> then <c>xl dmesg</c> would show it: the
    /// console ring is read to its end first (to know where the dump will start), 'x' is pressed, and what the
    /// ring gained is parsed (<see cref="LivepatchDump.Parse"/>). "Lock held. Try again." is retried.
    /// </summary>
    public async Task<DumpResult> DumpAsync(CancellationToken cancellationToken = default)
    {
        string? problem = null;
        for (int attempt = 0; attempt < DumpAttempts; attempt++)
        {
            var end = await ReadToEndAsync(null, cancellationToken).ConfigureAwait(false);
            if (!end.Result.Succeeded)
                return new DumpResult(end.Result, null, null);
            var keys = await DebugKeysAsync("x", cancellationToken).ConfigureAwait(false);
            if (!keys.Succeeded)
                return new DumpResult(keys, null, null);
            var after = await ReadToEndAsync(end.Index, cancellationToken).ConfigureAwait(false);
            if (!after.Result.Succeeded)
                return new DumpResult(after.Result, null, null);
            string text = Encoding.UTF8.GetString(after.Data);
            var dump = LivepatchDump.Parse(text);
            if (dump != null && !dump.LockHeld)
                return new DumpResult(new LivepatchResult(LivepatchCall.ReadConsole, 0), dump, null);
            problem = dump == null
                ? "the console ring did not show the 'x' dump (it may have wrapped: Xen's console ring is smaller than the dump)"
                : "the livepatch core was busy (\"Lock held. Try again.\")";
            if (dump == null)
                break;
            await Task.Delay(TimeSpan.FromMilliseconds(50), cancellationToken).ConfigureAwait(false);
        }
        return new DumpResult(new LivepatchResult(LivepatchCall.ReadConsole, 0), null, problem);
    }

    // Reads from index (or the oldest byte) until a read returns nothing; answers the bytes and the end index.
    private async Task<ConsoleRead> ReadToEndAsync(uint? index, CancellationToken cancellationToken)
    {
        var all = new MemoryStream();
        uint at = index ?? 0;
        bool first = true;
        // A ring that keeps filling as fast as it is read (a chatty hypervisor) still ends: at most 1024 chunks.
        for (int i = 0; i < 1024; i++)
        {
            var read = await ReadConsoleAsync(first ? index : at, ConsoleChunk, cancellationToken).ConfigureAwait(false);
            if (!read.Result.Succeeded)
                return read;
            first = false;
            at = read.Index;
            if (read.Data.Length == 0)
                break;
            all.Write(read.Data);
        }
        return new ConsoleRead(new LivepatchResult(LivepatchCall.ReadConsole, 0), all.ToArray(), at);
    }
}
