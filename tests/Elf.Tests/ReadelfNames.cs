namespace XenLivepatch.Elf.Tests;

/// <summary>How readelf spells our values, so that its output can be compared field by field.</summary>
internal static class ReadelfNames
{
    public static string SectionType(ElfSectionType type, ElfMachine machine) => type switch
    {
        ElfSectionType.SymbolTableIndex => "SYMTAB SECTION INDICES",
        ElfSectionType.GnuVerDef => "VERDEF",
        ElfSectionType.GnuVerNeed => "VERNEED",
        ElfSectionType.GnuVerSym => "VERSYM",
        ElfSectionType.X86_64Unwind when machine == ElfMachine.X86_64 => "X86_64_UNWIND",
        ElfSectionType.AArch64Attributes when machine == ElfMachine.AArch64 => "AARCH64_ATTRIBUTES",
        _ => type.GetSpecName() is { } s ? s["SHT_".Length..] : $"0x{(uint)type:x}",
    };

    private static readonly (char Letter, ElfSectionFlags Flag)[] s_flagLetters =
    [
        ('W', ElfSectionFlags.Write), ('A', ElfSectionFlags.Alloc), ('X', ElfSectionFlags.ExecInstr),
        ('M', ElfSectionFlags.Merge), ('S', ElfSectionFlags.Strings), ('I', ElfSectionFlags.InfoLink),
        ('L', ElfSectionFlags.LinkOrder), ('O', ElfSectionFlags.OsNonConforming), ('G', ElfSectionFlags.Group),
        ('T', ElfSectionFlags.Tls), ('C', ElfSectionFlags.Compressed), ('E', ElfSectionFlags.Exclude),
        ('R', ElfSectionFlags.GnuRetain), ('l', ElfSectionFlags.X86_64Large),
    ];

    /// <summary>Turns readelf's flag letters into flags; an unknown letter fails the test.</summary>
    public static ElfSectionFlags ParseFlags(string letters)
    {
        ElfSectionFlags flags = 0;
        foreach (char c in letters)
        {
            int i = Array.FindIndex(s_flagLetters, f => f.Letter == c);
            Assert.True(i >= 0, $"readelf flag letter '{c}' is not one this test knows");
            flags |= s_flagLetters[i].Flag;
        }
        return flags;
    }

    public static string SymbolType(ElfSymbolType t) => t switch
    {
        ElfSymbolType.GnuIFunc => "IFUNC",
        _ => t.GetSpecName()?["STT_".Length..] ?? $"<unknown>: {(byte)t}",
    };

    public static string Binding(ElfSymbolBinding b) => b switch
    {
        ElfSymbolBinding.GnuUnique => "UNIQUE",
        _ => b.GetSpecName()?["STB_".Length..] ?? $"<unknown>: {(byte)b}",
    };

    public static string Visibility(ElfSymbolVisibility v) => v.GetSpecName()!["STV_".Length..];

    public static string Ndx(uint shndx) => shndx switch
    {
        0 => "UND",
        (uint)ElfSpecialSection.Abs => "ABS",
        (uint)ElfSpecialSection.Common => "COM",
        _ => shndx.ToString(System.Globalization.CultureInfo.InvariantCulture),
    };

    public static string? RelocationType(ElfMachine machine, uint type) => machine switch
    {
        ElfMachine.X86_64 => ((X86_64RelocationType)type).GetSpecName(),
        ElfMachine.AArch64 => ((AArch64RelocationType)type).GetSpecName(),
        ElfMachine.I386 => ((I386RelocationType)type).GetSpecName(),
        _ => null,
    };

    public static string Class(ElfClass c) => c == ElfClass.Elf64 ? "ELF64" : "ELF32";

    public static string Data(ElfEncoding e) => e == ElfEncoding.LittleEndian ? "2's complement, little endian" : "2's complement, big endian";

    public static string TypePrefix(ElfType t) => t switch
    {
        ElfType.Relocatable => "REL ",
        ElfType.Executable => "EXEC ",
        ElfType.Shared => "DYN ",
        _ => t.GetSpecName()!,
    };
}
