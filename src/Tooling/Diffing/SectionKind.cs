using XenLivepatch.Elf;

namespace XenLivepatch.Tooling.Diffing;

/// <summary>What a section of a hypervisor object is, for the diff's rules (which changes a payload can carry).</summary>
internal enum SectionKind
{
    /// <summary>Symbol, string, relocation and group tables: rebuilt, never compared as such.</summary>
    Table,
    /// <summary>Notes, .comment, debug information, .discard: not part of a payload.</summary>
    Metadata,
    /// <summary>Code that runs after boot (<c>.text</c>, <c>.text.*</c>).</summary>
    Text,
    /// <summary><c>__init</c> code (<c>.init.text</c>; freed after boot, or never run again).</summary>
    InitText,
    /// <summary>Assembly entry code (<c>.text.entry*</c>): reached from exception and syscall paths a payload cannot redirect.</summary>
    EntryText,
    /// <summary>Read-only data (<c>.rodata*</c>) that is not mergeable.</summary>
    ReadOnly,
    /// <summary>Mergeable strings (<c>.rodata.*.str1.N</c>): compared and referred to by their contents.</summary>
    Strings,
    /// <summary>Mergeable constants (<c>.rodata.cst16</c>): compared and referred to by their contents.</summary>
    Constants,
    /// <summary>Writable data (<c>.data*</c>, <c>.bss*</c>), including <c>.data.rel.ro</c> (written by no one, but placed with data).</summary>
    Data,
    /// <summary>Per-CPU data (<c>.data.percpu*</c>, <c>.bss.percpu*</c>): Xen's loader places none for a payload.</summary>
    PerCpu,
    /// <summary><c>__initdata</c> and the boot-time tables (<c>.init.*</c>, <c>.initcall*</c>, <c>.exit.*</c>).</summary>
    InitData,
    /// <summary><c>.bug_frames.0</c> .. <c>.bug_frames.3</c>: BUG, WARN, ASSERT and run_in_exception_handler sites.</summary>
    BugFrames,
    /// <summary><c>.ex_table</c>: the exception fix-up table.</summary>
    ExTable,
    /// <summary><c>.ex_table.pre</c>: the pre-exception table (entry code only; Xen's loader has none for payloads).</summary>
    ExTablePre,
    /// <summary><c>.fixup</c>: the out-of-line fix-up code the exception table points at.</summary>
    Fixup,
    /// <summary><c>.altinstructions</c>: alternative instruction records.</summary>
    AltInstructions,
    /// <summary><c>.altinstr_replacement</c>: the replacement instructions.</summary>
    AltReplacement,
    /// <summary><c>.livepatch.hooks.*</c>: hooks the patch declares with Xen's LIVEPATCH_*_HOOK macros.</summary>
    Hooks,
    /// <summary>Anything else: a section the tool does not know how to carry into a payload.</summary>
    Unknown,
}

internal static class SectionKinds
{
    /// <summary>Classifies a section by its type, flags and name (Xen's linker script and headers name them).</summary>
    public static SectionKind Of(ElfObjectSection s)
    {
        switch (s.Type)
        {
            case ElfSectionType.Null or ElfSectionType.SymbolTable or ElfSectionType.StringTable or ElfSectionType.Rela or
                ElfSectionType.Rel or ElfSectionType.Group or ElfSectionType.SymbolTableIndex or ElfSectionType.DynamicSymbolTable:
                return SectionKind.Table;
            case ElfSectionType.Note:
                return SectionKind.Metadata;
        }
        string n = s.Name;
        if (n == ".comment" || n.StartsWith(".note", StringComparison.Ordinal) || n.StartsWith(".debug", StringComparison.Ordinal) ||
            n.StartsWith(".zdebug", StringComparison.Ordinal) || n is ".eh_frame" or ".llvm_addrsig" or ".GCC.command.line" ||
            n.StartsWith(".discard", StringComparison.Ordinal) || n.StartsWith(".gnu.warning", StringComparison.Ordinal) ||
            n.StartsWith(".gnu.lto", StringComparison.Ordinal) || (s.Flags & ElfSectionFlags.Alloc) == 0 && s.Size == 0)
        {
            return SectionKind.Metadata;
        }
        if (n.StartsWith(".bug_frames.", StringComparison.Ordinal) && n.Length == ".bug_frames.".Length + 1 && n[^1] is >= '0' and <= '3')
            return SectionKind.BugFrames;
        switch (n)
        {
            case ".ex_table": return SectionKind.ExTable;
            case ".ex_table.pre": return SectionKind.ExTablePre;
            case ".fixup": return SectionKind.Fixup;
            case ".altinstructions": return SectionKind.AltInstructions;
            case ".altinstr_replacement": return SectionKind.AltReplacement;
        }
        if (n.StartsWith(".livepatch.hooks.", StringComparison.Ordinal))
            return SectionKind.Hooks;
        bool exec = (s.Flags & ElfSectionFlags.ExecInstr) != 0;
        bool write = (s.Flags & ElfSectionFlags.Write) != 0;
        // Xen's __init and __exit sections (.init.text, .init.data, .init.setup, .initcall*, .exit.*); not
        // .text.init_8259A, which is -ffunction-sections' section of a function named init_8259A.
        if (n.StartsWith(".init", StringComparison.Ordinal) || n.StartsWith(".exit.", StringComparison.Ordinal))
        {
            return exec ? SectionKind.InitText : SectionKind.InitData;
        }
        if (n.StartsWith(".text.entry", StringComparison.Ordinal))
            return SectionKind.EntryText;
        if (exec)
            return n == ".text" || n.StartsWith(".text.", StringComparison.Ordinal) ? SectionKind.Text : SectionKind.Unknown;
        if (n.StartsWith(".data.percpu", StringComparison.Ordinal) || n.StartsWith(".bss.percpu", StringComparison.Ordinal))
            return SectionKind.PerCpu;
        if (n == ".rodata" || n.StartsWith(".rodata.", StringComparison.Ordinal) || n.StartsWith(".rodata1", StringComparison.Ordinal))
        {
            if (write)
                return SectionKind.Data;
            if ((s.Flags & ElfSectionFlags.Merge) != 0)
                return (s.Flags & ElfSectionFlags.Strings) != 0 ? SectionKind.Strings : SectionKind.Constants;
            return SectionKind.ReadOnly;
        }
        if (n == ".data" || n.StartsWith(".data.", StringComparison.Ordinal) || n == ".bss" || n.StartsWith(".bss.", StringComparison.Ordinal) ||
            n.StartsWith(".data1", StringComparison.Ordinal) || n.StartsWith(".sdata", StringComparison.Ordinal) || n.StartsWith(".sbss", StringComparison.Ordinal))
        {
            return SectionKind.Data;
        }
        return SectionKind.Unknown;
    }

    /// <summary>True for the kinds whose entries are kept per function (<see cref="SpecialSections"/>).</summary>
    public static bool IsSpecial(SectionKind k) => k is SectionKind.BugFrames or SectionKind.ExTable or SectionKind.ExTablePre or
        SectionKind.Fixup or SectionKind.AltInstructions or SectionKind.AltReplacement;

    /// <summary>How a refusal names a kind.</summary>
    public static string Describe(SectionKind k) => k switch
    {
        SectionKind.InitText => "__init code",
        SectionKind.InitData => "__init data",
        SectionKind.EntryText => "assembly entry code",
        SectionKind.PerCpu => "per-CPU data",
        SectionKind.Data => "data",
        SectionKind.ReadOnly => "read-only data",
        SectionKind.Text => "code",
        _ => "a section the tool does not know",
    };
}
