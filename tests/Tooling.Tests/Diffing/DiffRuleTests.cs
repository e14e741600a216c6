using XenLivepatch.Elf;
using XenLivepatch.TestKit;
using XenLivepatch.Tooling.Diffing;

namespace XenLivepatch.Tooling.Tests.Diffing;

/// <summary>
/// The diff's rules beyond one case each: gcc's numbers (clones, static locals) renamed between builds, objects
/// from different compilers or flags, line numbers without the patch that moved them, and the shape of what
/// it writes (names as the running hypervisor has them, statics keeping their storage).
/// </summary>
public class DiffRuleTests
{
    private static DiffResult Diff(string a, string b, string? patch = null) => ObjectDiff.Run(
        new DiffInput(Path.GetFileName(a), ElfFile.Read(File.ReadAllBytes(a))),
        new DiffInput(Path.GetFileName(b), ElfFile.Read(File.ReadAllBytes(b))),
        patch == null ? null : [DiffTree.Patch(patch)]);

    private static string Objcopy(string input, params string[] args)
    {
        string output = input + ".renamed.o";
        Tool.Run("objcopy", [.. args, input, output]).EnsureSuccess();
        return output;
    }

    private static ElfObjectSymbol Symbol(DiffResult r, string name) =>
        ElfObject.FromFile(ElfFile.Read(r.Output!)).SymbolTable!.Symbols.Single(s => s.Name == name);

    [Fact]
    public void A_clone_renumbered_by_gcc_is_paired_with_the_original()
    {
        var patched = DiffTree.Build("clone-renumbered", DiffTree.Patch("clone"));
        string renumbered = Objcopy(patched.Path("unit.o"),
            "--redefine-sym", "mul_add.constprop.0=mul_add.constprop.3", "--rename-section", ".text.mul_add.constprop.0=.text.mul_add.constprop.3",
            "--rename-section", ".rela.text.mul_add.constprop.0=.rela.text.mul_add.constprop.3");
        var r = Diff(DiffTree.Original.Path("unit.o"), renumbered, "clone");
        Assert.Equal(DiffOutcome.Changed, r.Outcome);
        var changed = Assert.Single(r.Changed);
        Assert.Equal("unit.c#mul_add.constprop.0", changed.HypervisorName);
        Assert.Equal(ElfSymbolBinding.Global, Symbol(r, "unit.c#mul_add.constprop.0").Binding);
        // apply_mul calls the clone: unchanged, it is not in the payload.
        Assert.Empty(r.New);
    }

    [Fact]
    public void A_static_local_renumbered_by_gcc_keeps_the_original_storage()
    {
        var patched = DiffTree.Build("static-renumbered", DiffTree.Patch("static-local"));
        string renumbered = Objcopy(patched.Path("unit.o"), "--redefine-sym", "calls.0=calls.7", "--rename-section", ".bss.calls.0=.bss.calls.7");
        var r = Diff(DiffTree.Original.Path("unit.o"), renumbered, "static-local");
        Assert.Equal(DiffOutcome.Changed, r.Outcome);
        Assert.Equal("counter_next", Assert.Single(r.Changed).HypervisorName);
        Assert.Empty(r.NewData);
        // The counter is the running hypervisor's, found by Xen's name for it; the payload defines no copy.
        var calls = Symbol(r, "unit.c#calls.0");
        Assert.Equal(ElfSpecialSection.Undefined, calls.SpecialSection);
        Assert.Null(calls.Section);
        var obj = ElfObject.FromFile(ElfFile.Read(r.Output!));
        Assert.DoesNotContain(obj.Sections, s => s.Name.StartsWith(".bss", StringComparison.Ordinal));
    }

