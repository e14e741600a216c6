using System.Buffers.Binary;
using System.Globalization;
using XenLivepatch.Abi;
using XenLivepatch.Cli;
using XenLivepatch.Control;
using XenLivepatch.Elf;
using XenLivepatch.Hypervisor;
using XenLivepatch.Sandbox;
using XenLivepatch.Signing;

namespace XenLivepatch.Fuzz;

/// <summary>
/// One parser that takes outside bytes, with the contract its harness checks: the input is refused through the
/// parser's own error path (an <see cref="ElfError"/>, a Xen errno, the CLI's exit code, a closed connection),
/// never by another exception, and a run allocates in proportion to the input, not to what a header claims.
/// A broken contract is an exception that escapes <see cref="Run"/>: afl++ records it as a crash.
/// </summary>
public sealed record FuzzTarget(string Name, string What, Action<byte[]> Run);

/// <summary>A target broke its contract without throwing (a wrong exit code, state left behind, memory spent).</summary>
public sealed class ContractViolation(string message) : Exception(message);

/// <summary>The targets, by name (<c>xlp-fuzz TARGET</c>; fuzz/run.sh).</summary>
public static class Targets
{
    /// <summary>Every target, in the order fuzz/run.sh runs them.</summary>
    public static IReadOnlyList<FuzzTarget> All { get; } =
    [
        new("elf", "the ELF reader: every section, string, symbol, relocation and note, then the editable model written and read back", Elf),
        new("upload", "UPLOAD through the sysctl handler with the input as the payload buffer (x86-64, or arm64 by e_machine); what is accepted is applied, reverted and unloaded", Upload),
        new("info", "xen-livepatch info FILE --target xen-syms (text, or --json for odd sizes), in process", Info),
        new("build", "xen-livepatch build -o OUT --target xen-syms FILE.o: the object linker and payload writer, in process", Build),
        new("wire", "the sandbox server's conversation with one peer: framing, budget, SocketWire decoding, the handler", Wire),
        new("client", "the control library's LIST (size probe, batches, retries) and GET over a transport that answers with the input", Client),
        new("signature", "the signature block parsers: appended PKCS#7 and the ELF note, inspected and verified", Signature),
    ];

    /// <summary>
    /// Not a parser: a target that breaks its contract on any input holding a NUL byte, to show that afl++ records
    /// a broken contract as a crash (<c>CoverageGuidedRunTests</c>). Not among <see cref="All"/>.
    /// </summary>
    public static FuzzTarget Canary { get; } = new("canary", "breaks its contract on any NUL byte (checks that crashes are recorded)", input =>
    {
        // Through instrumented code first: afl++ refuses a target that shows it no coverage.
        ElfFile.TryRead(input, out _, out _);
        if (input.Contains((byte)0))
            throw new ContractViolation("the canary's input holds a NUL byte");
    });

    /// <summary>The target called <paramref name="name"/>, or null.</summary>
    public static FuzzTarget? Named(string name) => name == Canary.Name ? Canary : All.FirstOrDefault(t => t.Name == name);

    // What one run may allocate: its input many times over plus a fixed allowance (the CLI's text, a core's tables).
    private static void WithinBudget(byte[] input, long before, long allowance)
    {
        long spent = GC.GetAllocatedBytesForCurrentThread() - before;
        long budget = allowance + 200L * input.Length;
        if (spent > budget)
            throw new ContractViolation($"{spent} bytes allocated for a {input.Length}-byte input (budget {budget})");
    }

    private static void Elf(byte[] input)
    {
        long before = GC.GetAllocatedBytesForCurrentThread();
        ElfVisit.All(input);
        WithinBudget(input, before, 1 << 20);
    }

    private static ElfMachine MachineOf(byte[] input) =>
        input.Length >= 20 && BinaryPrimitives.ReadUInt16LittleEndian(input.AsSpan(18)) == (ushort)ElfMachine.AArch64 ? ElfMachine.AArch64 : ElfMachine.X86_64;

    private static void Upload(byte[] input)
    {
        var machine = MachineOf(input);
        var xen = Hypervisors.Get(machine);
        long before = GC.GetAllocatedBytesForCurrentThread();
        var client = new LivepatchClient(xen.Transport, ownsTransport: false);
        var up = client.UploadAsync("fuzz", input).GetAwaiter().GetResult();
        if (up.Rc > 0)
            throw new ContractViolation($"UPLOAD answered {up.Rc}: neither 0 nor an errno");
        if (up.Rc < 0)
        {
            // A refused upload leaves nothing behind.
            if (xen.Core.Payloads.Count != 0)
                throw new ContractViolation($"UPLOAD refused with {up} but {xen.Core.Payloads.Count} payload(s) are loaded");
        }
        else
        {
            // What was accepted applies (or is refused with an errno), reverts and unloads, leaving the hypervisor
            // as it was; a run that cannot is a finding, and the next starts from a fresh hypervisor.
            string? problem = ApplyRevertUnload(client, xen.Core);
            if (problem != null)
            {
                Hypervisors.Reset(machine);
                throw new ContractViolation(problem);
            }
        }
        WithinBudget(input, before, 16 << 20);
    }

