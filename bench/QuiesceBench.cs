using System.Globalization;
using System.Text;
using XenLivepatch.Abi;
using XenLivepatch.Sandbox;
using XenLivepatch.TestKit;

namespace XenLivepatch.Bench;

/// <summary>
/// How long the sandbox's vCPUs are held while a payload is applied or reverted (issue 5; seed design
/// "Patching"): the pause the master measures from its election to the release of the others, with 2 vCPUs
/// busy entering the image all along. Beside it, in the same run: a bare rendezvous (the same protocol with
/// no work), and the naive way of writing the text (mprotect + membarrier inside the pause). Then the cost of
/// calling through a patched function against calling its replacement directly, in native code.
/// </summary>
internal static class QuiesceBench
{
    private const string OneName = "bench_1", ThousandName = "bench_1000";

    public static void Run(TextWriter o, int rounds)
    {
        string image = SandboxImage.DefaultPath();
        if (!File.Exists(image))
            throw new FileNotFoundException($"the sandbox image {image} is missing: run ./build.sh first");
        string dir = Repo.Path("artifacts", "bench");
        byte[] one = BuildPayload(dir, image, OneName, 1);
        byte[] thousand = BuildPayload(dir, image, ThousandName, 1000);

        o.WriteLine($"QUIESCE pause, 2 vCPUs busy entering the image; {rounds} actions per row (apply and revert alternate);");
        o.WriteLine("pause = master elected .. others released (the time every vCPU is held); Xen's 30 ms deadline;");
        o.WriteLine("arrive = the part of the pause spent waiting for the other vCPU to reach its safe point; wait = before the");
        o.WriteLine("election, while the vCPU that took the work up readied itself and waited for the other to be running (nobody held)");
        o.WriteLine($"{"variant",-46} {"n",6} {"busy",5} {"p50 µs",9} {"p99 µs",9} {"p99.9 µs",9} {"max µs",9} {"work p50",9} {"work p99",9} {"arrive p99",10} {"wait p99",9}");

        using (var host = SandboxHost.Start(new SandboxOptions { Vcpus = 2 }))
        {
            WaitRunning(host);
            Report(o, "bare rendezvous (no work)", Bare(host, rounds));
            Report(o, "1 function, dual mapping (ours)", Cycle(host, OneName, one, rounds));
            Report(o, "1,000 functions, dual mapping (ours)", Cycle(host, ThousandName, thousand, Math.Max(rounds / 5, 200)));
        }
        using (var host = SandboxHost.Start(new SandboxOptions { Vcpus = 2, Patching = PatchingMode.MprotectMembarrier }))
        {
            WaitRunning(host);
            Report(o, "1 function, mprotect + membarrier (naive)", Cycle(host, OneName, one, rounds));
            Report(o, "1,000 functions, mprotect + membarrier (naive)", Cycle(host, ThousandName, thousand, Math.Max(rounds / 50, 20)));
        }
        using (var host = SandboxHost.Start(new SandboxOptions { Vcpus = 0 }))
        {
            Report(o, "1 function, no vCPUs (the work alone)", Cycle(host, OneName, one, rounds));
            Report(o, "1,000 functions, no vCPUs (the work alone)", Cycle(host, ThousandName, thousand, Math.Max(rounds / 5, 200)));
        }
        o.WriteLine();
        PatchedCall(o, one);
    }

    private static void WaitRunning(SandboxHost host)
    {
        if (int.TryParse(Environment.GetEnvironmentVariable("XLP_START_US"), out int us))
            host.Vcpus.StartDelay = TimeSpan.FromMicroseconds(us);
        if (!host.WaitForEntries(10_000, TimeSpan.FromSeconds(10)))
            throw new InvalidOperationException("the sandbox's vCPUs are not running");
    }