    [Fact]
    public void Unchanged_static_and_global_symbols_are_referred_to_by_the_hypervisors_names()
    {
        var patched = DiffTree.Build("names", DiffTree.Patch("new-function"));
        var r = Diff(DiffTree.Original.Path("unit.o"), patched.Path("unit.o"), "new-function");
        // compute calls scale (static, unchanged) and the new twice; both read hits (static).
        Assert.Equal(ElfSpecialSection.Undefined, Symbol(r, "unit.c#scale").SpecialSection);
        Assert.Equal(ElfSpecialSection.Undefined, Symbol(r, "unit.c#hits").SpecialSection);
        var twice = Symbol(r, "unit.c#twice");
        Assert.Equal(ElfSymbolType.Func, twice.Type);
        Assert.Equal(ElfSymbolBinding.Local, twice.Binding);
        Assert.NotNull(twice.Section);
        var compute = Symbol(r, "compute");
        Assert.Equal(ElfSymbolBinding.Global, compute.Binding);
        Assert.Equal(".text.compute", compute.Section!.Name);
    }

    [Fact]
    public void A_moved_line_is_a_change_only_when_nothing_says_it_moved()
    {
        var patched = DiffTree.Build("lines", DiffTree.Patch("line-only"));
        var with = Diff(DiffTree.Original.Path("unit.o"), patched.Path("unit.o"), "line-only");
        Assert.Equal(DiffOutcome.NothingToPatch, with.Outcome);
        Assert.Contains(with.Notes, n => n.Contains("bug frames", StringComparison.Ordinal));
        // Without the patch, a __LINE__ passed to do_crash() is an immediate that changed: guard is patched.
        var without = Diff(DiffTree.Original.Path("unit.o"), patched.Path("unit.o"));
        Assert.Equal(DiffOutcome.Changed, without.Outcome);
        Assert.Equal("guard", Assert.Single(without.Changed).HypervisorName);
        // checked's WARN moved too, but only in its bug frame: never a change.
        Assert.DoesNotContain(without.Changed, s => s.Name == "checked");
    }

    [Fact]
    public void An_immediate_the_patch_does_not_explain_is_a_change()
    {
        var patched = DiffTree.Build("immediate", DiffTree.Patch("static-local"));
        var r = Diff(DiffTree.Original.Path("unit.o"), patched.Path("unit.o"), "static-local");
        var changed = Assert.Single(r.Changed);
        Assert.Contains("immediate 1 became 2", changed.Reason, StringComparison.Ordinal);
    }

    [Fact]
    public void Objects_built_with_other_flags_are_not_compared()
    {
        var other = DiffTree.Build("flags", DiffTree.Patch("string"), "-fcf-protection=none");
        var r = Diff(DiffTree.Original.Path("unit.o"), other.Path("unit.o"));
        Assert.Equal(DiffOutcome.Mismatched, r.Outcome);
        Assert.Contains("code-generation flags", r.Problem!.Message, StringComparison.Ordinal);
        Assert.Null(r.Output);
    }

    [Fact]
    public void Objects_from_another_compiler_are_not_compared()
    {
        // ./build.sh installs clang (the ELF corpus uses it too).
        var other = DiffTree.Build("clang", DiffTree.Patch("string"), compiler: "clang");
        var r = Diff(DiffTree.Original.Path("unit.o"), other.Path("unit.o"));
        Assert.Equal(DiffOutcome.Mismatched, r.Outcome);
        Assert.Contains("compilers", r.Problem!.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void An_object_compared_with_itself_has_nothing_to_patch()
    {
        string o = DiffTree.Original.Path("unit.o");
        var r = Diff(o, o);
        Assert.Equal(DiffOutcome.NothingToPatch, r.Outcome);
        Assert.Null(r.Output);
    }

    [Fact]
    public void A_linked_image_is_not_an_object_to_compare()
    {
        var r = Diff(DiffTree.Original.Image, DiffTree.Original.Path("unit.o"));
        Assert.Equal(DiffOutcome.Mismatched, r.Outcome);
        Assert.Contains("not a relocatable object", r.Problem!.Message, StringComparison.Ordinal);
    }
}
