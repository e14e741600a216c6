using System.Diagnostics;
using System.Globalization;
using System.Text;

namespace XenLivepatch.TestKit;

/// <summary>What one boot of Xen under QEMU returned: the files dom0's <c>/work/out</c> held at the end.</summary>
public sealed class XenQemuResult
{
    internal XenQemuResult(string outDirectory)
    {
        OutDirectory = outDirectory;
        SerialLog = File("serial.log");
        RunLog = File("run.log");
        ScriptExitCode = int.Parse(File("run.rc").Trim(), NumberStyles.Integer, CultureInfo.InvariantCulture);
        BuildId = File("build-id").Trim();
        XenSyms = File("xensyms");
    }

    /// <summary>The folder holding every returned file, plus <c>serial.log</c>.</summary>
    public string OutDirectory { get; }

    /// <summary>
    /// The whole serial console: Xen's <c>(XEN)</c> lines, the dom0 kernel, the script's output (file transfers
    /// are replaced by one <c>[xen-qemu: ...]</c> line each).
    /// </summary>
    public string SerialLog { get; }

    /// <summary>What the script wrote to stdout and stderr.</summary>
    public string RunLog { get; }

    /// <summary>The script's exit code.</summary>
    public int ScriptExitCode { get; }

    /// <summary>The hypervisor's build-id in hex, as dom0 read it from <c>/sys/hypervisor/properties/buildid</c>.</summary>
    public string BuildId { get; }

    /// <summary>
    /// The hypervisor's symbol table: dom0's <c>/proc/xen/xensyms</c> ("address type name" lines); empty on arm64,
    /// where Linux has no such file (<see cref="XenQemuArm64.XenSymsListing"/> has them).
    /// </summary>
    public string XenSyms { get; }

    /// <summary>The path of the returned file <paramref name="name"/> (relative to dom0's <c>/work/out</c>).</summary>
    public string PathOf(string name) => Path.Combine(OutDirectory, name);

    /// <summary>The text of the returned file <paramref name="name"/> (relative to dom0's <c>/work/out</c>).</summary>
    public string File(string name)
    {
        string path = PathOf(name);
        if (!System.IO.File.Exists(path))
        {
            var present = Directory.EnumerateFiles(OutDirectory, "*", SearchOption.AllDirectories)
                .Select(f => Path.GetRelativePath(OutDirectory, f)).Order(StringComparer.Ordinal);
            throw new FileNotFoundException($"dom0 returned no file '{name}'; it returned: {string.Join(", ", present)}", path);
        }
        return System.IO.File.ReadAllText(path);
    }
}

/// <summary>
/// Boots Debian's real Xen 4.17 hypervisor under QEMU (software emulation) with a PV dom0, runs a shell script
/// in dom0 and returns its output files: the oracle for what a real hypervisor does with our payloads and our
/// tool. A thin wrapper over tests/qemu/run.sh (see the comments there); a boot takes about 10-20 s.
/// </summary>
public static class XenQemu
{
    private static readonly Lazy<bool> s_fetched = new(Fetch);

    /// <summary>tests/qemu: the scripts.</summary>
    public static string ScriptsDirectory => Repo.Path("tests", "qemu");

    /// <summary>Where tests/qemu/fetch.sh keeps what it downloads ($XEN_QEMU_CACHE, or artifacts/qemu).</summary>
    public static string CacheDirectory =>
        Environment.GetEnvironmentVariable("XEN_QEMU_CACHE") is { Length: > 0 } cache ? cache : Repo.Path("artifacts", "qemu");

    /// <summary>The hypervisor image that boots (Debian's xen-4.17-amd64, gunzipped). Call <see cref="EnsureFetched"/> first.</summary>
    public static string HypervisorImage => Path.Combine(CacheDirectory, "xen");

    /// <summary>
    /// The booting hypervisor's build-id (hex) and <c>/proc/xen/xensyms</c>, to build payloads for it on the host:
    /// the copy recorded from it in tests/Data/xen-4.17/differential when the fetched image has that build-id
    /// (no boot), otherwise read from dom0 in one boot.
    /// </summary>
    public static (string BuildId, string XenSyms) Symbols()
    {
        EnsureFetched();
        string recorded = Repo.Path("tests", "Data", "xen-4.17", "differential");
        string buildId = System.IO.File.ReadAllText(Path.Combine(CacheDirectory, "build-id")).Trim();
        if (System.IO.File.ReadAllText(Path.Combine(recorded, "build-id")).Trim() == buildId)
            return (buildId, System.IO.File.ReadAllText(Path.Combine(recorded, "xensyms")));
        var r = Run(Repo.TempDirectory("xen-qemu-symbols"), "true\n");
        return (r.BuildId, r.XenSyms);
    }

