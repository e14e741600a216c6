using System.Globalization;
using XenLivepatch.Abi;
using XenLivepatch.Hypervisor;
using XenLivepatch.Sandbox;
using XenLivepatch.Signing;

namespace XenLivepatch.Cli;

/// <summary>
/// <c>xen-livepatch demo</c>: the whole story in one process. Boots the sandbox hypervisor with vCPUs that
/// keep entering it, loads xen_hello_world through the sysctl while they run, shows them read the new value,
/// reverts and unloads it, and prints how long each action held the vCPUs.
/// </summary>
internal static class DemoCommand
{
    public const string Help = """
        Usage: xen-livepatch demo [--vcpus <n>] [--image <file>] [--payload <file> | --from-source [--patch <file>]]
                                  [--timeout <ms>] [--signed] [--verbose]
        Boots the sandbox hypervisor with <n> vCPU threads (default 2) that call its xen_version hypercall in a
        loop, then, while they run: uploads and applies xen_hello_world (which replaces xen_extra_version),
        shows the vCPUs reading the new extraversion, reverts and unloads it, and prints how long each action
        held the vCPUs still. Needs ./build.sh to have built artifacts/sandbox.
        With --from-source the payload is made first, as a vendor makes one: a source patch to the sandbox
        hypervisor's tree (src/Sandbox/image) goes through 'build-source' against the build the image came from.
          --vcpus <n>        vCPU threads (default 2)
          --image <file>     the image (default artifacts/sandbox/xen-syms)
          --payload <file>   the payload (default: xen_hello_world.livepatch beside the image)
          --from-source      make the payload from a source patch (default src/Sandbox/patches/extra-version.patch)
          --patch <file>     with --from-source: the source patch (one that changes what XENVER_extraversion says)
          --src <tree>       with --from-source: the sandbox's source tree (default src/Sandbox/image)
          --timeout <ms>     how long the vCPUs have to reach their safe point (default 1000; Xen's default is 30:
                             the demo allows for a machine busy with other work, where a thread can wait that long)
          --signed           the hypervisor requires signed payloads (--signature-policy require) and trusts a
                             key made for the demo: the unsigned payload and one signed by another key are
                             refused, the one signed by the trusted key loads and is applied
          --verbose          also print the hypervisor's log lines (what Xen prints on its console)

        """;

    public static int Run(string[] args, TextWriter stdout, TextWriter stderr)
    {
        if (args.Contains("--help") || args.Contains("-h"))
        {
            stdout.Write(Help);
            return OwnExitCodes.Success;
        }
        var a = ArgReader.Parse(args, ["--vcpus", "--image", "--payload", "--timeout", "--patch", "--src"], ["--verbose", "--signed", "--from-source"], [], out string? argError);
        if (a == null || a.Positional.Count != 0)
            return Usage(stderr, argError ?? $"unexpected argument '{a!.Positional[0]}'");
        int vcpus = 2;
        if (a.Value("--vcpus") is { } n && (!int.TryParse(n, NumberStyles.None, CultureInfo.InvariantCulture, out vcpus) || vcpus is < 1 or > 64))
            return Usage(stderr, $"--vcpus takes a number from 1 to 64, not '{n}'");
        uint timeoutMs = 1000;
        if (a.Value("--timeout") is { } t && (!uint.TryParse(t, NumberStyles.None, CultureInfo.InvariantCulture, out timeoutMs) || timeoutMs is 0 or > 4000))
            return Usage(stderr, $"--timeout takes milliseconds from 1 to 4000, not '{t}'");
        string image = a.Value("--image") ?? SandboxImage.DefaultPath();
        bool fromSource = a.Flag("--from-source");
        if (!fromSource && (a.Value("--patch") != null || a.Value("--src") != null))
            return Usage(stderr, "--patch and --src go with --from-source");
        if (fromSource && a.Value("--payload") != null)
            return Usage(stderr, "--payload and --from-source each give the payload: give one");
        string imageDirectory = Path.GetDirectoryName(Path.GetFullPath(image))!;
        string payload = a.Value("--payload") ?? Path.Combine(imageDirectory, "payloads", "xen_hello_world.livepatch");
        string? repo = FindRepository(imageDirectory) ?? FindRepository(ProgramLocation.Directory) ?? FindRepository(Directory.GetCurrentDirectory());
        string tree = a.Value("--src") ?? (repo != null ? Path.Combine(repo, "src", "Sandbox", "image") : "src/Sandbox/image");
        string patch = a.Value("--patch") ?? (repo != null ? Path.Combine(repo, "src", "Sandbox", "patches", "extra-version.patch") : "src/Sandbox/patches/extra-version.patch");
        if (!CommandInput.TrySandboxImage("demo", image, a.Value("--image") != null, stderr))
            return OwnExitCodes.NoInput;
        string needed = fromSource ? patch : payload;
        if (!File.Exists(needed))
        {
            stderr.Write(a.Value(fromSource ? "--patch" : "--payload") != null
                ? $"xen-livepatch demo: {FileProblem.Reading(needed, null)}\n"
                : $"xen-livepatch demo: {needed} does not exist: run ./build.sh first (it builds the sandbox image and its sample payloads), or give {(fromSource ? "--patch" : "--payload")} <file>\n");
            return OwnExitCodes.NoInput;
        }
        var demo = new Demo(stdout, stderr, a.Flag("--verbose"), timeoutMs * 1_000_000, a.Flag("--signed"), fromSource);
        if (!fromSource)
            return demo.Run(image, CheckCommand.NameOf(payload), File.ReadAllBytes(payload), Path.GetFileName(payload), vcpus);
        if (!Directory.Exists(tree))
        {
            stderr.Write($"xen-livepatch demo: the sandbox's source tree {tree} does not exist: give it with --src\n");
            return OwnExitCodes.NoInput;
        }
        // The base build is the tree the image was built from (build.sh keeps it beside the image).
        string baseBuild = Path.Combine(imageDirectory, "build");
        var made = demo.FromSource(tree, patch, Directory.Exists(baseBuild) ? baseBuild : null, image);
        if (made == null)
            return ExitCodes.Failure;
        return demo.Run(image, made.Value.Name, made.Value.Data, $"{made.Value.Name}.livepatch (built from {Path.GetFileName(patch)})", vcpus);
    }

