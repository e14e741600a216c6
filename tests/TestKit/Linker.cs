using XenLivepatch.Elf;

namespace XenLivepatch.TestKit;

/// <summary>Picks the GNU ld (and emulation) that links objects of a given machine, class and byte order.</summary>
public static class Linker
{
    /// <summary>The program and leading arguments for objects like <paramref name="layout"/> / <paramref name="machine"/>.</summary>
    public static (string Program, string[] Args) For(ElfMachine machine, ElfLayout layout) => (machine, layout.Is64, layout.IsLittleEndian) switch
    {
        (ElfMachine.X86_64, true, true) => ("ld", []),
        (ElfMachine.X86_64, false, true) => ("ld", ["-m", "elf32_x86_64"]),
        (ElfMachine.I386, false, true) => ("ld", ["-m", "elf_i386"]),
        (ElfMachine.AArch64, true, true) => ("aarch64-linux-gnu-ld", []),
        (ElfMachine.AArch64, true, false) => ("aarch64-linux-gnu-ld", ["-EB"]),
        (ElfMachine.AArch64, false, false) => ("aarch64-linux-gnu-ld", ["-m", "aarch64linux32b"]),
        (ElfMachine.AArch64, false, true) => ("aarch64-linux-gnu-ld", ["-m", "aarch64linux32"]),
        _ => throw new NotSupportedException($"no linker known for {machine} {layout}"),
    };

    /// <summary>Runs <c>ld -r</c> on <paramref name="inputs"/> into <paramref name="output"/>.</summary>
    public static ToolResult Relocatable(ElfMachine machine, ElfLayout layout, string output, params string[] inputs)
    {
        var (program, args) = For(machine, layout);
        return Tool.Run(program, [.. args, "-r", "-o", output, .. inputs]);
    }

    /// <summary>The objdump that disassembles <paramref name="machine"/> code.</summary>
    public static string Objdump(ElfMachine machine) => machine == ElfMachine.AArch64 ? "aarch64-linux-gnu-objdump" : "objdump";
}
