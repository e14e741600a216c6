using System.Buffers.Binary;
using System.Security.Cryptography.X509Certificates;
using XenLivepatch.Abi;
using XenLivepatch.Control;
using XenLivepatch.Elf;
using XenLivepatch.Hypervisor;
using XenLivepatch.Sandbox;
using XenLivepatch.Signing;

namespace XenLivepatch.Fuzz;

/// <summary>The repository's fixtures the targets run against: the test hypervisors and the fuzzing key.</summary>
internal static class Fixtures
{
    private static readonly Lazy<string> s_repo = new(() =>
    {
        string? env = Environment.GetEnvironmentVariable("XLP_FUZZ_REPO");
        if (!string.IsNullOrEmpty(env))
            return env;
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir != null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "XenLivepatch.slnx")))
                return dir.FullName;
        }
        throw new InvalidOperationException("the repository was not found above the harness; set XLP_FUZZ_REPO");
    });

    /// <summary>The repository's root.</summary>
    public static string Repo => s_repo.Value;

    /// <summary>The checked-in test hypervisor for <paramref name="machine"/> (tests/Data/tooling).</summary>
    public static string Image(ElfMachine machine) =>
        Path.Combine(Repo, "tests", "Data", "tooling", machine == ElfMachine.AArch64 ? "xen-syms-arm64" : "xen-syms");

    private static readonly Lazy<TrustStore> s_keys = new(() =>
    {
        var certificate = X509CertificateLoader.LoadCertificateFromFile(Path.Combine(Repo, "fuzz", "fixtures", "signing.crt"));
        return TrustStore.Of([TrustedKey.FromCertificate(certificate, "fuzz/fixtures/signing.crt")]);
    });

    /// <summary>The key the signature corpus was signed with (its private half is not kept).</summary>
    public static TrustStore Keys => s_keys.Value;
}

/// <summary>A directory of this process's own for the files the CLI targets read (on tmpfs when there is one).</summary>
internal static class Scratch
{
    private static readonly Lazy<string> s_dir = new(() =>
    {
        string root = System.IO.Directory.Exists("/dev/shm") ? "/dev/shm" : Path.GetTempPath();
        string dir = Path.Combine(root, $"xlp-fuzz-{Environment.ProcessId}");
        System.IO.Directory.CreateDirectory(dir);
        AppDomain.CurrentDomain.ProcessExit += (_, _) =>
        {
            try
            {
                System.IO.Directory.Delete(dir, recursive: true);
            }
            catch (IOException)
            {
            }
        };
        return dir;
    });

    public static string Directory => s_dir.Value;

    public static string Write(string name, byte[] data)
    {
        string path = Path.Combine(Directory, name);
        File.WriteAllBytes(path, data);
        return path;
    }
}

/// <summary>A livepatch core over each checked-in test hypervisor, made once per process (Xen 4.17's rules).</summary>
internal sealed class Hypervisors
{
    private static readonly Dictionary<ElfMachine, Hypervisors> s_made = [];

    private Hypervisors(ElfMachine machine)
    {
        Core = NewCore(machine);
        var handler = new SysctlHandler(Core);
        Transport = InProcessTransport.Create((sysctl, buffers) => handler.Handle(sysctl, new GuestBuffers(buffers), privileged: true),
            Core.Profile.Abi, "the fuzzing hypervisor");
    }

    public LivepatchCore Core { get; }

    public InProcessTransport Transport { get; }

    public static Hypervisors Get(ElfMachine machine)
    {
        if (!s_made.TryGetValue(machine, out var h))
            s_made[machine] = h = new Hypervisors(machine);
        return h;
    }

    /// <summary>Forgets the hypervisor for <paramref name="machine"/>: the next run gets a fresh one.</summary>
    public static void Reset(ElfMachine machine) => s_made.Remove(machine);

    public static LivepatchCore NewCore(ElfMachine machine)
    {
        string path = Fixtures.Image(machine);
        if (!ElfFile.TryRead(File.ReadAllBytes(path), out var image, out var error))
            throw new InvalidOperationException($"{path}: {error}");
        if (!OfflineHypervisor.TryFromImage(image, out var target, out string? why))
            throw new InvalidOperationException($"{path}: {why}");
        return new LivepatchCore(LivepatchProfile.Xen417, LivepatchArch.Get(target.Machine), target, target);
    }
}

/// <summary>The sandbox's socket server over an x86-64 test hypervisor; its conversations are fed streams, not sockets.</summary>
internal sealed class WireServer
{
    private static WireServer? s_current;

    private WireServer()
    {
        Core = Hypervisors.NewCore(ElfMachine.X86_64);
        string path = Path.Combine(Scratch.Directory, "wire.sock");
        // Short timeouts: the streams never block, and a budget wait must not look like a hang.
        Server = SysctlSocketServer.Start(new SysctlHandler(Core), path, limits: new SocketServerLimits { BudgetWait = TimeSpan.FromMilliseconds(100) });
    }

    public LivepatchCore Core { get; }

    public SysctlSocketServer Server { get; }

    public static WireServer Get() => s_current ??= new WireServer();

    /// <summary>A peer that loaded a payload changed the hypervisor: the next run starts from a fresh one.</summary>
    public static void ResetIfUsed()
    {
        if (s_current is { } s && s.Core.Payloads.Count != 0)
        {
            s.Server.DisposeAsync().AsTask().GetAwaiter().GetResult();
            s_current = null;
        }
    }
}