    // The checkout above the image (artifacts/sandbox/xen-syms) or the tool: where src/Sandbox lives.
    private static string? FindRepository(string from)
    {
        for (var d = new DirectoryInfo(from); d != null; d = d.Parent)
        {
            if (Directory.Exists(Path.Combine(d.FullName, "src", "Sandbox", "image")))
                return d.FullName;
        }
        return null;
    }

    private static int Usage(TextWriter stderr, string problem)
    {
        stderr.Write($"xen-livepatch demo: {problem}\n(see 'xen-livepatch demo --help')\n");
        return OwnExitCodes.Usage;
    }

    private sealed class Demo(TextWriter o, TextWriter stderr, bool verbose, uint timeoutNs, bool signed, bool fromSource)
    {
        private SandboxHost _host = null!;
        private DemoSysctlClient _sysctl = null!;
        private readonly List<(string Action, RendezvousTiming Timing)> _pauses = [];
        private readonly List<string> _coreLog = [];
        private bool _hooks;
        private int _step;
        private int Steps => 6 + (signed ? 1 : 0) + (fromSource ? 1 : 0);

        private string Step() => $"[{++_step}/{Steps}]";

        /// <summary>The first step with --from-source: build-source on the sandbox's tree; the payload's name and bytes, or null.</summary>
        public (string Name, byte[] Data)? FromSource(string tree, string patch, string? baseBuild, string image)
        {
            o.WriteLine($"{Step()} Building a live patch from {Path.GetFileName(patch)}, a source patch to {tree}");
            string work = Path.Combine(Path.GetTempPath(), $"xen-livepatch-demo-{Environment.ProcessId}");
            Directory.CreateDirectory(work);
            try
            {
                var request = new Tooling.SourceBuildRequest
                {
                    Tree = tree,
                    Patches = [patch],
                    Output = Path.Combine(work, "payload.livepatch"),
                    BaseBuild = baseBuild,
                    Jobs = Math.Min(Environment.ProcessorCount, 4),
                };
                var r = Tooling.SourceBuild.Run(request, new PrefixWriter(o, "      "));
                if (r.Outcome != Tooling.SourceBuildOutcome.Built)
                {
                    Fail($"build-source failed: {r.Problem}");
                    return null;
                }
                var built = r.Payload!;
                var running = SandboxImage.Load(image).BuildId;
                if (!built.Depends.BuildId.Span.SequenceEqual(running))
                {
                    Fail($"the payload was built for {r.BaseImage} (build-id {Convert.ToHexStringLower(built.Depends.BuildId.Span)}), not for {image} ({Convert.ToHexStringLower(running)}): run ./build.sh again");
                    return null;
                }
                return (r.Name, built.Data);
            }
            finally
            {
                Directory.Delete(work, recursive: true);
            }
        }

