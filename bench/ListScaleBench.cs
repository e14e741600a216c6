using System.Buffers.Binary;
using System.Diagnostics;
using System.Globalization;
using System.Text;
using XenLivepatch.Abi;
using XenLivepatch.Elf;
using XenLivepatch.Hypervisor;
using XenLivepatch.Sandbox;
using XenLivepatch.TestKit;

namespace XenLivepatch.Bench;

/// <summary>
/// Scale (issue P3): N payloads uploaded into the sandbox hypervisor (time and memory per payload), then
/// <c>xen-livepatch list</c> run as a program, our NativeAOT binary over the sandbox's socket, with N loaded:
/// 1,000, 10,000 and 50,000. Each payload replaces <c>xen_extra_version</c> with a function of its own (a
/// replacement's symbol may repeat across payloads; nothing else is global) and has a build-id of its own.
/// The sandbox's payload window (64 MiB, as near its text as Xen keeps payloads to its own) holds 8,192 payloads
/// of two pages: above <see cref="SandboxCapacity"/> the payloads go into the livepatch core over an offline
/// hypervisor instead (the same core and sysctl handler, memory from the heap), served on the same kind of socket.
/// </summary>
internal static class ListScaleBench
{
    public static void Run(TextWriter o, int[] counts, int runs)
    {
        string cli = Repo.Path("artifacts", "publish", "xen-livepatch", "xen-livepatch");
        string image = Repo.Path("artifacts", "sandbox", "xen-syms");
        if (!File.Exists(cli) || !File.Exists(image))
            throw new InvalidOperationException($"{cli} or {image} is missing: run ./build.sh");
        o.WriteLine("LIST scale: N payloads uploaded into the sandbox (1 vCPU), then 'xen-livepatch --sandbox S list' (NativeAOT) over its socket");
        o.WriteLine($"{"N",8}{"upload µs/payload",18} {"KiB/payload (RSS)",18} {"list p50 ms",12} {"min",8} {"max",8} {"list µs/payload",16} {"stdout bytes",13}");
        foreach (int n in counts)
            Measure(o, cli, image, n, runs);
        o.WriteLine($"* more than the sandbox's window holds ({SandboxCapacity:N0}): the core over an offline x86-64 hypervisor");
    }

    /// <summary>The most payloads the sandbox's window is measured with.</summary>
    public const int SandboxCapacity = 8000;

