using System.Diagnostics.CodeAnalysis;
using XenLivepatch.Elf;
using XenLivepatch.Hypervisor;

namespace XenLivepatch.Tooling;

/// <summary>
/// The hypervisor a payload is built for or inspected against, as given on the command line: an image with
/// symbols (xen-syms, the sandbox image) or a <c>/proc/xen/xensyms</c> listing with a build-id. Every
/// <see cref="Create"/> returns a fresh <see cref="OfflineHypervisor"/>, because checking a payload loads it
/// (and applying one patches the offline image): two checks must not see each other's payloads.
/// </summary>
public sealed class OfflineTarget
{
    private readonly ElfFile? _image;
    private readonly string? _xensyms;
    // Never handed out: it only serves reads of the hypervisor as built.
    private readonly OfflineHypervisor _pristine;

    private OfflineTarget(string description, ElfFile? image, string? xensyms, ReadOnlyMemory<byte> buildId, ElfMachine machine, OfflineHypervisor first)
    {
        Description = description;
        _image = image;
        _xensyms = xensyms;
        BuildId = buildId;
        Machine = machine;
        Symbols = first.Symbols;
        HasCodeBytes = first.HasCodeBytes;
        _pristine = first;
    }

    /// <summary>What it was made from, for messages ("xen-syms", "xensyms with build-id 151b…").</summary>
    public string Description { get; }

    /// <summary>The hypervisor's build-id (empty when the image has none).</summary>
    public ReadOnlyMemory<byte> BuildId { get; }

    /// <summary>Its architecture.</summary>
    public ElfMachine Machine { get; }

    /// <summary>Its symbols (the same table in every <see cref="Create"/>d instance).</summary>
    public HypervisorSymbolTable Symbols { get; }

    /// <summary>True when made from an image: the code bytes are known (expectations, ENDBR64, disassembly).</summary>
    public bool HasCodeBytes { get; }

    /// <summary>A target from an ELF image with a symbol table.</summary>
    public static bool TryFromImage(string description, ElfFile image, [NotNullWhen(true)] out OfflineTarget? target, [NotNullWhen(false)] out string? error)
    {
        target = null;
        if (!OfflineHypervisor.TryFromImage(image, out var first, out error))
            return false;
        target = new OfflineTarget(description, image, null, first.BuildId, first.Machine, first);
        return true;
    }

    /// <summary>A target from a <c>/proc/xen/xensyms</c> listing, a build-id and an architecture.</summary>
    public static bool TryFromXenSyms(string description, string listing, ReadOnlyMemory<byte> buildId, ElfMachine machine,
        [NotNullWhen(true)] out OfflineTarget? target, [NotNullWhen(false)] out string? error)
    {
        target = null;
        if (!OfflineHypervisor.TryFromXenSyms(listing, buildId, machine, out var first, out error))
            return false;
        target = new OfflineTarget(description, null, listing, buildId, machine, first);
        return true;
    }

    /// <summary>A fresh offline hypervisor: no payload loaded, the image's bytes as built.</summary>
    public OfflineHypervisor Create()
    {
        bool ok = _image != null
            ? OfflineHypervisor.TryFromImage(_image, out var h, out string? error)
            : OfflineHypervisor.TryFromXenSyms(_xensyms!, BuildId, Machine, out h, out error);
        // The same input gave a target once already.
        return ok ? h! : throw new InvalidOperationException("the target could be read once but not twice: " + error);
    }

    /// <summary>Reads <paramref name="length"/> code bytes at <paramref name="address"/>, or null when the target has none there.</summary>
    public byte[]? ReadCode(ulong address, int length)
    {
        if (!HasCodeBytes)
            return null;
        var bytes = new byte[length];
        return _pristine.Read(address, bytes) == MemoryReadStatus.Ok ? bytes : null;
    }
}
