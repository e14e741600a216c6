using XenLivepatch.TestKit;

namespace XenLivepatch.Host.Tests;

/// <summary>Desired sets: a directory, the text and JSON manifests, the store's, and what makes one unappliable.</summary>
public class DesiredSetTests
{
    private static string Dir(params string[] samples)
    {
        string dir = Repo.TempDirectory("set");
        foreach (string s in samples)
            File.Copy(Payloads.Path(s), Path.Combine(dir, s + ".livepatch"));
        return dir;
    }

    [Fact]
    public void A_directory_is_every_payload_in_dependency_order_with_ties_by_name()
    {
        // xen_bye_world depends on xen_hello_world: it goes after it although its name sorts first.
        Assert.True(DesiredSet.TryLoad(Dir("xen_bye_world", "xen_hello_world", "xen_nop", "xen_action_hooks"), out var set, out var problems), string.Join("\n", problems));
        Assert.Equal(["xen_action_hooks", "xen_hello_world", "xen_bye_world", "xen_nop"], set.Payloads.Select(p => p.Name));
        Assert.Empty(set.Check(Payloads.XenBuildId));
    }

    [Fact]
    public void A_text_manifest_gives_order_names_and_marks_relative_to_itself()
    {
        string dir = Dir("xen_replace_world", "xen_nop");
        string manifest = Path.Combine(dir, "set.txt");
        File.WriteAllText(manifest, "# the 2024-06 set\n\nxen_replace_world.livepatch replace\n  xen_nop.livepatch   name=nop nodeps  \n");
        Assert.True(DesiredSet.TryLoad(manifest, out var set, out var problems), string.Join("\n", problems));
        Assert.Equal([("xen_replace_world", true, false), ("nop", false, true)], set.Payloads.Select(p => (p.Name, p.Replace, p.NoDeps)));
        Assert.Equal($"the manifest {manifest}", set.Source);
    }

    [Fact]
    public void A_json_manifest_says_the_same()
    {
        string dir = Dir("xen_replace_world", "xen_nop");
        string manifest = Path.Combine(dir, "set.json");
        File.WriteAllText(manifest, """{"schema": 1, "payloads": [{"file": "xen_replace_world.livepatch", "replace": true}, {"file": "xen_nop.livepatch", "name": "nop"}]}""");
        Assert.True(DesiredSet.TryLoad(manifest, out var set, out var problems), string.Join("\n", problems));
        Assert.Equal([("xen_replace_world", true, false), ("nop", false, false)], set.Payloads.Select(p => (p.Name, p.Replace, p.NoDeps)));
    }

    [Theory]
    [InlineData("xen_nop.livepatch frobnicate\n", "set.txt:1: unknown word 'frobnicate' (a line is: FILE [name=NAME] [replace] [nodeps])")]
    [InlineData("# one\nmissing.livepatch\n", "set.txt:2: ")]
    [InlineData("{\"schema\": 2, \"payloads\": []}", "\"schema\" must be 1")]
    [InlineData("{\"schema\": 1, \"payloads\": [{\"name\": \"x\"}]}", "payloads[0]: needs \"file\"")]
    [InlineData("{\"schema\": 1, \"payloads\": [{\"file\": \"xen_nop.livepatch\", \"extra\": 1}]}", "unknown member \"extra\"")]
    [InlineData("{\"schema\": 1, \"payloads\": [", "not valid JSON")]
    [InlineData("xen_nop.livepatch name=a/b\n", "holds a NUL or a '/'")]
    public void A_bad_manifest_is_refused_naming_the_place(string text, string expected)
    {
        string dir = Dir("xen_nop");
        string manifest = Path.Combine(dir, "set.txt");
        File.WriteAllText(manifest, text);
        Assert.False(DesiredSet.TryLoad(manifest, out _, out var problems));
        Assert.Contains(problems, p => p.Contains(expected, StringComparison.Ordinal));
    }