    private static string? ApplyRevertUnload(LivepatchClient client, LivepatchCore core)
    {
        var apply = client.ApplyAsync("fuzz", LivepatchClient.ToolTimeoutNs).GetAwaiter().GetResult();
        core.WaitIdle(TimeSpan.FromSeconds(5));
        if (apply.Rc > 0)
            return $"APPLY answered {apply.Rc}: neither 0 nor an errno";
        var get = client.GetAsync("fuzz").GetAwaiter().GetResult();
        if (get.State == LivepatchState.Applied)
        {
            var revert = client.RevertAsync("fuzz", LivepatchClient.ToolTimeoutNs).GetAwaiter().GetResult();
            core.WaitIdle(TimeSpan.FromSeconds(5));
            if (!revert.Succeeded || client.GetAsync("fuzz").GetAwaiter().GetResult().State != LivepatchState.Checked)
                return $"an applied payload could not be reverted: {revert}";
        }
        var unload = client.UnloadAsync("fuzz").GetAwaiter().GetResult();
        core.WaitIdle(TimeSpan.FromSeconds(5));
        return !unload.Succeeded || core.Payloads.Count != 0 ? $"an uploaded payload could not be unloaded: {unload}" : null;
    }

    private static void Info(byte[] input)
    {
        string file = Scratch.Write("payload.livepatch", input);
        string image = Fixtures.Image(MachineOf(input));
        string[] args = input.Length % 2 == 1 ? ["info", file, "--target", image, "--json"] : ["info", file, "--target", image];
        RunCli(args, [0, 65, 66]);
    }

    private static void Build(byte[] input)
    {
        string file = Scratch.Write("patch.o", input);
        string output = Path.Combine(Scratch.Directory, "fuzz.livepatch");
        File.Delete(output);
        RunCli(["build", "-o", output, "--target", Fixtures.Image(MachineOf(input)), file], [0, 65, 66]);
    }

    private static void RunCli(string[] args, int[] exits)
    {
        var stdout = new StringWriter(CultureInfo.InvariantCulture);
        var stderr = new StringWriter(CultureInfo.InvariantCulture);
        int exit = XenLivepatchTool.Run(args, stdout, stderr);
        if (!exits.Contains(exit))
            throw new ContractViolation($"xen-livepatch {string.Join(' ', args)}: exit {exit}\n{stderr}");
        if (exit != 0 && stderr.ToString().Length == 0 && !args.Contains("--json"))
            throw new ContractViolation($"xen-livepatch {string.Join(' ', args)}: exit {exit} without a message");
    }

    private static void Wire(byte[] input)
    {
        // The first byte says who the peer is: root (privileged) or an ordinary user; the rest is what it sends.
        var peer = input.Length > 0 && (input[0] & 1) == 1
            ? new PeerCredentials(4242, 1000, 1000, [])
            : new PeerCredentials(4242, 0, 0, []);
        var server = WireServer.Get();
        var stream = new PeerStream(input.AsMemory(Math.Min(1, input.Length)));
        long before = GC.GetAllocatedBytesForCurrentThread();
        server.Server.ServeStream(stream, peer).GetAwaiter().GetResult();
        // A peer may ask for out-buffers up to the wire's limit; the reply echoes them.
        WithinBudget(input, before, 3L * SocketWire.MaxMessage + (16 << 20));
        if (server.Server.HeldBytes != 0)
            throw new ContractViolation($"{server.Server.HeldBytes} bytes still held after the peer left");
        WireServer.ResetIfUsed();
    }

    private static void Client(byte[] input)
    {
        // The first byte picks the dialect the client speaks; the rest answers its calls.
        var abi = LivepatchAbi.All[input.Length == 0 ? 1 : input[0] % LivepatchAbi.All.Count];
        var transport = new ScriptedTransport(abi, input.AsMemory(Math.Min(1, input.Length)));
        var client = new LivepatchClient(transport, ownsTransport: false);
        long before = GC.GetAllocatedBytesForCurrentThread();
        try
        {
            var list = client.ListAllAsync().GetAwaiter().GetResult();
            if (list.Result.Succeeded && list.Entries.Any(e => e.NameBytes.Length is 0 or >= Livepatch.NameSize))
                throw new ContractViolation("LIST gave an entry whose name is empty or longer than Xen allows");
            client.GetAsync("fuzz").GetAwaiter().GetResult();
            client.ListAsync(3, 1, 200, 100).GetAwaiter().GetResult();
        }
        catch (LivepatchTransportException)
        {
            // The script ran out: the transport's own failure, as a closed connection would be.
        }
        // Each call's buffers are what one batch can need whatever the answers claim (1024 entries' status, names and
        // lengths, at most MaxMetadataBuffer of metadata); what a session allocates is that per call, not more.
        WithinBudget(input, before, transport.Calls * (ScriptedTransport.MaxCallBuffers + (64 << 10)) + (1 << 20));
    }

    private static void Signature(byte[] input)
    {
        long before = GC.GetAllocatedBytesForCurrentThread();
        PayloadSignatures.TryInspect(input, out _);
        PayloadSignatures.Verify(input, Fixtures.Keys);
        WithinBudget(input, before, 4 << 20);
    }
}
