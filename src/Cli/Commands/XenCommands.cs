using System.Text;
using XenLivepatch.Abi;
using XenLivepatch.Control;
using XenLivepatch.Interop;

namespace XenLivepatch.Cli;

/// <summary>
/// Xen's commands as Debian's Xen 4.17.7 <c>xen-livepatch</c> runs them (tools/misc/xen-livepatch.c, reference
/// §5.1): the same checks in the same order, the same texts on the same streams, the same return values (0, an
/// errno, or -1, which <see cref="ExitCodes.FromResult"/> turns into 0, 1 or 2).
/// </summary>
internal static class XenCommands
{
    /// <summary>The tool's wait between an action and the GET that reads its outcome: twice the hypervisor's 30 ms.</summary>
    public static readonly TimeSpan ActionWait = TimeSpan.FromTicks(2 * LivepatchClient.ToolTimeoutNs / 100);

    /// <summary>
    /// How long, in all, the tool waits for an action that still reads "in progress" (see <see cref="ActionAsync"/>):
    /// 10 s, longer than the sandbox may legitimately take on a busy host (its rendezvous waits for vCPU threads the
    /// host has not run, up to 5 s past the deadline; <c>Rendezvous.ExtensionCap</c>). Real Xen ends an action by
    /// its deadline, so there the first look reads its outcome.
    /// </summary>
    public static readonly TimeSpan ActionPatience = TimeSpan.FromSeconds(10);

    private const int EINVAL = (int)XenErrno.EINVAL;
    private const int EAGAIN = (int)XenErrno.EAGAIN;

    /// <summary>The actions, in Xen's <c>action_options</c> order: name, the state it needs, the outcome it expects, the verb.</summary>
    private static readonly (string Name, LivepatchAction Action, uint Allow, int Expected, string Verb)[] s_actions =
    [
        ("apply", LivepatchAction.Apply, (uint)LivepatchState.Checked, (int)LivepatchState.Applied, "Applying"),
        ("revert", LivepatchAction.Revert, (uint)LivepatchState.Applied, (int)LivepatchState.Checked, "Reverting"),
        ("unload", LivepatchAction.Unload, (uint)LivepatchState.Checked, -(int)XenErrno.ENOENT, "Unloading"),
        ("replace", LivepatchAction.Replace, (uint)LivepatchState.Checked, (int)LivepatchState.Applied, "Replacing all live patches with"),
    ];

    /// <summary><c>state2str</c>.</summary>
    public static string StateName(long state) => state switch
    {
        (long)LivepatchState.Checked => "CHECKED",
        (long)LivepatchState.Applied => "APPLIED",
        _ => "unknown",
    };

    private static string Error(int errno) => $"Error {errno}: {LibC.StrError(errno)}\n";

    // get_name: the tool's own check (strlen > 128); libxc then refuses 128 itself (strlen + 1 > 128).
    private static bool CheckName(Session s, string name)
    {
        if (RawText.GetByteCount(name) > Livepatch.NameSize)
        {
            s.Err($"ID must be no more than {Livepatch.NameSize} characters.\n");
            if (s.Current != null)
                s.Current.Errno = EINVAL;
            return false;
        }
        return true;
    }

    /// <summary><c>upload_func</c>: <c>upload &lt;name&gt; &lt;file&gt;</c>.</summary>
    public static async Task<int> UploadAsync(Session s, string[] args)
    {
        if (args.Length != 2)
        {
            s.Help();
            return -1;
        }
        var step = s.Begin("upload", args[0]);
        step.File = args[1];
        if (!CheckName(s, args[0]))
            return EINVAL;
        string file = args[1];
        if (!PayloadFile.TryRead(file, out byte[] data, out string failed, out int errno))
        {
            s.Err($"Could not {failed} {file}.\n{Error(errno)}");
            step.Errno = errno;
            return errno;
        }
        var client = await s.ClientAsync().ConfigureAwait(false);
        if (client == null)
            return -1;
        s.Out($"Uploading {file}... ");
        var r = await client.UploadAsync(args[0], data, s.Options.Force, s.CancellationToken).ConfigureAwait(false);
        if (!r.Succeeded)
        {
            s.Out("failed\n");
            s.Err(Error(r.Errno));
            step.Errno = r.Errno;
            if (s.Options.Force && r.Errno == EINVAL && client.Abi.InterfaceVersion <= 0x15)
                s.Err("xen-livepatch: note: hypervisors before Xen 4.19 refuse --force (their sysctl has a pad word there); retry without --force\n");
            return r.Errno;
        }
        s.Out("completed\n");
        step.Outcome = "completed";
        return 0;
    }

    /// <summary>Looks up an action by its full name (the dispatcher has resolved abbreviations).</summary>
    public static int ActionIndex(string name) => Array.FindIndex(s_actions, a => a.Name == name);

