using XenLivepatch.Elf;
using XenLivepatch.TestKit;

namespace XenLivepatch.Tooling.Tests;

/// <summary>
/// The <c>ld -r</c> of <c>xen-livepatch build</c>: objects it links into one behave as the objects themselves
/// when gcc links them into a program that runs (statics of the same name, a weak definition overridden,
/// data pointers, a COMDAT group given twice); and what ld would refuse, it refuses with a message.
/// </summary>
public class ObjectLinkerTests
{
    private const string A = """
        #include <stdio.h>
        __attribute__((noinline)) static int helper(int x) { return x * 2; }
        int shared_counter = 5;
        int f_b(int);
        static const char *names[] = { "alpha", "beta" };
        __attribute__((weak)) int weak_value(void) { return 1; }
        int f_a(int x)
        {
            printf("a: %s\n", names[x & 1]);
            return helper(x) + f_b(x) + weak_value();
        }
        """;

    private const string B = """
        __attribute__((noinline)) static int helper(int x) { return x + 100; }
        extern int shared_counter;
        static int bss_counter;
        int weak_value(void) { return 7; }
        int f_b(int x)
        {
            bss_counter += x;
            return helper(x) + shared_counter + bss_counter;
        }
        const char *b_message = "from b";
        """;

    private const string Main = """
        #include <stdio.h>
        int f_a(int);
        int dup_fn(void);
        extern const char *b_message;
        int main(void)
        {
            printf("%d %s\n", f_a(3), b_message);
            printf("%d %d\n", f_a(4), dup_fn());
            return 0;
        }
        """;

    // The same COMDAT group in two objects: one copy is kept.
    private const string Comdat = """
        .section .text.dup_fn,"axG",@progbits,dup_fn,comdat
        .globl dup_fn
        .type dup_fn,@function
        dup_fn:
          mov $42, %eax
          ret
        .size dup_fn, .-dup_fn
        .section .note.GNU-stack,"",@progbits
        """;

    private static string Object(string dir, string name, string text, string extension = ".c", params string[] flags)
    {
        string source = Path.Combine(dir, name + extension);
        File.WriteAllText(source, text);
        string obj = Path.Combine(dir, name + ".o");
        Tool.Run("gcc", ["-c", "-O2", "-ffunction-sections", "-fdata-sections", .. flags, source, "-o", obj]).EnsureSuccess();
        return obj;
    }

    private static LinkInput Input(string path) => new(Path.GetFileName(path), ElfFile.Load(path));

    private static string Run(string dir, string name, params string[] objects)
    {
        string program = Path.Combine(dir, name);
        Tool.Run("gcc", [.. objects, "-o", program]).EnsureSuccess();
        return Tool.Run(program).EnsureSuccess().Stdout;
    }

    [Fact]
    public void Linked_objects_make_the_same_program_as_the_objects_themselves()
    {
        string dir = Repo.TempDirectory("link");
        string a = Object(dir, "a", A);
        string b = Object(dir, "b", B);
        string c1 = Object(dir, "c1", Comdat, ".S");
        string c2 = Object(dir, "c2", Comdat, ".S");
        string main = Object(dir, "main", Main);

        Assert.True(ObjectLinker.TryLink([Input(a), Input(b), Input(c1), Input(c2)], ElfMachine.X86_64, out var linked, out var problem), problem?.ToString());
        string combined = Path.Combine(dir, "combined.o");
        File.WriteAllBytes(combined, linked.Object.Write());
        Assert.Equal("", Readelf.Warnings(combined));

        string expected = Run(dir, "separate", main, a, b, c1, c2);
        Assert.Matches(@"^a: beta\n\d+ from b\na: alpha\n\d+ 42\n$", expected);
        Assert.Equal(expected, Run(dir, "combined-program", main, combined));

        var symbols = Readelf.Symbols(combined).Values.Single();
        Assert.Equal(2, symbols.Count(s => s.Name == "helper" && s.Bind == "LOCAL"));
        Assert.Single(symbols, s => s.Name == "dup_fn");
        Assert.Single(symbols, s => s.Name == "weak_value" && s.Bind == "GLOBAL");
        Assert.Single(Readelf.Sections(combined), s => s.Type == "GROUP");
        // ld accepts it as input too.
        Tool.Run("ld", "-r", "-o", Path.Combine(dir, "again.o"), combined).EnsureSuccess();
    }

