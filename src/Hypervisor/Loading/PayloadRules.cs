using XenLivepatch.Abi;
using XenLivepatch.Elf;

namespace XenLivepatch.Hypervisor;

/// <summary>Where <c>move_payload</c> puts a section.</summary>
public enum PayloadRegion
{
    /// <summary>Executable, read-only: the text region.</summary>
    Text,
    /// <summary>Writable data: the rw region.</summary>
    Rw,
    /// <summary>Read-only data: the ro region.</summary>
    Ro,
    /// <summary>Executable and writable: no region; the payload is refused (<see cref="LivepatchCheck.SectionWritableCode"/>).</summary>
    WritableCode,
}

/// <summary>
/// The upload rules that tools apply to objects before they are a payload (<c>xen-livepatch build</c>), kept
/// here so that the loader and the tools decide them the same way. Each names the check that refuses a
/// payload breaking it.
/// </summary>
public static class PayloadRules
{
    /// <summary>The sections that patch (Xen 4.14+ <c>check_patching_sections</c>): a payload needs one.</summary>
    public static IReadOnlyList<string> PatchingSections { get; } =
    [
        PayloadSections.Funcs, PayloadSections.HooksLoad, PayloadSections.HooksUnload, PayloadSections.HooksPreApply, PayloadSections.HooksApply,
        PayloadSections.HooksPostApply, PayloadSections.HooksPreRevert, PayloadSections.HooksRevert, PayloadSections.HooksPostRevert,
    ];

    /// <summary>Hook sections that hold an array of function pointers (load, unload).</summary>
    public static IReadOnlyList<string> MultiHookSections { get; } = [PayloadSections.HooksLoad, PayloadSections.HooksUnload];

    /// <summary>Hook sections that hold exactly one function pointer (Xen 4.14+: pre/post/action hooks).</summary>
    public static IReadOnlyList<string> SingleHookSections { get; } =
    [
        PayloadSections.HooksPreApply, PayloadSections.HooksApply, PayloadSections.HooksPostApply,
        PayloadSections.HooksPreRevert, PayloadSections.HooksRevert, PayloadSections.HooksPostRevert,
    ];

    /// <summary><c>move_payload</c>: the region of an allocated section, by its flags.</summary>
    public static PayloadRegion RegionOf(ElfSectionFlags flags)
    {
        bool exec = (flags & ElfSectionFlags.ExecInstr) != 0;
        bool write = (flags & ElfSectionFlags.Write) != 0;
        return (exec, write) switch
        {
            (true, false) => PayloadRegion.Text,
            (false, true) => PayloadRegion.Rw,
            (false, false) => PayloadRegion.Ro,
            _ => PayloadRegion.WritableCode,
        };
    }

    /// <summary>
    /// <c>livepatch_elf_ignore_section</c>: whether <c>move_payload</c> places a section. Sections without
    /// SHF_ALLOC never are; empty ones are only in profiles that place them (newer Xen).
    /// </summary>
    public static bool IsPlaced(ElfSectionFlags flags, ulong size, LivepatchProfile profile) =>
        (flags & ElfSectionFlags.Alloc) != 0 && (size != 0 || profile.PlacesEmptySections);

    /// <summary>
    /// <c>prepare_payload</c>'s hook assignment: the check that refuses a hook section of this size, or null
    /// when the size is right (or the section is no hook section).
    /// </summary>
    public static LivepatchCheck? HookSizeRefusal(string section, ulong size)
    {
        if (MultiHookSections.Contains(section))
            return size % 8 != 0 ? LivepatchCheck.HooksSize : null;
        if (SingleHookSections.Contains(section))
            return size != 8 ? LivepatchCheck.HookSize : null;
        return null;
    }

    /// <summary>
    /// <c>is_payload_symbol</c> (after its section-index checks): whether a symbol of an allocated section goes
    /// to the payload's exported symbol table, where it must be new (<see cref="LivepatchCheck.SymbolDuplicate"/>).
    /// Unnamed symbols and the assembler's <c>.L</c> labels in mergeable sections do not, nor what the
    /// architecture keeps out (arm64 mapping symbols).
    /// </summary>
    public static bool IsExported(string name, ElfSectionFlags sectionFlags, LivepatchArch arch)
    {
        ArgumentNullException.ThrowIfNull(name);
        ArgumentNullException.ThrowIfNull(arch);
        if ((sectionFlags & ElfSectionFlags.Alloc) == 0 || name.Length == 0)
            return false;
        if ((sectionFlags & ElfSectionFlags.Merge) != 0 && name.StartsWith(".L", StringComparison.Ordinal))
            return false;
        return arch.SymbolOk(name);
    }
}
