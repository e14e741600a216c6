using XenLivepatch.Elf;

namespace XenLivepatch.Tooling;

/// <summary>What a file is, when it is not a livepatch payload, and why it is not one.</summary>
/// <param name="Kind">A short name: payload, hypervisor-image, executable, shared-object, core, object, elf, empty, text, compressed, data.</param>
/// <param name="Description">What it is, in words ("an x86-64 executable (ET_EXEC)").</param>
/// <param name="WhyNot">Why it is not a payload and what to do instead; null for a payload.</param>
public sealed record FileKind(string Kind, string Description, string? WhyNot)
{
    /// <summary>True for what the livepatch core would take as a payload: a relocatable ELF object with <c>.livepatch.funcs</c>.</summary>
    public bool IsPayload => WhyNot == null;

    /// <summary>
    /// Classifies <paramref name="data"/>. A payload is an ELF relocatable object (ET_REL) with a
    /// <c>.livepatch.funcs</c> section (the seed design's "Payload format"); everything else is told apart by its
    /// header: other ELF types, a hypervisor image (symbols Xen's livepatch core has), text, compressed data.
    /// </summary>
    public static FileKind Of(ReadOnlyMemory<byte> data)
    {
        var span = data.Span;
        if (span.IsEmpty)
            return new("empty", "an empty file", "a payload is an ELF object: this file has no bytes");
        if (!span.StartsWith((ReadOnlySpan<byte>)[0x7f, (byte)'E', (byte)'L', (byte)'F']))
            return NotElf(span);
        if (!ElfFile.TryRead(data, out var file, out var error))
            return new("elf", "an ELF file whose headers cannot be read", $"its headers are damaged ({error}): it cannot be a payload");
        string machine = file.Header.Machine switch
        {
            ElfMachine.X86_64 => "x86-64",
            ElfMachine.AArch64 => "arm64",
            var m => m.GetSpecName() ?? $"machine {(ushort)m}",
        };
        switch (file.Header.Type)
        {
            case ElfType.Relocatable:
                if (file.FindSection(".livepatch.funcs") >= 0 || HasLivepatchSection(file))
                    return new("payload", $"an {machine} livepatch payload", null);
                return new("object", $"an {machine} relocatable object (what gcc -c makes)",
                    "it has no .livepatch.funcs section, which every payload has; 'xen-livepatch build' makes a payload from objects like it");
            case ElfType.Executable when IsHypervisor(file):
                return new("hypervisor-image", $"an {machine} hypervisor image (xen-syms)",
                    "it is the hypervisor payloads patch, not a payload: give it as --target <image> to info, check or build");
            case ElfType.Executable:
                return new("executable", $"an {machine} executable (ET_EXEC)",
                    "payloads are relocatable objects (ET_REL) with a .livepatch.funcs section; an executable cannot be loaded");
            case ElfType.Shared:
                return new("shared-object", $"an {machine} shared object or position-independent executable (ET_DYN)",
                    "payloads are relocatable objects (ET_REL) with a .livepatch.funcs section; a shared object cannot be loaded");
            case ElfType.Core:
                return new("core", $"an {machine} core dump (ET_CORE)", "a core dump is not a payload");
            default:
                return new("elf", $"an ELF file of type {(ushort)file.Header.Type}", "payloads are relocatable objects (ET_REL)");
        }
    }

    // A payload of hooks alone has no .livepatch.funcs (Xen takes it): any .livepatch.* section makes it one.
    private static bool HasLivepatchSection(ElfFile file)
    {
        for (int i = 1; i < file.SectionCount; i++)
            if (file.TryGetSectionName(i, out string? name, out _) && name.StartsWith(".livepatch.", StringComparison.Ordinal))
                return true;
        return false;
    }

    // Symbols a Xen hypervisor has (the sandbox image, built to be live-patched like it, has xen_extra_version and
    // do_xen_version too); an ordinary executable has none of them.
    private static bool IsHypervisor(ElfFile file)
    {
        int index = file.FindSymbolTable();
        if (index < 0 || !file.TryGetSymbolTable(index, out var symbols, out _))
            return false;
        for (int i = 1; i < symbols.Count; i++)
        {
            if (symbols.TryGetName(symbols[i], out string? name, out _) && name is "xen_extra_version" or "do_xen_version" or "livepatch_op" or "do_sysctl" or "xen_build_id")
                return true;
        }
        return false;
    }

    private static FileKind NotElf(ReadOnlySpan<byte> span)
    {
        if (span.StartsWith((ReadOnlySpan<byte>)[0x1f, 0x8b]) || span.StartsWith((ReadOnlySpan<byte>)[0xfd, (byte)'7', (byte)'z', (byte)'X', (byte)'Z']) ||
            span.StartsWith((ReadOnlySpan<byte>)[0x28, 0xb5, 0x2f, 0xfd]) || span.StartsWith("BZh"u8))
            return new("compressed", "compressed data (gzip, xz, zstd or bzip2)",
                "payloads are not compressed ELF objects: decompress it first (a compressed hypervisor such as /boot/xen.gz is no payload either)");
        var head = span[..Math.Min(span.Length, 4096)];
        bool text = true;
        foreach (byte b in head)
        {
            if (b < 0x09 || (b > 0x0d && b < 0x20 && b != 0x1b) || b == 0x7f)
            {
                text = false;
                break;
            }
        }
        if (text)
            return new("text", "a text file", "a payload is an ELF object; this is text (a source file? 'xen-livepatch build' takes objects made by gcc -c)");
        return new("data", "data that is not an ELF file", "a payload is an ELF object: this file does not start with the ELF magic bytes");
    }
}
