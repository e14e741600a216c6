using System.Globalization;
using System.Runtime.InteropServices;
using XenLivepatch.Abi;
using XenLivepatch.Control;
using XenLivepatch.Hypervisor;
using XenLivepatch.Sandbox;
using XenLivepatch.Signing;

namespace XenLivepatch.Cli;

/// <summary>
/// <c>xen-livepatch sandbox</c>: runs the sandbox hypervisor in the foreground and serves the livepatch
/// sysctl on its Unix socket, where this tool (and any client speaking the same bytes) finds it when there is
/// no /dev/xen/privcmd. The log shows the core's and the payloads' lines as Xen prints them, every sysctl
/// that changes something, and each change in what the vCPUs read.
/// </summary>
internal static class SandboxCommand
{
    public const string Help = """
        Usage: xen-livepatch sandbox [--socket <path>] [--vcpus <n>] [--image <file>] [--group <name|gid>]
                                     [--profile xen-4.17|xen-4.22|seed-2016] [--trusted-keys <dir>]
                                     [--signature-policy none|verify|require] [--action-timeout <ms>] [--quiet]
                                     [--log-format text|journal]
        Boots the sandbox hypervisor (a real x86-64 image built from this project's C sources) with <n> vCPU
        threads entering it, and serves the livepatch sysctl on a Unix socket until interrupted (Ctrl-C).
        In another terminal, 'xen-livepatch list', 'load', 'apply', ... talk to it when /dev/xen/privcmd is
        absent. The log shows what Xen would print, the sysctls that change something, and what the vCPUs read.
          --socket <path>    where to serve (default $XEN_LIVEPATCH_SANDBOX, else /run/xen-livepatch/sandbox.sock)
          --vcpus <n>        vCPU threads (default 2)
          --image <file>     the image (default artifacts/sandbox/xen-syms, made by ./build.sh)
          --group <g>        members of this group may use the socket besides root (mode 0660); others get EPERM
          --profile <name>   xen-4.17 (default), xen-4.22 or seed-2016: the rules and the
                             sysctl layout
          --action-timeout <ms>  the deadline of an action whose caller gives none, as Xen's tool does
                             (default 30, Xen's). A vCPU misses it once its thread has run that long
                             without coming: one a busy host did not run is waited for (up to 5 s more)
          --quiet            no log; only errors
          --log-format <f>   text: a UTC timestamp and a level (info, warn, error) before each line (default);
                             journal: systemd's <N> priority prefixes, no timestamp (the default when
                             $JOURNAL_STREAM says stdout is the journal, as under a systemd service)
        """ + SignatureOptions.Help + """
        A payload the policy refuses gets -EINVAL at upload, and the log says why; 'xen-livepatch get <name>'
        and 'list --json' show whether each payload was verified, and by which key.

        """;

    public static int Run(string[] args, TextWriter stdout, TextWriter stderr)
    {
        if (args.Contains("--help") || args.Contains("-h"))
        {
            stdout.Write(Help);
            return OwnExitCodes.Success;
        }
        var a = ArgReader.Parse(args, ["--socket", "--vcpus", "--image", "--group", "--profile", "--action-timeout", "--log-format", .. SignatureOptions.Options], ["--quiet"], [], out string? argError);
        if (a == null || a.Positional.Count != 0)
            return Usage(stderr, argError ?? $"unexpected argument '{a!.Positional[0]}'");
        string socket = LivepatchTransports.SandboxSocket(a.Value("--socket"));
        int vcpus = 2;
        if (a.Value("--vcpus") is { } n && (!int.TryParse(n, NumberStyles.None, CultureInfo.InvariantCulture, out vcpus) || vcpus is < 1 or > 64))
            return Usage(stderr, $"--vcpus takes a number from 1 to 64, not '{n}'");
        uint timeoutMs = Livepatch.DefaultTimeoutNs / 1_000_000;
        if (a.Value("--action-timeout") is { } t && (!uint.TryParse(t, NumberStyles.None, CultureInfo.InvariantCulture, out timeoutMs) || timeoutMs is < 1 or > 60_000))
            return Usage(stderr, $"--action-timeout takes milliseconds from 1 to 60000, not '{t}'");
        if (!CommandInput.TryProfile("sandbox", a.Value("--profile"), stderr, out var profile, out int profileError))
            return profileError;
        if (!SignatureOptions.TryTrust("sandbox", a, stderr, profile, out var trust, out int code))
            return code;
        uint? group = null;
        if (a.Value("--group") is { } g)
        {
            if (!TryGroup(g, out uint gid))
                return Usage(stderr, $"no group '{g}' (give a name from /etc/group or a number)");
            group = gid;
        }
        string image = a.Value("--image") ?? SandboxImage.DefaultPath();
        if (!CommandInput.TrySandboxImage("sandbox", image, a.Value("--image") != null, stderr))
            return OwnExitCodes.NoInput;
        if (SocketTransport.PathProblem(socket) is { } badPath)
            return Usage(stderr, $"{badPath}: give a shorter --socket");
        var format = a.Value("--log-format") switch
        {
            null => DaemonLog.Detect(),
            "text" => LogFormat.Text,
            "journal" => LogFormat.Journal,
            _ => (LogFormat)(-1),
        };
        if (format == (LogFormat)(-1))
            return Usage(stderr, $"unknown --log-format '{a.Value("--log-format")}': use text or journal");
        bool quiet = a.Flag("--quiet");
        var log = quiet ? null : TextWriter.Synchronized(new DaemonLog(stdout, format));
        return Serve(image, socket, vcpus, group, profile, trust, timeoutMs * 1_000_000, log, stderr);
    }

