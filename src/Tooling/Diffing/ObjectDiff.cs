using System.Text;
using XenLivepatch.Elf;
using XenLivepatch.Tooling.Sources;

namespace XenLivepatch.Tooling.Diffing;

/// <summary>
/// <c>xen-livepatch diff</c>: the create-diff-object step. Given an object of the running hypervisor's build and
/// the same object rebuilt from patched source (both with <c>-ffunction-sections -fdata-sections</c>, as Xen
/// builds with CONFIG_CC_SPLIT_SECTIONS), it finds the functions whose code changed and the new ones, and
/// writes an object holding them with what they need: their relocations, new data, the string literals they
/// use, their entries in Xen's special sections. Everything unchanged is referred to by name, as the
/// running hypervisor's symbol table has it (<c>file#name</c> for a static symbol), so static variables keep
/// their storage. Changes a payload cannot carry are refused, naming object, section and symbol.
/// </summary>
/// <remarks>
/// The steps: the two objects' sections and symbols are analysed (<see cref="DiffUnit"/>), references to
/// section symbols become references to the function or object at that byte; gcc's renamed clones
/// (<c>.isra.N</c>, <c>.constprop.N</c>, <c>.part.N</c>) and static locals (<c>name.N</c>) are matched to the
/// original's names; every relocation gets a key naming what it reaches (strings by their text, constants by
/// their bytes, anonymous sections by their contents), so functions compare by bytes and keys; special-section
/// entries are signed per function (bug frames without their line numbers); then what changed is taken with
/// its dependencies and written. x86-64 and arm64 (Xen's special sections as each lays them out: SpecialSections).
/// </remarks>
public static class ObjectDiff
{
    /// <summary>
    /// Compares <paramref name="original"/> with <paramref name="patched"/>. <paramref name="patches"/> are the
    /// source patches that made the difference, when known: a function whose only change is an immediate that
    /// the patches' line moves explain (a <c>__LINE__</c> passed to printk or domain_crash) is then unchanged.
    /// </summary>
    /// <remarks>A null <paramref name="original"/> is an object the patch adds (a new source file): everything in it is new.</remarks>
    public static DiffResult Run(DiffInput? original, DiffInput patched, IReadOnlyList<SourcePatch>? patches = null)
    {
        ArgumentNullException.ThrowIfNull(patched);
        if (CheckComparable(original ?? patched, patched) is { } problem)
            return new DiffResult { Outcome = DiffOutcome.Mismatched, Object = patched.Name, Problem = problem };
        ElfObject? a;
        ElfError? errorA = null;
        if (original == null)
            a = new ElfObject(patched.File.Header.Class, patched.File.Header.Encoding, patched.File.Header.Machine);
        else if (!ElfObject.TryFromFile(original.File, out a, out errorA))
            return Mismatch(patched.Name, $"{original.Name}: {errorA}", "give the object as the compiler wrote it");
        if (!ElfObject.TryFromFile(patched.File, out var b, out var errorB))
            return Mismatch(patched.Name, $"{patched.Name}: {errorB}", "give the object as the compiler wrote it");
        var engine = new DiffEngine(DiffUnit.Analyse(original?.Name ?? patched.Name, a), DiffUnit.Analyse(patched.Name, b), patches ?? []);
        return engine.Run();
    }

    private static DiffResult Mismatch(string name, string message, string advice) =>
        new() { Outcome = DiffOutcome.Mismatched, Object = name, Problem = new ToolingProblem(message, advice) };

    // Objects built by different compilers or with different flags differ everywhere for reasons the patch does
    // not have; comparing them would patch every function. The header, the compiler's .comment, the property
    // note (CET, ISA level) and -frecord-gcc-switches' command line must agree.
    private static ToolingProblem? CheckComparable(DiffInput original, DiffInput patched)
    {
        var ha = original.File.Header;
        var hb = patched.File.Header;
        string names = $"{original.Name} and {patched.Name}";
        if (ha.Type != ElfType.Relocatable || hb.Type != ElfType.Relocatable)
            return new ToolingProblem($"{(ha.Type != ElfType.Relocatable ? original.Name : patched.Name)} is not a relocatable object (ET_REL)", "give the .o files the compiler wrote, not a linked image");
        if (ha.Machine != hb.Machine || ha.Class != hb.Class || ha.Encoding != hb.Encoding || ha.OsAbi != hb.OsAbi || ha.Flags != hb.Flags)
            return new ToolingProblem($"{names} are for different machines or ABIs ({ha.Machine}/{ha.Class}/e_flags 0x{ha.Flags:x} against {hb.Machine}/{hb.Class}/e_flags 0x{hb.Flags:x})",
                "compare the same object of two builds of the same tree and configuration");
        if (ha.Machine is not (ElfMachine.X86_64 or ElfMachine.AArch64) || ha.Class != ElfClass.Elf64)
            return new ToolingProblem($"{names} are {ha.Machine} {ha.Class} objects; diff handles Xen's x86-64 and arm64 builds", "build the payload for an x86-64 or arm64 hypervisor");
        foreach (string section in (string[])[".comment", ".note.gnu.property", ".GCC.command.line"])
        {
            string? x = SectionText(original.File, section);
            string? y = SectionText(patched.File, section);
            if (x == y)
                continue;
            string what = section switch
            {
                ".comment" => "compilers",
                ".note.gnu.property" => "code-generation flags (the GNU property note: CET, ISA level)",
                _ => "compiler command lines",
            };
            return new ToolingProblem($"{names} were built by different {what}: {Show(x)} against {Show(y)}",
                "rebuild both from the same tree with the same compiler, flags and .config; only the patch may differ");
        }
        return null;
    }

    private static string Show(string? s) => s == null ? "(none)" : $"\"{(s.Length > 80 ? s[..80] + "..." : s)}\"";

    private static string? SectionText(ElfFile f, string name)
    {
        int i = f.FindSection(name);
        if (i < 0 || !f.TryGetSectionData(i, out var data, out _))
            return null;
        var s = Encoding.Latin1.GetString(data.Span).Replace('\0', ' ').Trim();
        if (name == ".note.gnu.property")
            s = Convert.ToHexString(data.Span);
        return s;
    }
}
