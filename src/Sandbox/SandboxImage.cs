using XenLivepatch.Elf;
using XenLivepatch.Hypervisor;

namespace XenLivepatch.Sandbox;

/// <summary>
/// The sandbox hypervisor image (xen-syms built from src/Sandbox/image): an ELF executable linked at the
/// address it runs at, with its symbols and GNU build-id. Read with our ELF reader. It is what the livepatch
/// core looks symbols and the build-id up in (<see cref="IHypervisorSymbols"/>).
/// </summary>
public sealed class SandboxImage : IHypervisorSymbols
{
    private SandboxImage(ElfFile file, HypervisorSymbolTable symbols, byte[] buildId, ulong start, ulong end)
    {
        File = file;
        Symbols = symbols;
        BuildId = buildId;
        Start = start;
        End = end;
    }

    /// <summary>The ELF file.</summary>
    public ElfFile File { get; }

    /// <summary>Its symbols.</summary>
    public HypervisorSymbolTable Symbols { get; }

    /// <summary>Its GNU build-id.</summary>
    public byte[] BuildId { get; }

    ReadOnlyMemory<byte> IHypervisorSymbols.BuildId => BuildId;

    /// <inheritdoc/>
    public ulong TextStart => Symbols.TextStart;

    /// <inheritdoc/>
    public ulong TextEnd => Symbols.TextEnd;

    /// <inheritdoc/>
    public bool TryLookup(string name, out ulong address)
    {
        bool found = Symbols.TryGet(name, out var s);
        address = found ? s.Address : 0;
        return found;
    }

    /// <summary>The lowest address of its loadable segments (page aligned).</summary>
    public ulong Start { get; }

    /// <summary>The end of its loadable segments (page aligned).</summary>
    public ulong End { get; }

    /// <summary>The PT_LOAD segments.</summary>
    public IEnumerable<ElfProgramHeader> Segments => File.ProgramHeaders.ToArray().Where(p => p.Type == ElfSegmentType.Load);

    /// <summary>
    /// The default place of the image: $XEN_LIVEPATCH_SANDBOX_IMAGE, else, from the CLI's directory upwards,
    /// artifacts/sandbox/xen-syms (the repository), sandbox/xen-syms, or lib/xen-livepatch/sandbox/xen-syms (where
    /// install.sh puts it: PREFIX/sbin/xen-livepatch finds PREFIX/lib/xen-livepatch/sandbox/xen-syms).
    /// </summary>
    public static string DefaultPath()
    {
        string? env = Environment.GetEnvironmentVariable("XEN_LIVEPATCH_SANDBOX_IMAGE");
        if (!string.IsNullOrEmpty(env))
            return env;
        for (var dir = new DirectoryInfo(ProgramLocation.Directory); dir != null; dir = dir.Parent)
        {
            string candidate = Path.Combine(dir.FullName, "artifacts", "sandbox", "xen-syms");
            if (System.IO.File.Exists(candidate))
                return candidate;
            candidate = Path.Combine(dir.FullName, "sandbox", "xen-syms");
            if (System.IO.File.Exists(candidate))
                return candidate;
            candidate = Path.Combine(dir.FullName, "lib", "xen-livepatch", "sandbox", "xen-syms");
            if (System.IO.File.Exists(candidate))
                return candidate;
        }
        return Path.Combine("artifacts", "sandbox", "xen-syms");
    }

    /// <summary>Reads the image at <paramref name="path"/>.</summary>
    public static SandboxImage Load(string path)
    {
        if (!System.IO.File.Exists(path))
            throw new FileNotFoundException($"the sandbox image {path} does not exist: run ./build.sh (it builds artifacts/sandbox/xen-syms)", path);
        if (!ElfFile.TryRead(System.IO.File.ReadAllBytes(path), out var file, out var elfError))
            throw new InvalidDataException($"{path} is not an ELF file ({elfError}): the sandbox image is the x86-64 executable ./build.sh makes, artifacts/sandbox/xen-syms");
        if (file.Header.Type != ElfType.Executable || file.Header.Machine != ElfMachine.X86_64)
            throw new InvalidDataException($"{path} is not an x86-64 executable image");
        if (!HypervisorSymbolTable.TryFromImage(file, out var symbols, out string? why))
            throw new InvalidDataException($"{path}: {why}");
        if (!file.TryGetGnuBuildId(out var id, out var noteError))
            throw new InvalidDataException($"{path} has no GNU build-id{(noteError != null ? ": " + noteError : "")}");
        var loads = file.ProgramHeaders.ToArray().Where(p => p.Type == ElfSegmentType.Load).ToList();
        if (loads.Count == 0)
            throw new InvalidDataException($"{path} has no loadable segment");
        ulong start = loads.Min(p => p.VirtualAddress) & ~0xfffUL;
        ulong end = (loads.Max(p => p.VirtualAddress + p.MemorySize) + 0xfff) & ~0xfffUL;
        return new SandboxImage(file, symbols, id.ToArray(), start, end);
    }

    /// <summary>The address of a symbol the sandbox needs.</summary>
    public ulong Address(string name) =>
        Symbols.TryGet(name, out var s) ? s.Address : throw new InvalidDataException($"the sandbox image has no symbol {name}");
}
