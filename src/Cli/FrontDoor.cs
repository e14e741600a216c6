using System.Runtime.InteropServices;
using System.Text;
using XenLivepatch.Interop;

namespace XenLivepatch.Cli;

/// <summary>
/// The front binary, <c>xen-livepatch</c>: Xen's own commands without <c>--json</c> (help, list, upload, apply,
/// revert, replace, unload, load, abbreviated as Xen allows) run here, through <see cref="XenDispatch"/>, the code the
/// whole tool runs for them; every other command line is handed unchanged to the whole tool,
/// <c>xen-livepatch-full</c>, by <c>execv</c> (as git runs its own programs from libexec). The reason is start-up:
/// a NativeAOT program allocates every static of every type it links before <c>Main</c> (1,330 for the whole tool,
/// a third of that here), and the C tool admins compare us with starts in a few dozen milliseconds in dom0.
/// </summary>
internal static class FrontDoor
{
    /// <summary>The whole tool's file name.</summary>
    public const string FullName = "xen-livepatch-full";

    /// <summary>
    /// The Xen command the front runs for <paramref name="args"/>, or null when the whole tool must (any
    /// <c>--json</c>, our commands, <c>--help</c>, <c>--version</c>, a mistyped command, a wrong option, no
    /// command, <c>list --installed</c>).
    /// </summary>
    public static string? Runs(string[] args, out ToolOptions options, out string[] rest)
    {
        options = new ToolOptions();
        rest = [];
        if (args.Length == 0 || Array.IndexOf(args, "--json") >= 0)
            return null;
        if (!XenDispatch.TryOptions(args, TextWriter.Null, out options, out int at) || at == args.Length)
            return null;
        string? command = XenDispatch.XenCommand(args[at]);
        rest = args[(at + 1)..];
        if (command == null || (command == "list" && Array.IndexOf(rest, "--installed") >= 0))
            return null;
        return command;
    }

    /// <summary>Runs Xen's <paramref name="command"/> as the whole tool does without <c>--json</c>.</summary>
    public static async Task<int> RunAsync(string command, string[] rest, ToolOptions options, TextWriter stdout, TextWriter stderr,
        ToolHost host, CancellationToken cancellationToken = default)
    {
        if (XenDispatch.AsksHelp(command, rest))
        {
            stderr.Write(Usage.Help);
            return ExitCodes.Success;
        }
        var (exit, _) = await XenDispatch.InSessionAsync(command, options, stdout, stderr, host,
            session => XenDispatch.RunXenCommandAsync(session, command, rest), report: null, synopsis: null, cancellationToken).ConfigureAwait(false);
        return exit;
    }

    /// <summary>
    /// Where the whole tool is, for a front at <paramref name="self"/>: beside it (the build's publish folder), or
    /// in <c>../lib/xen-livepatch/</c> (where install.sh puts it: PREFIX/sbin and PREFIX/lib/xen-livepatch).
    /// </summary>
    public static IEnumerable<string> Candidates(string self)
    {
        string dir = Path.GetDirectoryName(self) ?? ".";
        yield return Path.Combine(dir, FullName);
        yield return Path.GetFullPath(Path.Combine(dir, "..", "lib", "xen-livepatch", FullName));
    }

    /// <summary>The section of the front's own file that carries the whole tool (build.sh adds it with objcopy).</summary>
    public const string EmbeddedSection = ".xlp.full";