    /// <summary>
    /// Builds tests/qemu's hello world (tests/qemu/build-hello-payload.sh) into <paramref name="directory"/> for the
    /// hypervisor <paramref name="image"/> with symbols (an upstream build's xen-syms, the sandbox's image), allowed to
    /// patch all of its <c>xen_extra_version</c>; returns the payload's path.
    /// </summary>
    public static string BuildHello(string directory, string image)
    {
        string? size = Tool.Run("nm", "-S", "--defined-only", image).EnsureSuccess().Stdout.Split('\n')
            .Select(l => l.Split(' ', StringSplitOptions.RemoveEmptyEntries))
            .FirstOrDefault(f => f.Length == 4 && f[3] == "xen_extra_version")?[1];
        if (size == null)
            throw new InvalidOperationException($"{image} has no sized symbol xen_extra_version");
        Tool.Run("env", $"OLD_SIZE={Convert.ToInt64(size, 16)}", "bash", System.IO.Path.Combine(ScriptsDirectory, "build-hello-payload.sh"), directory, image).EnsureSuccess();
        return System.IO.Path.Combine(directory, "xen_hello_world.livepatch");
    }

    /// <summary>Runs tests/qemu/fetch.sh once per process (downloads and installs on first use, then returns at once).</summary>
    public static void EnsureFetched() => _ = s_fetched.Value;

    private static bool Fetch()
    {
        var r = Exec("bash", [Path.Combine(ScriptsDirectory, "fetch.sh"), CacheDirectory], TimeSpan.FromMinutes(30));
        if (r.ExitCode != 0)
            throw new InvalidOperationException($"tests/qemu/fetch.sh failed with exit code {r.ExitCode}:\n{r.Stdout}\n{r.Stderr}");
        return true;
    }

    /// <summary>
    /// Boots Xen with a dom0 whose <c>/work</c> holds a copy of <paramref name="filesDirectory"/> (may be empty), runs
    /// <paramref name="script"/> there with <c>sh</c> (cwd <c>/work</c>, Debian's <c>xen-livepatch</c> on PATH) and
    /// returns what it wrote under <c>/work/out</c>. Throws, with the end of the serial console, when the boot
    /// fails or takes longer than <paramref name="timeout"/> (default five minutes); a script that fails is not an
    /// error: see <see cref="XenQemuResult.ScriptExitCode"/>. <paramref name="options"/> are more run.sh options
    /// (for example <c>--smp 1</c>: with one CPU, Xen's apply/revert rendezvous cannot time out on a busy host).
    /// </summary>
    public static XenQemuResult Run(string filesDirectory, string script, TimeSpan? timeout = null, IReadOnlyList<string>? options = null)
    {
        EnsureFetched();
        return Boot("x86_64", CacheDirectory, filesDirectory, script, timeout, options);
    }

    /// <summary>One boot by tests/qemu/run.sh for <paramref name="arch"/> with the downloads in <paramref name="cache"/>.</summary>
    internal static XenQemuResult Boot(string arch, string cache, string filesDirectory, string script, TimeSpan? timeout, IReadOnlyList<string>? options)
    {
        var limit = timeout ?? TimeSpan.FromMinutes(5);
        string scriptFile = Path.Combine(Repo.TempDirectory("xen-qemu-script"), "run.sh");
        System.IO.File.WriteAllText(scriptFile, script.ReplaceLineEndings("\n"), new UTF8Encoding(false));
        string outDirectory = Repo.TempDirectory("xen-qemu-out");

        var args = new List<string> { Path.Combine(ScriptsDirectory, "run.sh"), "--script", scriptFile, "--out", outDirectory,
            "--timeout", ((int)Math.Ceiling(limit.TotalSeconds)).ToString(CultureInfo.InvariantCulture), "--cache", cache, "--arch", arch };
        if (!string.IsNullOrEmpty(filesDirectory))
            args.AddRange(["--files", filesDirectory]);
        if (options != null)
            args.AddRange(options);
        var r = Exec("bash", args, limit + TimeSpan.FromMinutes(2));
        if (r.ExitCode != 0)
        {
            string serial = Path.Combine(outDirectory, "serial.log");
            string tail = System.IO.File.Exists(serial)
                ? string.Join('\n', System.IO.File.ReadAllLines(serial).TakeLast(60))
                : "(no serial log)";
            throw new InvalidOperationException(
                $"{arch} Xen under QEMU failed: {r.Command} exited {r.ExitCode}\n{r.Stderr}\n--- last lines of {serial} ---\n{tail}");
        }
        return new XenQemuResult(outDirectory);
    }

    // Tool.Run waits two minutes at most; a first fetch or a boot may take longer.
    internal static ToolResult Exec(string file, IEnumerable<string> args, TimeSpan limit)
    {
        var psi = new ProcessStartInfo(file)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (string a in args)
            psi.ArgumentList.Add(a);
        psi.Environment["LC_ALL"] = "C";
        string command = file + " " + string.Join(' ', psi.ArgumentList);
        using var p = Process.Start(psi) ?? throw new InvalidOperationException("cannot start " + file);
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        if (!p.WaitForExit(limit))
        {
            p.Kill(entireProcessTree: true);
            throw new TimeoutException($"'{command}' did not finish in {limit.TotalSeconds:0} s");
        }
        return new ToolResult(command, p.ExitCode, stdout.GetAwaiter().GetResult(), stderr.GetAwaiter().GetResult());
    }
}