/// <summary>A peer's side of a connection: reads come from the input, then end; replies are counted and dropped.</summary>
internal sealed class PeerStream(ReadOnlyMemory<byte> input) : Stream
{
    private ReadOnlyMemory<byte> _left = input;

    public long Written { get; private set; }

    public override bool CanRead => true;
    public override bool CanSeek => false;
    public override bool CanWrite => true;
    public override long Length => throw new NotSupportedException();
    public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }
    public override void Flush() { }
    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
    public override void SetLength(long value) => throw new NotSupportedException();

    public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

    public override int Read(Span<byte> buffer)
    {
        int n = Math.Min(buffer.Length, _left.Length);
        _left.Span[..n].CopyTo(buffer);
        _left = _left[n..];
        return n;
    }

    public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) =>
        ValueTask.FromResult(Read(buffer.Span));

    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        Task.FromResult(Read(buffer.AsSpan(offset, count)));

    public override void Write(byte[] buffer, int offset, int count) => Written += count;

    public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
    {
        Written += buffer.Length;
        return ValueTask.CompletedTask;
    }

    public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken)
    {
        Written += count;
        return Task.CompletedTask;
    }
}

/// <summary>
/// A hypervisor that answers from a script, as a hostile or broken one could: for each call, its result (4 bytes),
/// the <c>xen_sysctl</c> it writes back (136 bytes, XORed over the request so that an all-zero script echoes it),
/// then for each out-buffer a 2-byte length and that many bytes written at its start. A script that runs out is a
/// dropped connection (<see cref="LivepatchTransportException"/>).
/// </summary>
internal sealed class ScriptedTransport(LivepatchAbi abi, ReadOnlyMemory<byte> script) : ISysctlTransport
{
    private ReadOnlyMemory<byte> _left = script;

    public string Description => "a scripted hypervisor";

    public LivepatchAbi Abi { get; } = abi;

    /// <summary>The most one call's buffers may take: a batch of 1024 entries (status 40 bytes, name 128, two lengths) and the metadata cap.</summary>
    public const long MaxCallBuffers = Livepatch.ListMaxBatch * (64L + Livepatch.NameSize + 8) + LivepatchClient.MaxMetadataBuffer;

    /// <summary>The calls made.</summary>
    public long Calls { get; private set; }

    private ReadOnlySpan<byte> Take(int n)
    {
        if (_left.Length < n)
            throw new LivepatchTransportException("the script ended");
        var taken = _left.Span[..n];
        _left = _left[n..];
        return taken;
    }

    public ValueTask<int> CallAsync(byte[] sysctl, IReadOnlyList<WireBuffer> buffers, CancellationToken cancellationToken = default)
    {
        Calls++;
        long size = buffers.Sum(b => (long)b.Data.Length);
        if (size > MaxCallBuffers)
            throw new ContractViolation($"a call with {size} bytes of buffers (at most {MaxCallBuffers})");
        int rc = BinaryPrimitives.ReadInt32LittleEndian(Take(4));
        var reply = Take(sysctl.Length);
        for (int i = 0; i < sysctl.Length; i++)
            sysctl[i] ^= reply[i];
        foreach (var b in buffers)
        {
            if (!b.Out)
                continue;
            int n = Math.Min(BinaryPrimitives.ReadUInt16LittleEndian(Take(2)), b.Data.Length);
            Take(n).CopyTo(b.Data);
        }
        return ValueTask.FromResult(rc);
    }

    public ValueTask DisposeAsync() => ValueTask.CompletedTask;
}

/// <summary>Everything the ELF library offers about a file, read the way a consumer that trusts nothing would.</summary>
internal static class ElfVisit
{
    public static void All(byte[] input)
    {
        if (!ElfFile.TryRead(input, out var file, out _))
            return;
        file.TryGetSectionNameTable(out var sectionNames, out _);
        for (int i = 0; i < file.SectionCount; i++)
        {
            var header = file.SectionHeaders[i];
            sectionNames?.TryGetBytes(header.NameOffset, out _, out _);
            file.TryGetSectionName(i, out _, out _);
            file.TryGetSectionData(i, out _, out _);
            if (header.Type == ElfSectionType.StringTable)
                file.TryGetStringTable(i, out _, out _);
            if (header.Type is ElfSectionType.SymbolTable or ElfSectionType.DynamicSymbolTable && file.TryGetSymbolTable(i, out var symbols, out _))
            {
                for (int k = 0; k < symbols.Count; k++)
                {
                    symbols.Strings.TryGetBytes(symbols[k].NameOffset, out _, out _);
                    symbols.TryGetSectionIndex(k, out _, out _);
                }
            }
            if (header.Type is ElfSectionType.Rel or ElfSectionType.Rela && file.TryGetRelocationTable(i, out var relocations, out _))
            {
                for (int k = 0; k < relocations.Count; k++)
                    _ = relocations[k].Offset;
            }
            if (header.Type == ElfSectionType.Note)
                file.TryGetNotes(i, out _, out _);
        }
        file.TryGetGnuBuildId(out _, out _);
        if (!ElfObject.TryFromFile(file, out var model, out _) || model.Validate().Count != 0)
            return;
        // What validates is written, and what is written reads back.
        byte[] written = model.Write();
        if (!ElfFile.TryRead(written, out var again, out var error) || !ElfObject.TryFromFile(again, out _, out error))
            throw new ContractViolation($"the model validated and was written, but does not read back: {error}");
    }
}