    /// <summary><c>action_func</c>: <c>apply|revert|unload|replace &lt;name&gt; [flags]</c>.</summary>
    public static async Task<int> ActionAsync(Session s, string[] args, int index)
    {
        if (args.Length < 1)
        {
            s.Help();
            return -1;
        }
        var (actionName, action, allow, expected, verb) = s_actions[index];
        string name = args[0];
        var step = s.Begin(actionName, name);
        if (!CheckName(s, name))
            return EINVAL;
        // get_flags: only apply has one, --nodeps.
        var flags = LivepatchActionFlags.None;
        foreach (string flag in args.AsSpan(1))
        {
            if (action == LivepatchAction.Apply && flag == "--nodeps")
            {
                flags |= LivepatchActionFlags.ApplyNoDeps;
                continue;
            }
            s.Err($"Unsupported flag: {flag}.\n");
            step.Errno = EINVAL;
            return EINVAL;
        }
        var client = await s.ClientAsync().ConfigureAwait(false);
        if (client == null)
            return -1;

        var get = await client.GetAsync(name, s.CancellationToken).ConfigureAwait(false);
        if (!get.Result.Succeeded)
        {
            s.Err($"Failed to get status of {name}.\n{Error(get.Result.Errno)}");
            step.Errno = get.Result.Errno;
            return get.Result.Errno;
        }
        step.State = get.Status.State;
        step.Rc = get.Status.Rc;
        LivepatchResult r = default;
        bool asked = false;
        if (get.Status.Rc == -(int)XenErrno.EAGAIN)
        {
            // "In progress" is what Xen's tool reads here, and it refuses. But Xen 4.17 also leaves rc at -EAGAIN for
            // good when the action that set it found another payload's action pending (reference §7.4, quirk 4),
            // and then every action on the payload was refused. Where the action is allowed in this state, ours asks
            // the hypervisor instead, which knows: it answers -EBUSY while this payload's action is really pending
            // (and then the message is Xen's), and otherwise runs the action, which clears the stale rc.
            bool allowed = (allow & get.Status.State) != 0 && get.Status.State != unchecked((uint)expected);
            if (allowed)
            {
                r = await client.ActionAsync(name, action, LivepatchClient.ToolTimeoutNs, flags, s.CancellationToken).ConfigureAwait(false);
                asked = true;
            }
            if (!allowed || r.Errno == (int)XenErrno.EBUSY)
            {
                s.Err($"Cannot execute {actionName}.\nOperation already in progress.\n");
                step.Errno = EAGAIN;
                return EAGAIN;
            }
        }
        else if (get.Status.State == unchecked((uint)expected))
        {
            s.Out("No action needed.\n");
            step.Outcome = "no-action";
            return 0;
        }
        else if ((allow & get.Status.State) == 0)
        {
            s.Err($"{name} is in the wrong state.\nCurrent state: {StateName(get.Status.State)}\nExpected state: {StateName(allow)}\n");
            return -1;
        }

        s.Out($"{verb} {name}... ");
        if (!asked)
            r = await client.ActionAsync(name, action, LivepatchClient.ToolTimeoutNs, flags, s.CancellationToken).ConfigureAwait(false);
        if (!r.Succeeded)
        {
            s.Out("failed\n");
            s.Err(Error(r.Errno));
            step.Errno = r.Errno;
            return r.Errno;
        }

        // Xen's tool (since 4.9) waits once, twice the hypervisor's 30 ms deadline, and reads the outcome: on real Xen
        // the action has finished or timed out by then. The sandbox's CPUs are threads of a host that may be busy,
        // so while the outcome still reads "in progress" ours waits again, up to ActionPatience in all, before it
        // says "Operation didn't complete."; an action that finished in time prints exactly what Xen's tool prints.
        int rc;
        for (int waited = 1; ; waited++)
        {
            await s.Delay(ActionWait).ConfigureAwait(false);
            get = await client.GetAsync(name, s.CancellationToken).ConfigureAwait(false);
            rc = !get.Result.Succeeded ? get.Result.Rc : get.Status.Rc;
            if (rc != -(int)XenErrno.EAGAIN || waited * ActionWait >= ActionPatience)
                break;
        }
        step.State = get.Result.Succeeded ? get.Status.State : null;
        step.Rc = get.Result.Succeeded ? get.Status.Rc : null;
        if (rc == -(int)XenErrno.EAGAIN)
        {
            s.Out("failed\n");
            s.Err("Operation didn't complete.\n");
            step.Errno = EAGAIN;
            return EAGAIN;
        }
        if (rc == 0)
            rc = (int)get.Status.State;
        if (rc == expected)
        {
            s.Out("completed\n");
            step.Outcome = "completed";
            return 0;
        }
        s.Out("failed\n");
        if (rc < 0)
        {
            s.Err(Error(-rc));
            step.Errno = -rc;
            return -rc;
        }
        s.Err($"{name} is in the wrong state.\nCurrent state: {StateName(rc)}\nExpected state: {StateName(expected)}\n");
        return -1;
    }

