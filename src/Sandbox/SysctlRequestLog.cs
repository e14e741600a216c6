using XenLivepatch.Abi;
using XenLivepatch.Hypervisor;

namespace XenLivepatch.Sandbox;

/// <summary>
/// The socket server's log of what its peers asked and what they got: every call that changes something or
/// fails, one line each, naming the peer.
/// </summary>
internal sealed class SysctlRequestLog(TextWriter log, LivepatchCore core)
{
    /// <summary>Logs a sysctl and its result, unless it is a successful read a tool polls.</summary>
    public void Sysctl(in PeerCredentials peer, bool privileged, byte[] sysctl, int rc)
    {
        // A tool probing the interface version (the control library tries Xen 4.17's, then 4.21's, then the seed's):
        // say so, or a 2016-layout sandbox's log reads as if every LIST were refused.
        var header = XenSysctl.ReadHeader(sysctl);
        uint version = header.InterfaceVersion, ours = core.Profile.Abi.InterfaceVersion;
        if (version != ours)
        {
            log.WriteLine(string.Create(System.Globalization.CultureInfo.InvariantCulture,
                $"sysctl: pid {peer.Pid} uid {peer.Uid}: interface version 0x{version:x2} -> -EACCES (this hypervisor speaks 0x{ours:x2})"));
            return;
        }
        uint cmd = header.Cmd;
        string what;
        if (cmd == Livepatch.SysctlCommand)
        {
            var op = XenSysctl.ReadLivepatch(sysctl, core.Profile.Abi.Layout);
            // GET and LIST that succeed change nothing, and tools poll GET while an action runs.
            if (rc >= 0 && privileged && op.Cmd is LivepatchSubOp.Get or LivepatchSubOp.List)
                return;
            what = op.Cmd switch
            {
                LivepatchSubOp.Action => $"ACTION {(LivepatchAction)op.Action.Cmd}",
                _ => op.Cmd.ToString().ToUpperInvariant(),
            };
        }
        else
        {
            // Reading the console changes nothing either.
            if (rc >= 0 && privileged && cmd == SysctlCommands.ReadConsole)
                return;
            what = cmd switch
            {
                SysctlCommands.DebugKeys => "DEBUG_KEYS",
                SysctlCommands.ReadConsole => "READCONSOLE",
                _ => $"sysctl {cmd}",
            };
        }
        log.WriteLine($"sysctl: pid {peer.Pid} uid {peer.Uid}{(privileged ? "" : " (unprivileged)")}: {what} -> {Result(rc)}");
    }

    /// <summary>Logs a xen_version call that failed or came from an unprivileged peer.</summary>
    public void XenVersion(in PeerCredentials peer, bool privileged, int cmd, int rc)
    {
        if (rc >= 0 && privileged)
            return;
        log.WriteLine($"xen_version: pid {peer.Pid} uid {peer.Uid}{(privileged ? "" : " (unprivileged)")}: cmd {cmd} -> {Result(rc)}");
    }

    private static string Result(int rc) =>
        rc < 0 ? $"-{(XenErrno)(-rc)}" : rc.ToString(System.Globalization.CultureInfo.InvariantCulture);
}