        public int Run(string image, string name, byte[] payload, string payloadLabel, int vcpus)
        {
            var log = verbose ? TextWriter.Synchronized(new PrefixWriter(o, "      ")) : null;
            using var signers = signed ? DemoSigners.Create() : null;
            o.WriteLine($"{Step()} Booting the sandbox hypervisor {image} with {vcpus} vCPU{(vcpus == 1 ? "" : "s")}");
            try
            {
                _host = SandboxHost.Start(new SandboxOptions { ImagePath = image, Vcpus = vcpus, Log = log, Trust = signers?.Trust });
                _host.Core.Log += line =>
                {
                    lock (_coreLog)
                        _coreLog.Add(line);
                };
            }
            catch (Exception e) when (e is IOException or InvalidDataException or UnauthorizedAccessException)
            {
                stderr.Write($"xen-livepatch demo: cannot boot {image}: {(e is InvalidDataException ? e.Message : FileProblem.ReadReason(image, e))}\n");
                return ExitCodes.Failure;
            }
            using (_host)
            {
                if (DemoSysctlClient.Open(_host, out string? problem) is not { } sysctl)
                    return Fail($"cannot talk to the sandbox's sysctl: {problem}");
                _sysctl = sysctl;
                o.WriteLine($"      build-id {Convert.ToHexStringLower(_host.Image.BuildId)}; each vCPU enters it in a loop and reads XENVER_extraversion");
                if (!Settle(out string before))
                    return Fail("the vCPUs are not running");
                o.WriteLine($"      the vCPUs read \"{before}\"");

                if (signers != null)
                {
                    if (!Refusals(name, payload, signers))
                        return ExitCodes.Failure;
                    payload = PayloadSigner.SignAppended(payload, signers.Trusted);
                }
                o.Write($"{Step()} Uploading {payloadLabel} ({payload.Length:N0} bytes{(signers != null ? ", signed by the trusted key" : "")}) as {name} ... ");
                int rc = _sysctl.Upload(name, payload);
                if (rc != 0)
                    return Fail($"failed: {ErrnoText(rc)}");
                o.WriteLine($"completed ({_sysctl.State(name)})");
                if (signers != null)
                {
                    var status = _sysctl.Signature(name);
                    if (status is not { Verified: true })
                        return Fail($"the hypervisor did not verify the signature ({status?.Reason ?? "no report"})");
                    o.WriteLine($"      the hypervisor verified its signature ({status.Format}) {status.Detail}");
                }

                if (!Act("Applying", name, LivepatchAction.Apply))
                    return ExitCodes.Failure;
                if (!Settle(out string after))
                    return Fail("the vCPUs stopped running");
                o.WriteLine($"      the vCPUs now read \"{after}\"{(after == before ? " (unchanged!)" : "")}");
                if (after == before)
                    return Fail("the patch did not change what the vCPUs read");

                if (!Act("Reverting", name, LivepatchAction.Revert))
                    return ExitCodes.Failure;
                if (!Settle(out string reverted))
                    return Fail("the vCPUs stopped running");
                o.WriteLine($"      the vCPUs read \"{reverted}\" again");

                o.Write($"{Step()} Unloading {name} ... ");
                rc = _sysctl.Action(name, LivepatchAction.Unload);
                if (rc != 0)
                    return Fail($"failed: {ErrnoText(rc)}");
                o.WriteLine("completed");

                o.WriteLine($"{Step()} What the vCPUs read, all along:");
                var totals = new Dictionary<string, long>(StringComparer.Ordinal);
                foreach (var s in _host.Vcpus.Stats)
                {
                    foreach (var (value, count) in s.ExtraVersions)
                        totals[value] = totals.GetValueOrDefault(value) + count;
                }
                int width = totals.Keys.Max(v => v.Length) + 2;
                foreach (var (value, count) in totals.OrderByDescending(kv => kv.Value))
                    o.WriteLine($"      {("\"" + value + "\"").PadRight(width)} {count,12:N0} times");
                bool clean = totals.Keys.All(v => v == before || v == after);
                o.WriteLine(clean ? "      nothing but the old and the new value: no vCPU ever ran a half-written jump"
                                  : "      UNEXPECTED VALUES: something other than the old and new value was read");
                o.WriteLine();
                o.WriteLine("How long the vCPUs were held (quiesce pause: from the first vCPU stopping to all released):");
                foreach (var (action, t) in _pauses)
                    o.WriteLine(string.Create(CultureInfo.InvariantCulture, $"      {action,-8} {t.PauseNs / 1000,8:F1} µs   (the action's work inside it: {t.WorkNs / 1000:F1} µs)"));
                if (_pauses.Count > 0)
                {
                    if (_hooks)
                        o.WriteLine("      (the work is the writes and the payload's load or unload hooks, which Xen runs inside the pause)");
                    o.WriteLine("      (each the process's first of its kind, from cold caches; the README's quiesce benchmark measures thousands)");
                }
                if (_host.Bugs != 0)
                    return Fail($"the payload's hooks reported {_host.Bugs} bug(s)");
                return clean ? ExitCodes.Success : ExitCodes.Failure;
            }
        }

