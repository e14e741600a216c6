using XenLivepatch.Abi;

namespace XenLivepatch.Hypervisor.Tests;

/// <summary>
/// What Xen's C <c>xen-livepatch</c> would report for a step, computed on our core: its exit code and the
/// errno of its "Error N:" line ("-" when it prints none). The tool's logic (GET, ACTION, GET) is followed
/// step for step (reference §5.1), without its 60 ms wait: our offline CPUs finish at once.
/// </summary>
internal static class ToolEmulation
{
    public static string Run(LivepatchCore core, Step step, Func<string, byte[]> file)
    {
        if (step.Op == "upload")
        {
            var e = core.Upload(step.Name, file(step.File!));
            return e == null ? "0 -" : Result((int)e.Errno, (int)e.Errno);
        }
        var (cmd, allow, expected) = step.Op switch
        {
            "apply" => (LivepatchAction.Apply, LivepatchState.Checked, (int)LivepatchState.Applied),
            "revert" => (LivepatchAction.Revert, LivepatchState.Applied, (int)LivepatchState.Checked),
            "unload" => (LivepatchAction.Unload, LivepatchState.Checked, -(int)XenErrno.ENOENT),
            _ => throw new ArgumentException(step.Op),
        };
        int rc = core.Get(step.Name, out var status);
        if (rc != 0)
            return Result(-rc, -rc);
        if (status.Rc == -(int)XenErrno.EAGAIN)
            return Result((int)XenErrno.EAGAIN, null);
        if ((int)status.State == expected)
            return "0 -";
        if (((uint)allow & status.State) == 0)
            return Result(-1, null);
        rc = core.Action(step.Name, cmd, Livepatch.DefaultTimeoutNs);
        if (rc != 0)
            return Result(-rc, -rc);
        rc = core.Get(step.Name, out status);
        if (rc == 0 && status.Rc != 0)
            rc = status.Rc;
        if (rc == -(int)XenErrno.EAGAIN)
            return Result((int)XenErrno.EAGAIN, null);
        if (rc == 0)
            rc = (int)status.State;
        if (rc == expected)
            return "0 -";
        return rc < 0 ? Result(-rc, -rc) : Result(-1, null);
    }

    // The tool's main: 0 -> 0, EAGAIN/EBUSY -> 2, anything else -> 1.
    private static string Result(int ret, int? errno) =>
        $"{(ret == 0 ? 0 : ret is 11 or 16 ? 2 : 1)} {(errno?.ToString(System.Globalization.CultureInfo.InvariantCulture) ?? "-")}";
}