    /// <summary>A generated payload replacing sandbox_bench_1000 .. sandbox_bench_(1000 + count - 1), built with Xen's recipe.</summary>
    private static byte[] BuildPayload(string dir, string image, string name, int count)
    {
        Directory.CreateDirectory(dir);
        var c = new StringBuilder();
        c.AppendLine("#include \"livepatch.h\"");
        for (int i = 0; i < count; i++)
            c.AppendLine(CultureInfo.InvariantCulture, $"int sandbox_bench_{1000 + i}(void) {{ return -{1000 + i}; }}");
        // One array: separate structures would each be aligned to 32 bytes, leaving gaps in the section.
        c.AppendLine("struct livepatch_func __attribute__((section(\".livepatch.funcs\"), used)) bench_funcs[] = {");
        for (int i = 0; i < count; i++)
        {
            int n = 1000 + i;
            c.AppendLine(CultureInfo.InvariantCulture, $"  {{ .version = LIVEPATCH_PAYLOAD_VERSION, .name = \"sandbox_bench_{n}\", " +
                $".new_addr = sandbox_bench_{n}, .new_size = SZ_sandbox_bench_{n}, .old_size = OLD_SZ_sandbox_bench_{n} }},");
        }
        c.AppendLine("};");
        // Cached by the image's build-id and the source's hash.
        string stamp = Convert.ToHexStringLower(SandboxImage.Load(image).BuildId)[..16] + "-" +
            Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(Encoding.UTF8.GetBytes(c.ToString())))[..16];
        string output = Path.Combine(dir, $"{name}-{stamp}.livepatch");
        if (File.Exists(output))
            return File.ReadAllBytes(output);
        Console.Error.WriteLine($"building {Path.GetFileName(output)} ({count} function{(count == 1 ? "" : "s")}) ...");
        string source = Path.Combine(dir, name + ".c");
        File.WriteAllText(source, c.ToString());
        string temp = output + ".tmp";
        var env = Repo.Path("src", "Sandbox", "payloads");
        var r = Tool.Run("env", [$"LIVEPATCH_HEADER_DIR={env}", "bash", Repo.Path("tools", "payload", "build-payload.sh"),
            "--arch", "x86_64", "--image", image, "--out", temp, source]);
        if (r.ExitCode != 0)
            throw new InvalidOperationException($"building {name} failed: {r.Stderr}");
        File.Move(temp, output, overwrite: true);
        return File.ReadAllBytes(output);
    }

    private static readonly int s_gapMs = int.TryParse(Environment.GetEnvironmentVariable("XLP_GAP_MS"), out int g) ? g : 0;

    private static void Gap()
    {
        if (s_gapMs > 0)
            Thread.Sleep(s_gapMs);
    }

    private static List<RendezvousTiming> Bare(SandboxHost host, int rounds)
    {
        // The asking thread blocks without spinning, as the core's own waiters do.
        using var done = new ManualResetEventSlim(false, spinCount: 0);
        int before = host.Vcpus.Timings.Count;
        for (int i = 0; i < rounds; i++)
        {
            done.Reset();
            host.Vcpus.Schedule(static () => { }, Livepatch.DefaultTimeoutNs, _ => done.Set());
            done.Wait();
            Gap();
        }
        return [.. host.Vcpus.Timings.Skip(before)];
    }

    private static List<RendezvousTiming> Cycle(SandboxHost host, string name, byte[] payload, int rounds)
    {
        var core = host.Core;
        if (core.Upload(name, payload) is { } error)
            throw new InvalidOperationException($"{name} does not upload: {error}");
        int before = host.Vcpus.Timings.Count;
        for (int i = 0; i < rounds; i++)
        {
            var action = i % 2 == 0 ? LivepatchAction.Apply : LivepatchAction.Revert;
            if (core.Action(name, action) != 0)
                throw new InvalidOperationException($"{action} {name} refused");
            core.WaitIdle(Timeout.InfiniteTimeSpan);
            var p = core.Find(name)!;
            if (p.Rc == -(int)XenErrno.EBUSY)
            {
                i--; // missed the deadline (counted in 'busy'): state unchanged, do the same action again
                continue;
            }
            if (p.Rc != 0)
                throw new InvalidOperationException($"{action} {name} failed with rc={p.Rc}");
            Gap();
        }
        if (core.Find(name)!.State == LivepatchState.Applied)
        {
            core.Action(name, LivepatchAction.Revert);
            core.WaitIdle(Timeout.InfiniteTimeSpan);
        }
        var timings = host.Vcpus.Timings.Skip(before).ToList();
        core.Action(name, LivepatchAction.Unload);
        return timings;
    }

    private static void Report(TextWriter o, string label, List<RendezvousTiming> timings)
    {
        var ok = timings.Where(t => t.Rc == 0).Select(t => t.PauseNs / 1000).Order().ToArray();
        var work = timings.Where(t => t.Rc == 0).Select(t => t.WorkNs / 1000).Order().ToArray();
        var arrive = timings.Where(t => t.Rc == 0).Select(t => t.ArriveNs / 1000).Order().ToArray();
        var wait = timings.Where(t => t.Rc == 0).Select(t => t.WaitNs / 1000).Order().ToArray();
        int busy = timings.Count - ok.Length;
        o.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"{label,-46} {ok.Length,6} {busy,5} {Harness.Percentile(ok, 50),9:F2} {Harness.Percentile(ok, 99),9:F2} {Harness.Percentile(ok, 99.9),9:F2} {ok[^1],9:F2} {Harness.Percentile(work, 50),9:F2} {Harness.Percentile(work, 99),9:F2} {Harness.Percentile(arrive, 99),10:F2} {Harness.Percentile(wait, 99),9:F2}"));
    }

    /// <summary>
    /// call_loop (native, in the image) calling a function n times through a pointer: the replacement
    /// directly, then the patched original (ENDBR64, then the jump to the replacement).
    /// </summary>
    private static unsafe void PatchedCall(TextWriter o, byte[] payload)
    {
        // No vCPUs: the benchmark thread has a core to itself and the action runs at once.
        using var host = SandboxHost.Start(new SandboxOptions { Vcpus = 0 });
        var core = host.Core;
        if (core.Upload(OneName, payload) is { } error)
            throw new InvalidOperationException($"{OneName} does not upload: {error}");
        var loop = (delegate* unmanaged<ulong, long, long>)host.Image.Address("call_loop");
        ulong original = host.Image.Address("sandbox_bench_1000");
        ulong replacement = core.Find(OneName)!.Functions[0].NewAddress;
        const long calls = 20_000_000;
        const int pairs = 21;
        double Time(ulong fn)
        {
            long t0 = System.Diagnostics.Stopwatch.GetTimestamp();
            long sum = loop(fn, calls);
            double ns = System.Diagnostics.Stopwatch.GetElapsedTime(t0).TotalNanoseconds / calls;
            if (sum == 0)
                throw new InvalidOperationException("call_loop returned nothing");
            return ns;
        }
        double Median(List<double> values)
        {
            values.Sort();
            return values[values.Count / 2];
        }
        var unpatchedRuns = new List<double>();
        for (int i = 0; i < pairs; i++)
            unpatchedRuns.Add(Time(original));
        core.Action(OneName, LivepatchAction.Apply);
        core.WaitIdle(Timeout.InfiniteTimeSpan);
        if (loop(original, 1) != -1000)
            throw new InvalidOperationException("the patched function does not return the replacement's value");
        // Direct and patched alternate, and the overhead is the median of each pair's difference: the host's
        // noise (other tenants, frequency) moves both of a pair alike.
        var direct = new List<double>();
        var patched = new List<double>();
        var overhead = new List<double>();
        for (int i = 0; i < pairs; i++)
        {
            double d = Time(replacement), p = Time(original);
            direct.Add(d);
            patched.Add(p);
            overhead.Add(p - d);
        }
        o.WriteLine($"PATCHED CALL, native call_loop, {pairs} runs of {calls:N0} calls each, medians, ns per call");
        o.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  original, unpatched           {Median(unpatchedRuns),8:F3}"));
        o.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  replacement, called directly  {Median(direct),8:F3}"));
        o.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  original, patched (jump)      {Median(patched),8:F3}"));
        o.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  overhead of the patch         {Median(overhead),8:F3}   (median of the {pairs} pairs' differences)"));
    }
}