    private static int Serve(string image, string socket, int vcpus, uint? group, LivepatchProfile profile, PayloadTrust trust, uint timeoutNs, TextWriter? log, TextWriter stderr)
    {
        SandboxHost host;
        try
        {
            host = SandboxHost.Start(new SandboxOptions { ImagePath = image, Vcpus = vcpus, Profile = profile, Log = log, Trust = trust, ActionTimeoutNs = timeoutNs });
        }
        catch (Exception e) when (e is IOException or InvalidDataException or UnauthorizedAccessException)
        {
            stderr.Write($"xen-livepatch sandbox: cannot boot {image}: {(e is InvalidDataException ? e.Message : FileProblem.ReadReason(image, e))}\n");
            return ExitCodes.Failure;
        }
        using (host)
        {
            SysctlSocketServer server;
            try
            {
                string? dir = Path.GetDirectoryName(Path.GetFullPath(socket));
                if (dir != null)
                    Directory.CreateDirectory(dir);
                server = SysctlSocketServer.Start(host.Handler, socket, group, log);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException or System.Net.Sockets.SocketException)
            {
                stderr.Write($"xen-livepatch sandbox: cannot serve on {socket}: {e.Message}\n" +
                             "(give another path with --socket, or stop the sandbox that is serving there)\n");
                return ExitCodes.Failure;
            }
            using var stop = new ManualResetEventSlim(false);
            using var sigint = PosixSignalRegistration.Create(PosixSignal.SIGINT, c => { c.Cancel = true; stop.Set(); });
            using var sigterm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, c => { c.Cancel = true; stop.Set(); });
            string deadline = timeoutNs == Livepatch.DefaultTimeoutNs ? ""
                : string.Create(CultureInfo.InvariantCulture, $", actions given no timeout wait {timeoutNs / 1_000_000} ms");
            log?.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"sandbox: {image} (build-id {Convert.ToHexStringLower(host.Image.BuildId)}), {vcpus} vCPU{(vcpus == 1 ? "" : "s")}, {profile.Name} rules{deadline}"));
            if (trust.Policy != SignaturePolicy.None)
                log?.WriteLine($"sandbox: signature policy {trust.Policy.Name()}; trusted: {string.Join("; ", trust.Keys.Keys)}");
            log?.WriteLine($"sandbox: serving the livepatch sysctl on {socket} (mode 0660{(group is uint gid ? $", group {gid}" : ", root only")}); Ctrl-C stops");
            log?.WriteLine($"sandbox: sample payloads are in {Path.Combine(Path.GetDirectoryName(Path.GetFullPath(image))!, "payloads")}");
            var seen = new string[vcpus];
            while (!stop.Wait(100))
            {
                if (log == null)
                    continue;
                for (int i = 0; i < vcpus; i++)
                {
                    string now = host.LastExtraVersion(i);
                    if (now.Length > 0 && now != seen[i])
                    {
                        // With how often it read the value before: a patch that took effect late shows here.
                        string before = seen[i] == null ? "" : string.Create(CultureInfo.InvariantCulture,
                            $" (after {host.Vcpus.Stats[i].ExtraVersions.GetValueOrDefault(seen[i]):N0} reads of \"{seen[i]}\")");
                        log.WriteLine($"sandbox: vcpu{i} reads XENVER_extraversion \"{now}\"{before}");
                        seen[i] = now;
                    }
                }
            }
            for (int i = 0; log != null && i < vcpus; i++)
            {
                var reads = host.Vcpus.Stats[i].ExtraVersions.Select(r => string.Create(CultureInfo.InvariantCulture, $"\"{r.Key}\" {r.Value:N0} times"));
                log.WriteLine($"sandbox: vcpu{i} read XENVER_extraversion {string.Join(", ", reads)}");
            }
            if (log != null && host.Vcpus.Timings is { Count: > 0 } timings)
            {
                // How often the host kept a vCPU thread from coming in time (the rendezvous waited for it) and how
                // often an action failed its deadline: what an operator of a busy host wants to know.
                var extended = timings.Where(t => t.ExtendedNs > 0).ToList();
                string longest = extended.Count == 0 ? ""
                    : string.Create(CultureInfo.InvariantCulture, $" (longest {extended.Max(t => t.ExtendedNs) / 1e6:F1} ms)");
                log.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"sandbox: {timings.Count:N0} rendezvous, {timings.Count(t => t.Rc != 0):N0} failed (-EBUSY), {extended.Count:N0} waited past the deadline for vCPUs the host did not run{longest}"));
            }
            log?.WriteLine("sandbox: stopping");
            server.DisposeAsync().AsTask().GetAwaiter().GetResult();
        }
        return ExitCodes.Success;
    }

    private static bool TryGroup(string g, out uint gid)
    {
        if (uint.TryParse(g, NumberStyles.None, CultureInfo.InvariantCulture, out gid))
            return true;
        try
        {
            foreach (string line in File.ReadLines("/etc/group"))
            {
                string[] f = line.Split(':');
                if (f.Length >= 3 && f[0] == g && uint.TryParse(f[2], NumberStyles.None, CultureInfo.InvariantCulture, out gid))
                    return true;
            }
        }
        catch (IOException)
        {
        }
        gid = 0;
        return false;
    }

    private static int Usage(TextWriter stderr, string problem)
    {
        stderr.Write($"xen-livepatch sandbox: {problem}\n(see 'xen-livepatch sandbox --help')\n");
        return OwnExitCodes.Usage;
    }
}