    [Fact]
    public void Same_named_sections_are_concatenated_at_their_alignment_with_relocations_moved()
    {
        string dir = Repo.TempDirectory("sections");
        string a = Object(dir, "a", "int x1 = 1; int *p1 = &x1;", ".c", "-fno-data-sections");
        string b = Object(dir, "b", "char y = 2; int x2 = 3; int *p2 = &x2;", ".c", "-fno-data-sections");
        Assert.True(ObjectLinker.TryLink([Input(a), Input(b)], ElfMachine.X86_64, out var linked, out var problem), problem?.ToString());
        string combined = Path.Combine(dir, "combined.o");
        File.WriteAllBytes(combined, linked.Object.Write());
        string reference = Path.Combine(dir, "reference.o");
        Tool.Run("ld", "-r", "-o", reference, a, b).EnsureSuccess();

        static Dictionary<string, ulong> Sizes(string path) =>
            Readelf.Sections(path).Where(s => s.Flags.Contains('A', StringComparison.Ordinal)).ToDictionary(s => s.Name, s => s.Size);
        Assert.Equal(Sizes(reference).OrderBy(kv => kv.Key, StringComparer.Ordinal), Sizes(combined).OrderBy(kv => kv.Key, StringComparer.Ordinal));
        var symbols = Readelf.Symbols(combined).Values.Single();
        var refSymbols = Readelf.Symbols(reference).Values.Single();
        foreach (string name in new[] { "x1", "p1", "y", "x2", "p2" })
            Assert.Equal(refSymbols.Single(s => s.Name == name).Value, symbols.Single(s => s.Name == name).Value);
        static List<string> Relocations(string path) => Readelf.Relocations(path)
            .SelectMany(r => r.Entries.Select(e => $"{r.Name} {e.Offset:x} {e.Type} {e.SymbolName} {e.Addend}")).Order(StringComparer.Ordinal).ToList();
        Assert.Equal(Relocations(reference), Relocations(combined));
    }

    [Fact]
    public void Two_strong_definitions_are_refused()
    {
        string dir = Repo.TempDirectory("multiple");
        string a = Object(dir, "a", "int twice(void) { return 1; }");
        string b = Object(dir, "b", "int twice(void) { return 2; }");
        Assert.False(ObjectLinker.TryLink([Input(a), Input(b)], ElfMachine.X86_64, out _, out var problem));
        Assert.Equal("multiple definition of twice: in a.o and in b.o", problem.Message);
        Assert.Contains("make the others static", problem.Advice, StringComparison.Ordinal);
    }

    [Fact]
    public void Common_symbols_and_other_machines_are_refused()
    {
        string dir = Repo.TempDirectory("refused");
        string common = Object(dir, "common", "int shared; int get(void) { return shared; }", ".c", "-fcommon");
        Assert.False(ObjectLinker.TryLink([Input(common)], ElfMachine.X86_64, out _, out var problem));
        Assert.Equal("common.o: shared is a common symbol", problem.Message);
        Assert.Contains("-fno-common", problem.Advice, StringComparison.Ordinal);

        string arm = Path.Combine(dir, "arm.o");
        File.WriteAllText(Path.Combine(dir, "arm.c"), "int f(void) { return 1; }");
        Tool.Run("aarch64-linux-gnu-gcc", "-c", Path.Combine(dir, "arm.c"), "-o", arm).EnsureSuccess();
        Assert.False(ObjectLinker.TryLink([Input(arm)], ElfMachine.X86_64, out _, out problem));
        Assert.Equal("arm.o: built for arm64 (ELF64, little-endian), but the hypervisor is x86-64 (ELF64, little-endian)", problem.Message);

        Assert.False(ObjectLinker.TryLink([Input(Path.Combine(Repo.Root, "tests", "Data", "tooling", "xen-syms"))], ElfMachine.X86_64, out _, out problem));
        Assert.StartsWith("xen-syms: not a relocatable object", problem.Message, StringComparison.Ordinal);
    }
}