    [Fact]
    public void What_cannot_be_applied_is_said_before_anything_is_done()
    {
        string dir = Dir("xen_hello_world", "xen_bye_world", "xen_replace_world", "xen_prepost_hooks", "xen_nop");
        string foreign = Payloads.ForAnotherHypervisor("xen_action_hooks", Repo.TempDirectory("foreign"));
        string manifest = Path.Combine(dir, "set.txt");
        File.WriteAllText(manifest,
            "xen_bye_world.livepatch\n" +               // its dependency is not below it
            "xen_hello_world.livepatch\n" +
            "xen_replace_world.livepatch replace\n" +   // replace, not first
            "xen_prepost_hooks.livepatch\n" +
            $"{foreign}\n" +                            // another hypervisor's
            "xen_nop.livepatch name=xen_hello_world\n");  // a name twice
        Assert.True(DesiredSet.TryLoad(manifest, out var set, out var loadProblems), string.Join("\n", loadProblems));
        var problems = set.Check(Payloads.XenBuildId);
        Assert.Contains("xen_bye_world depends on xen_hello_world, which comes after it in the set: put xen_hello_world first", problems);
        Assert.Contains(problems, p => p.StartsWith("xen_replace_world is marked replace but is not first", StringComparison.Ordinal));
        Assert.Contains(problems, p => p.StartsWith("xen_action_hooks (", StringComparison.Ordinal) && p.Contains("was made for hypervisor abab", StringComparison.Ordinal));
        Assert.Contains(problems, p => p.StartsWith("xen_hello_world is named twice", StringComparison.Ordinal));
        Assert.Equal(4, problems.Count);

        File.WriteAllText(manifest, "xen_prepost_hooks.livepatch replace\nxen_bye_world.livepatch nodeps\n");
        Assert.True(DesiredSet.TryLoad(manifest, out set, out _));
        var replaceProblems = set.Check(Payloads.XenBuildId);
        Assert.Equal("xen_prepost_hooks has pre/post apply or revert hooks: Xen's REPLACE refuses such a payload (EOPNOTSUPP); drop 'replace'", Assert.Single(replaceProblems));

        File.WriteAllText(manifest, "xen_nop.livepatch\nxen_bye_world.livepatch\n");
        Assert.True(DesiredSet.TryLoad(manifest, out set, out _));
        Assert.Equal($"xen_bye_world depends on build-id {Payloads.File("xen_hello_world").BuildId}, which neither the hypervisor nor a payload before it has: " +
            "put the payload it was built on before it, or mark it nodeps", Assert.Single(set.Check(Payloads.XenBuildId)));
    }

    [Fact]
    public void The_store_set_starts_at_the_last_replace_in_dependency_order_with_ties_by_install_order()
    {
        var store = new InstallStore(Repo.TempDirectory("store-set"), Payloads.XenBuildId);
        Assert.True(store.TryInstall([Payloads.File("xen_bye_world"), Payloads.File("xen_hello_world")], false, false, out _, out _));
        Assert.True(store.TryInstall([Payloads.File("xen_replace_world")], true, false, out _, out _));
        Assert.True(store.TryInstall([Payloads.File("xen_nop"), Payloads.File("xen_action_hooks")], false, false, out _, out _));
        Assert.True(store.TryReadAll(out var stored, out _));
        var set = DesiredSet.FromStore(store, stored, out var superseded);
        Assert.Equal(["xen_bye_world", "xen_hello_world"], superseded.Select(e => e.Name));
        Assert.Equal([("xen_replace_world", true), ("xen_nop", false), ("xen_action_hooks", false)], set.Payloads.Select(p => (p.Name, p.Replace)));

        Assert.True(store.TryUninstall("xen_replace_world", out _, out _));
        Assert.True(store.TryReadAll(out stored, out _));
        set = DesiredSet.FromStore(store, stored, out superseded);
        Assert.Empty(superseded);
        Assert.Equal(["xen_hello_world", "xen_bye_world", "xen_nop", "xen_action_hooks"], set.Payloads.Select(p => p.Name));
    }
}