    private static void Measure(TextWriter o, string cli, string image, int n, int runs)
    {
        using var host = n <= SandboxCapacity ? SandboxHost.Start(new SandboxOptions { ImagePath = image, Vcpus = 1 }) : null;
        LivepatchCore core;
        byte[] buildId;
        ulong oldSize;
        if (host != null)
        {
            core = host.Core;
            buildId = host.Image.BuildId;
            oldSize = host.Image.Symbols.TryGet("xen_extra_version", out var sym) ? sym.Size : throw new InvalidOperationException("no xen_extra_version");
        }
        else
        {
            buildId = [.. Enumerable.Range(0, 20).Select(i => (byte)(0xa0 + i))];
            if (!OfflineHypervisor.TryFromXenSyms("ffff82d040200000 T xen_extra_version\nffff82d040200040 T xen_other\n", buildId, ElfMachine.X86_64,
                    out var offline, out string? why))
                throw new InvalidOperationException(why);
            core = new LivepatchCore(LivepatchProfile.Xen417, X86_64Arch.Instance, offline, offline);
            oldSize = 0x40;
        }
        var handler = host?.Handler ?? new SysctlHandler(core);
        var payloads = new byte[n][];
        for (int i = 0; i < n; i++)
            payloads[i] = Payload(buildId, (uint)oldSize, i);

        GC.Collect();
        GC.WaitForPendingFinalizers();
        long rssBefore = Rss();
        var upload = Stopwatch.StartNew();
        for (int i = 0; i < n; i++)
        {
            var error = core.Upload(Name(i), payloads[i]);
            if (error != null)
                throw new InvalidOperationException($"payload {i} does not upload: {error}");
        }
        upload.Stop();
        payloads = [];
        GC.Collect();
        GC.WaitForPendingFinalizers();
        long rssAfter = Rss();

        string socket = Path.Combine(Path.GetTempPath(), $"xlp-bench-{Environment.ProcessId}.sock");
        var server = SysctlSocketServer.Start(handler, socket);
        try
        {
            var (first, bytes) = List(cli, socket);
            if (!first.StartsWith(" ID ", StringComparison.Ordinal))
                throw new InvalidOperationException("list printed: " + first[..Math.Min(first.Length, 400)]);
            var samples = new List<double>();
            for (int r = 0; r < runs; r++)
            {
                var sw = Stopwatch.StartNew();
                List(cli, socket);
                samples.Add(sw.Elapsed.TotalMilliseconds);
            }
            samples.Sort();
            double p50 = samples[samples.Count / 2];
            o.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"{n,7:N0}{(host == null ? "*" : " ")}{upload.Elapsed.TotalMicroseconds / n,18:F1} {(rssAfter - rssBefore) / 1024.0 / n,18:F1} {p50,12:F1} {samples[0],8:F1} {samples[^1],8:F1} {p50 * 1000 / n,16:F2} {bytes,13:N0}"));
        }
        finally
        {
            server.DisposeAsync().AsTask().GetAwaiter().GetResult();
        }
    }

    private static string Name(int i) => string.Create(CultureInfo.InvariantCulture, $"scale_{i:D6}");

    private static (string Stdout, int Bytes) List(string cli, string socket)
    {
        var psi = new ProcessStartInfo(cli) { RedirectStandardOutput = true, RedirectStandardError = true };
        psi.ArgumentList.Add("--sandbox");
        psi.ArgumentList.Add(socket);
        psi.ArgumentList.Add("list");
        using var p = Process.Start(psi)!;
        string stdout = p.StandardOutput.ReadToEnd();
        string stderr = p.StandardError.ReadToEnd();
        p.WaitForExit();
        if (p.ExitCode != 0)
            throw new InvalidOperationException($"list exited {p.ExitCode}: {stderr}");
        return (stdout, Encoding.UTF8.GetByteCount(stdout));
    }

    private static long Rss()
    {
        foreach (string line in File.ReadLines("/proc/self/status"))
        {
            if (line.StartsWith("VmRSS:", StringComparison.Ordinal))
                return long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], CultureInfo.InvariantCulture) * 1024;
        }
        return 0;
    }

    /// <summary>
    /// A payload replacing <c>xen_extra_version</c> with <c>lea rax, [rip + text]; ret</c> returning a string of its
    /// own, with build-id SHA-1-like bytes made from <paramref name="seed"/>.
    /// </summary>
    private static byte[] Payload(byte[] hypervisorBuildId, uint oldSize, int seed)
    {
        var obj = new ElfObject(ElfClass.Elf64, ElfEncoding.LittleEndian, ElfMachine.X86_64);
        var symtab = obj.GetOrAddSymbolTable();
        byte[] strings = Encoding.ASCII.GetBytes(string.Create(CultureInfo.InvariantCulture, $"xen_extra_version\0scale {seed}\0"));
        var rodata = obj.AddSection(".rodata", ElfSectionType.ProgBits, ElfSectionFlags.Alloc, strings, 8);
        var rodataSym = obj.GetOrAddSectionSymbol(rodata);
        byte[] code = [0x48, 0x8D, 0x05, 0, 0, 0, 0, 0xC3];
        var text = obj.AddSection(".text", ElfSectionType.ProgBits, ElfSectionFlags.Alloc | ElfSectionFlags.ExecInstr, code, 16);
        var fn = symtab.Add(new ElfObjectSymbol("xen_extra_version") { Type = ElfSymbolType.Func, Binding = ElfSymbolBinding.Global, Section = text, Value = 0, Size = (ulong)code.Length });
        obj.GetOrAddRelocations(text).Entries.Add(new ElfObjectRelocation(3, (uint)X86_64RelocationType.R_X86_64_PC32, rodataSym, "xen_extra_version\0".Length - 4));
        byte[] funcs = new byte[104];
        BinaryPrimitives.WriteUInt32LittleEndian(funcs.AsSpan(24), (uint)code.Length);
        BinaryPrimitives.WriteUInt32LittleEndian(funcs.AsSpan(28), oldSize);
        funcs[32] = 2;
        var funcsSection = obj.AddSection(".livepatch.funcs", ElfSectionType.ProgBits, ElfSectionFlags.Alloc, funcs, 8);
        obj.GetOrAddRelocations(funcsSection).Entries.AddRange([
            new ElfObjectRelocation(0, (uint)X86_64RelocationType.R_X86_64_64, rodataSym, 0),
            new ElfObjectRelocation(8, (uint)X86_64RelocationType.R_X86_64_64, fn, 0),
        ]);
        obj.AddSection(PayloadSections.Depends, ElfSectionType.ProgBits, ElfSectionFlags.Alloc, ElfNote.EncodeGnuBuildId(hypervisorBuildId, ElfEncoding.LittleEndian), 4);
        obj.AddSection(PayloadSections.XenDepends, ElfSectionType.ProgBits, ElfSectionFlags.Alloc, ElfNote.EncodeGnuBuildId(hypervisorBuildId, ElfEncoding.LittleEndian), 4);
        byte[] id = new byte[20];
        BinaryPrimitives.WriteInt32LittleEndian(id, seed);
        id[19] = 0x5c;
        obj.AddSection(PayloadSections.BuildId, ElfSectionType.Note, ElfSectionFlags.Alloc, ElfNote.EncodeGnuBuildId(id, ElfEncoding.LittleEndian), 4);
        return obj.Write();
    }
}