    /// <summary>
    /// <c>load_func</c>: <c>load &lt;file&gt; [flags]</c>: upload under the file's name (its basename up to the last
    /// dot), then apply with the flags; if the apply fails, unload (its result ignored) and return the apply's.
    /// </summary>
    public static async Task<int> LoadAsync(Session s, string[] args)
    {
        if (args.Length < 1)
        {
            s.Help();
            return -1;
        }
        string name = NameOf(args[0]);
        int rc = await UploadAsync(s, [name, args[0]]).ConfigureAwait(false);
        if (rc != 0)
            return rc;
        rc = await ActionAsync(s, [name, .. args.AsSpan(1)], ActionIndex("apply")).ConfigureAwait(false);
        if (rc != 0)
            await ActionAsync(s, [name], ActionIndex("unload")).ConfigureAwait(false);
        return rc;
    }

    /// <summary>
    /// The payload name <c>load</c> makes of a path: POSIX <c>basename</c> (trailing slashes ignored), cut at its
    /// last dot.
    /// </summary>
    public static string NameOf(string path)
    {
        string trimmed = path.TrimEnd('/');
        string b = trimmed.Length == 0 ? (path.Length == 0 ? "." : "/") : trimmed[(trimmed.LastIndexOf('/') + 1)..];
        int dot = b.LastIndexOf('.');
        return dot >= 0 ? b[..dot] : b;
    }

    /// <summary><c>list_func</c>: sizes, then every entry in one <c>xc_livepatch_list</c>, then the table.</summary>
    public static async Task<int> ListAsync(Session s, string[] args)
    {
        if (args.Length != 0)
        {
            s.Help();
            return -1;
        }
        var step = s.Begin("list");
        var client = await s.ClientAsync().ConfigureAwait(false);
        if (client == null)
            return -1;
        // Xen's tool reads the sizes, then the list, once; a list that changed in between left it printing "Failed to
        // list" with whatever errno was (0) and exiting 0. Ours reads both again, as libxc's own retries do, and
        // after MaxListRetries changes fails with EBUSY (exit 2: retry).
        LivepatchListSizes sizes;
        LivepatchList list;
        for (int attempt = 0; ; attempt++)
        {
            sizes = await client.GetListSizesAsync(s.CancellationToken).ConfigureAwait(false);
            if (!sizes.Result.Succeeded)
            {
                s.Err($"Failed to get list sizes.\n{Error(sizes.Result.Errno)}");
                step.Errno = sizes.Result.Errno;
                return sizes.Result.Errno;
            }
            if (sizes.Count == 0)
            {
                s.Out("Nothing to list\n");
                step.Outcome = "completed";
                s.Listed = [];
                return 0;
            }
            list = await client.ListAsync(sizes.Count, 0, sizes.NameTotalSize, sizes.MetadataTotalSize, s.CancellationToken).ConfigureAwait(false);
            if (list.Result.Succeeded && list.Done == sizes.Count && list.Left == 0)
                break;
            int rc = list.Result.Rc;
            bool changed = list.Result.Succeeded || rc == -(int)XenErrno.ENOBUFS || rc == -(int)XenErrno.EBUSY
                || (rc == -(int)XenErrno.EFAULT && list.Version != sizes.Version);
            if (!changed || attempt >= LivepatchClient.MaxListRetries)
            {
                int errno = list.Result.Succeeded ? (int)XenErrno.EBUSY : list.Result.Errno;
                s.Err($"Failed to list {list.Left}/{sizes.Count}.\n{Error(errno)}");
                step.Errno = errno;
                return errno;
            }
        }
        var text = new StringBuilder();
        text.Append(" ID                                     | status     | metadata\n");
        text.Append("----------------------------------------+------------+---------------\n");
        foreach (var e in list.Entries)
            text.Append(Row(e));
        s.Out(text.ToString());
        step.Outcome = "completed";
        s.Listed = list.Entries;
        if (s.Json)
        {
            foreach (var e in list.Entries)
                s.Signatures[e.Name] = await s.SignatureAsync(client, e.Name).ConfigureAwait(false);
        }
        return 0;
    }

    /// <summary>
    /// One row of Xen's table: <c>"%-40.*s| %s"</c> (name padded to 40 bytes, state), <c>" (%d, %s)    | "</c> when rc
    /// is set or <c>"    | "</c>, then the metadata with its NULs (but the last) turned into ';'.
    /// </summary>
    public static string Row(LivepatchListEntry e)
    {
        var sb = new StringBuilder();
        sb.Append(e.Name);
        // printf pads by bytes, not characters.
        sb.Append(' ', Math.Max(0, 40 - e.NameBytes.Length));
        sb.Append("| ").Append(StateName(e.Status.State));
        if (e.Status.Rc != 0)
            sb.Append(" (").Append(-e.Status.Rc).Append(", ").Append(LibC.StrError(-e.Status.Rc)).Append(")    | ");
        else
            sb.Append("    | ");
        byte[] meta = (byte[])e.Metadata.Clone();
        for (int j = 0; j + 1 < meta.Length; j++)
        {
            if (meta[j] == 0)
                meta[j] = (byte)';';
        }
        int end = Array.IndexOf(meta, (byte)0);
        sb.Append(Encoding.UTF8.GetString(meta, 0, end < 0 ? meta.Length : end));
        sb.Append('\n');
        return sb.ToString();
    }
}