        // Signature policy require: the unsigned payload and one signed by a key the hypervisor does not trust are
        // refused at upload, with the signature check's errno, and leave nothing behind.
        private bool Refusals(string name, byte[] payload, DemoSigners signers)
        {
            o.WriteLine($"{Step()} The hypervisor requires signatures (signature policy require) and trusts {signers.Trusted.Certificate!.Subject}");
            foreach (var (what, bytes) in new[] { ("unsigned", payload), ("signed by an untrusted key", PayloadSigner.SignAppended(payload, signers.Untrusted)) })
            {
                o.Write($"      uploading {name} {what} ... ");
                int count;
                lock (_coreLog)
                    count = _coreLog.Count;
                int rc = _sysctl.Upload(name, bytes);
                if (rc != -(int)SignatureCheck.Errno)
                {
                    Fail(rc == 0 ? "accepted: the signature policy let it through" : $"refused with {ErrnoText(rc)}, not the signature check's {SignatureCheck.Errno}");
                    return false;
                }
                string why;
                lock (_coreLog)
                    why = _coreLog.Skip(count).LastOrDefault() ?? "";
                o.WriteLine($"refused: {ErrnoText(rc)}");
                o.WriteLine($"        (XEN) livepatch: {why}");
                if (_sysctl.State(name) != "gone")
                {
                    Fail("the refused payload was left behind");
                    return false;
                }
            }
            return true;
        }

        private bool Act(string verb, string name, LivepatchAction action)
        {
            o.Write($"{Step()} {verb} {name} while the vCPUs run ... ");
            int before = _host.Vcpus.Timings.Count;
            int rc = _sysctl.Action(name, action, timeoutNs);
            if (rc != 0)
            {
                Fail($"failed: {ErrnoText(rc)}");
                return false;
            }
            if (!_host.Core.WaitIdle(TimeSpan.FromSeconds(10)))
            {
                Fail("timed out waiting for the action");
                return false;
            }
            int result = _sysctl.Rc(name);
            if (result != 0)
            {
                Fail($"failed: {ErrnoText(result)}");
                return false;
            }
            o.WriteLine($"completed ({_sysctl.State(name)})");
            if (_host.Core.Find(name) is { } payload && (payload.Hooks.Load.Count > 0 || payload.Hooks.Unload.Count > 0))
                _hooks = true;
            var timings = _host.Vcpus.Timings;
            if (timings.Count > before)
                _pauses.Add((action.ToString().ToUpperInvariant(), timings[^1]));
            return true;
        }

        // A few thousand more entries on every vCPU, then the one value they all read.
        private bool Settle(out string value)
        {
            value = "";
            if (!_host.WaitForEntries(2000, TimeSpan.FromSeconds(10)))
                return false;
            var values = _host.Vcpus.Stats.Select(s => s.Last).Distinct().ToList();
            value = values.Count == 1 ? values[0] : string.Join(" / ", values);
            return true;
        }

        private int Fail(string message)
        {
            o.WriteLine();
            stderr.Write($"xen-livepatch demo: {message}\n");
            return ExitCodes.Failure;
        }

        private static string ErrnoText(int rc) => rc < 0 ? $"{rc} ({(XenErrno)(-rc)})" : rc.ToString(CultureInfo.InvariantCulture);
    }
}
