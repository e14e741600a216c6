using System.Buffers.Binary;
using XenLivepatch.Abi;
using XenLivepatch.Control;
using XenLivepatch.Elf;

namespace XenLivepatch.Fuzz;

/// <summary>
/// Seeds for the two targets whose inputs are conversations (wire, client), recorded from a real one: the control
/// library uploading the checked-in payload, listing, getting, applying, reverting and unloading it on the x86-64
/// test hypervisor. <c>xlp-fuzz seeds DIR</c> writes DIR/wire and DIR/client (fuzz/corpus keeps them).
/// </summary>
internal static class Seeds
{
    public static int Run(string[] args)
    {
        if (args.Length != 1)
        {
            Console.Error.WriteLine("xlp-fuzz seeds: give the directory to write the wire and client seeds into");
            return 64;
        }
        var xen = Hypervisors.Get(ElfMachine.X86_64);
        var recorder = new Recorder(xen.Transport);
        var client = new LivepatchClient(recorder, ownsTransport: false);
        byte[] payload = File.ReadAllBytes(Path.Combine(Fixtures.Repo, "tests", "Data", "tooling", "greeting.livepatch"));
        Step(client.UploadAsync("greeting", payload));
        Step(client.ListAllAsync());
        Step(client.GetAsync("greeting"));
        Step(client.ApplyAsync("greeting"));
        Step(client.ListAllAsync());
        Step(client.RevertAsync("greeting"));
        Step(client.UnloadAsync("greeting"));
        string wire = Directory.CreateDirectory(Path.Combine(args[0], "wire")).FullName;
        string scripts = Directory.CreateDirectory(Path.Combine(args[0], "client")).FullName;
        for (int i = 0; i < recorder.Frames.Count; i++)
        {
            var (name, frame) = recorder.Frames[i];
            // Root's and an ordinary user's (the first byte says which: fuzz/Targets.cs).
            File.WriteAllBytes(Path.Combine(wire, $"{i:d2}-{name}-root"), [0, .. frame]);
            File.WriteAllBytes(Path.Combine(wire, $"{i:d2}-{name}-user"), [1, .. frame]);
        }
        File.WriteAllBytes(Path.Combine(wire, "all-root"), [0, .. recorder.Frames.SelectMany(f => f.Frame)]);
        // What the socket carries besides sysctls: xen_version (the build-id, as the CLI asks it) and the signature status.
        byte[] buildId = SocketWire.EncodeXenVersionRequest(XenVersion.BuildId, new WireBuffer(0x10000, new byte[XenBuildId.HeaderSize + XenVersion.MaxBuildId], In: true, Out: true));
        BinaryPrimitives.WriteInt32LittleEndian(buildId.AsSpan(buildId.Length - XenBuildId.HeaderSize - XenVersion.MaxBuildId), XenVersion.MaxBuildId);
        foreach (var (name, message) in new[] { ("xen-version-build-id", buildId), ("status", SocketWire.EncodeStatusRequest("greeting")) })
        {
            byte[] framed = [0, 0, 0, 0, .. message];
            BinaryPrimitives.WriteInt32LittleEndian(framed, message.Length);
            File.WriteAllBytes(Path.Combine(wire, $"{name}-root"), [0, .. framed]);
            File.WriteAllBytes(Path.Combine(wire, $"{name}-user"), [1, .. framed]);
        }
        // The client's seeds: LIST of one payload as a hypervisor answered it, and the whole session's answers.
        File.WriteAllBytes(Path.Combine(scripts, "list-one"), [1, .. recorder.Answers[1], .. recorder.Answers[2]]);
        File.WriteAllBytes(Path.Combine(scripts, "session"), [1, .. recorder.Answers.SelectMany(a => a)]);
        Console.Error.WriteLine($"xlp-fuzz seeds: {recorder.Frames.Count} frames, {recorder.Answers.Count} answers");
        return 0;
    }

    private static void Step<T>(Task<T> call) => call.GetAwaiter().GetResult();

    // Passes calls on and keeps each as a socket frame (what the client sent) and as a script (what came back).
    private sealed class Recorder(ISysctlTransport inner) : ISysctlTransport
    {
        public List<(string Name, byte[] Frame)> Frames { get; } = [];

        public List<byte[]> Answers { get; } = [];

        public string Description => inner.Description;

        public LivepatchAbi Abi => inner.Abi;

        public async ValueTask<int> CallAsync(byte[] sysctl, IReadOnlyList<WireBuffer> buffers, CancellationToken cancellationToken = default)
        {
            byte[] request = SocketWire.EncodeRequest(sysctl, buffers);
            var frame = new byte[4 + request.Length];
            BinaryPrimitives.WriteInt32LittleEndian(frame, request.Length);
            request.CopyTo(frame, 4);
            var op = XenSysctl.ReadLivepatch(sysctl, Abi.Layout);
            Frames.Add((op.Cmd.ToString().ToLowerInvariant(), frame));
            byte[] before = (byte[])sysctl.Clone();
            int rc = await inner.CallAsync(sysctl, buffers, cancellationToken).ConfigureAwait(false);
            var answer = new List<byte>();
            var rcBytes = new byte[4];
            BinaryPrimitives.WriteInt32LittleEndian(rcBytes, rc);
            answer.AddRange(rcBytes);
            for (int i = 0; i < sysctl.Length; i++)
                answer.Add((byte)(sysctl[i] ^ before[i]));
            foreach (var b in buffers.Where(b => b.Out))
            {
                int used = Math.Min(b.Data.Length, ushort.MaxValue);
                while (used > 0 && b.Data[used - 1] == 0)
                    used--;
                answer.Add((byte)used);
                answer.Add((byte)(used >> 8));
                answer.AddRange(b.Data.AsSpan(0, used).ToArray());
            }
            Answers.Add([.. answer]);
            return rc;
        }

        public ValueTask DisposeAsync() => ValueTask.CompletedTask;
    }
}