    /// <summary>
    /// Replaces this process with the whole tool, given this process's own arguments byte for byte (from
    /// /proc/self/cmdline: a payload name may be any bytes): the one beside the front or in ../lib/xen-livepatch when
    /// there is one, else the copy the front carries in its <see cref="EmbeddedSection"/> section, run from memory
    /// (so the front alone, copied anywhere, is the whole tool). Returns only when neither could be run: then it
    /// says where it looked and what to do, and returns the exit code (1).
    /// </summary>
    public static unsafe int Exec(TextWriter stdout, TextWriter stderr, bool json)
    {
        string self = Environment.ProcessPath ?? "xen-livepatch";
        byte[] cmdline;
        try
        {
            cmdline = File.ReadAllBytes("/proc/self/cmdline");
        }
        catch (IOException)
        {
            cmdline = [];
        }
        // Where the user's program is, for the whole tool to find what is installed beside it (ProgramLocation).
        LibC.setenv("XEN_LIVEPATCH_PROGRAM", self, 1);
        var tried = new List<string>();
        foreach (string full in Candidates(self))
        {
            tried.Add(full);
            if (!File.Exists(full))
                continue;
            ExecV(full, self, cmdline);
            tried[^1] += $" ({Marshal.GetLastPInvokeErrorMessage()})";
        }
        string embedded = ExecEmbedded(self, cmdline);
        tried.Add($"its own {EmbeddedSection} section ({embedded})");
        string message = $"xen-livepatch: this command is run by {FullName}, the whole tool, which could not be run: " +
            $"looked for {string.Join(", ", tried)}.\n" +
            $"  install both programs (install.sh does; the build puts both in artifacts/publish/xen-livepatch), or run {FullName} itself\n";
        stderr.Write(message);
        if (json)
        {
            stdout.Write("{\"schema_version\":1,\"command\":null,\"exit_code\":1,\"error\":\"failed\",\"message\":\"" +
                JsonText(message.TrimEnd('\n')) + "\"}\n");
        }
        return ExitCodes.Failure;
    }

    // The embedded whole tool, copied by the kernel into an anonymous memory file and run from there; returns why not.
    private static unsafe string ExecEmbedded(string self, byte[] cmdline)
    {
        using var exe = SafeFileDescriptor.Open("/proc/self/exe", LibC.O_RDONLY | LibC.O_CLOEXEC);
        if (exe.IsInvalid)
            return Marshal.GetLastPInvokeErrorMessage();
        if (!LibC.TryGetSize("/proc/self/exe", out long length))
            return Marshal.GetLastPInvokeErrorMessage();
        if (!EmbeddedImage.TryFind(exe, length, EmbeddedSection, out long offset, out long size, out string why))
            return why;
        using var memory = SafeFileDescriptor.CreateMemfd(FullName, LibC.MFD_CLOEXEC);
        if (memory.IsInvalid)
            return Marshal.GetLastPInvokeErrorMessage();
        int fd = (int)memory.DangerousGetHandle();
        int from = (int)exe.DangerousGetHandle();
        for (long left = size; left > 0;)
        {
            nint n = LibC.sendfile(fd, from, &offset, (nuint)Math.Min(left, 1L << 30));
            if (n <= 0)
                return n < 0 ? Marshal.GetLastPInvokeErrorMessage() : "the section ends early";
            left -= n;
        }
        // An ELF program is opened before the close-on-exec descriptors are closed: its /proc path runs it.
        ExecV($"/proc/self/fd/{fd}", self, cmdline);
        return Marshal.GetLastPInvokeErrorMessage();
    }

    // argv[0] is the front's own path, as the user ran it; the rest are this process's arguments after its own name.
    private static unsafe void ExecV(string path, string self, byte[] cmdline)
    {
        int first = Array.IndexOf(cmdline, (byte)0) + 1;
        var args = new List<(int Start, int Length)>();
        for (int i = first, start = first; i < cmdline.Length; i++)
        {
            if (cmdline[i] != 0)
                continue;
            args.Add((start, i - start));
            start = i + 1;
        }
        byte[] pathBytes = Encoding.UTF8.GetBytes(path + "\0");
        byte[] selfBytes = Encoding.UTF8.GetBytes(self + "\0");
        var argv = new nint[args.Count + 2];
        fixed (byte* p = pathBytes)
        fixed (byte* n = selfBytes)
        fixed (byte* c = cmdline)
        fixed (nint* v = argv)
        {
            argv[0] = (nint)n;
            for (int i = 0; i < args.Count; i++)
                argv[i + 1] = (nint)(c + args[i].Start);
            LibC.execv(p, (byte**)v);
        }
    }

    private static string JsonText(string s)
    {
        var sb = new StringBuilder(s.Length);
        foreach (char ch in s)
        {
            if (ch is '"' or '\\')
                sb.Append('\\').Append(ch);
            else if (ch < ' ')
                sb.Append($"\\u{(int)ch:x4}");
            else
                sb.Append(ch);
        }
        return sb.ToString();
    }
}
