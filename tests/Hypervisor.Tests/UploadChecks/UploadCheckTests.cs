using XenLivepatch.Abi;
using XenLivepatch.TestKit;

namespace XenLivepatch.Hypervisor.Tests;

/// <summary>
/// Every UPLOAD check, one case per line of tests/Data/cases/upload-checks.txt, under each profile the line holds
/// for (Xen 4.17 and 4.22 unless it says): a payload built with Xen's recipe, mutated, is refused by the check the
/// line names, with that check's errno and the errno the line gives (Xen's), a message that names the payload, and
/// nothing left behind (no payload, no memory, no version bump). A failure names its line and profile.
/// </summary>
public class UploadCheckTests
{
    private static readonly Lazy<byte[]> s_hello = new(() => File.ReadAllBytes(
        LivepatchFixtures.BuildPayload(LivepatchFixtures.Image(), "hello", ["hello_world.c"], "--modinfo", "LIVEPATCH_RULEZ")));
    private static readonly Lazy<byte[]> s_extern = new(() => File.ReadAllBytes(
        LivepatchFixtures.BuildPayload(LivepatchFixtures.Image(), "extern", ["extern_refs.c"])));
    private static readonly Lazy<byte[]> s_nop = new(() => File.ReadAllBytes(
        LivepatchFixtures.BuildPayload(LivepatchFixtures.Image(), "nop", ["nop.c"])));
    private static readonly Lazy<byte[]> s_hooks = new(() => File.ReadAllBytes(
        LivepatchFixtures.BuildPayload(LivepatchFixtures.Image(), "hooks", ["hooks_only.c"])));

    private static string CasesPath => Repo.Path("tests", "Data", "cases", "upload-checks.txt");

    private static readonly string[] s_defaultProfiles = [LivepatchProfile.Xen417.Name, LivepatchProfile.Xen422.Name];

    /// <summary>The cases: (line number, the line, a profile it holds for).</summary>
    public static TheoryData<int, string, string> Cases()
    {
        var data = new TheoryData<int, string, string>();
        string[] lines = File.ReadAllLines(CasesPath);
        for (int i = 0; i < lines.Length; i++)
        {
            string line = lines[i].Trim();
            if (line.Length == 0 || line[0] == '#')
                continue;
            string[] columns = line.Split('|', StringSplitOptions.TrimEntries);
            string[] profiles = columns.Length == 5 ? columns[4].Split(' ', StringSplitOptions.RemoveEmptyEntries) : s_defaultProfiles;
            foreach (string profile in profiles)
                data.Add(i + 1, string.Join(" | ", columns.Take(4)), profile);
        }
        return data;
    }

    [Fact]
    public void Where_the_versions_differ_each_has_its_line()
    {
        // A mutation given for one profile only is given for the other too: no case is silently skipped.
        var byMutation = Cases().Select(c => ((string)c[1], (string)c[2]))
            .GroupBy(c => string.Join("|", c.Item1.Split('|', StringSplitOptions.TrimEntries)[1..3]), c => c.Item2);
        foreach (var g in byMutation)
            Assert.True(g.Order().SequenceEqual(s_defaultProfiles.Order()), $"'{g.Key}' has lines for {string.Join(", ", g)} only");
    }

    private static byte[] Base(string name) => name switch
    {
        "hello" => s_hello.Value,
        "extern" => s_extern.Value,
        "nop" => s_nop.Value,
        "hooks" => s_hooks.Value,
        "none" => [],
        _ => throw new FormatException($"unknown payload '{name}'"),
    };

    [Theory, MemberData(nameof(Cases))]
    public void Upload_check(int line, string text, string profileName)
    {
        string where = $"upload-checks.txt:{line} ({profileName}): {text}";
        var profile = LivepatchProfile.FromName(profileName);
        Assert.True(profile != null, $"{where}: no profile '{profileName}'");
        string[] columns = text.Split('|', StringSplitOptions.TrimEntries);
        Assert.True(columns.Length == 4, $"{where}: expected check | payload | mutation | errno");
        string check = columns[0], errnoName = columns[3];
        byte[] payload = PayloadMutation.Apply(Base(columns[1]), columns[2]);

        var (core, target) = Targets.Core(profile: profile);
        var before = Targets.Snapshot(core, target);
        var error = core.Upload("payload", payload);
        if (errnoName == "OK")
        {
            Assert.True(check == "accepted", $"{where}: an accepted case's check is 'accepted'");
            Assert.True(error == null, $"{where}: refused: {error}");
            Assert.Equal(LivepatchState.Checked, Assert.Single(core.Payloads).State);
            return;
        }
        Assert.True(Enum.TryParse(check, out LivepatchCheck expected) && Enum.IsDefined(expected), $"{where}: '{check}' is no check of the table");
        Assert.True(Enum.TryParse(errnoName, out XenErrno errno), $"{where}: '{errnoName}' is no errno");
        Assert.True(error != null, $"{where}: accepted");
        Assert.True(error.Check == expected && error.Errno == errno, $"{where}: refused by {error.Check} ({error.Errno}): {error.Message}");
        Assert.True(expected.GetErrno() == errno, $"{where}: the table gives {expected} the errno {expected.GetErrno()}");
        Assert.StartsWith("payload: ", error.Message, StringComparison.Ordinal);
        Assert.True(Equals(before, Targets.Snapshot(core, target)), $"{where}: the refused upload left something behind");
    }

    [Fact]
    public void A_replacement_out_of_branch_range_gets_EOVERFLOW()
    {
        var image = LivepatchFixtures.Image();
        // Payload memory 3 GiB above the hypervisor's text: a rel32 jump cannot reach it.
        Assert.True(OfflineHypervisor.TryFromImage(image.File, out var target, out string? why, windowStart: image.Address("xen_extra_version") + (3UL << 30)), why);
        var core = new LivepatchCore(LivepatchProfile.Xen417, X86_64Arch.Instance, target, target);
        var error = core.Upload("far", s_hello.Value);
        Assert.Equal((LivepatchCheck.FuncOutOfRange, XenErrno.EOVERFLOW), (error?.Check, error?.Errno));
        Assert.Contains("out of branch range", error!.Message, StringComparison.Ordinal);
        Assert.Empty(target.Allocations);
    }

    [Fact]
    public void A_new_symbol_of_another_payload_is_a_duplicate()
    {
        var (core, target) = Targets.Core();
        Assert.Null(core.Upload("first", s_extern.Value));
        var before = Targets.Snapshot(core, target);
        // The same static string name, under a new build-id: a new symbol that the first payload already exports.
        var second = new PayloadEditor((byte[])s_extern.Value.Clone());
        second.U8(second.Data(".note.gnu.build-id") + 16, (byte)(second.Bytes[second.Data(".note.gnu.build-id") + 16] ^ 1));
        var error = core.Upload("second", second.Bytes);
        Assert.Equal((LivepatchCheck.SymbolDuplicate, XenErrno.EEXIST), (error?.Check, error?.Errno));
        Assert.Contains("duplicate new symbol: extern_refs_patch_this_fnc", error!.Message, StringComparison.Ordinal);
        Assert.Equal(before, Targets.Snapshot(core, target));
    }

    [Fact]
    public void A_build_id_in_use_names_its_payload_until_that_one_is_unloaded()
    {
        var (core, target) = Targets.Core();
        Assert.Null(core.Upload("first", s_hello.Value));
        Assert.Null(core.Upload("other", s_nop.Value));
        var before = Targets.Snapshot(core, target);
        var error = core.Upload("second", s_hello.Value);
        Assert.Equal((LivepatchCheck.BuildIdInUse, XenErrno.EEXIST), (error?.Check, error?.Errno));
        Assert.StartsWith("second: ", error!.Message, StringComparison.Ordinal);
        Assert.Contains("first", error.Message, StringComparison.Ordinal);
        Assert.Equal(before, Targets.Snapshot(core, target));
        // Unloaded, its build-id, symbols and name are free again: the same bytes load under either name.
        Assert.Equal(0, core.Action("first", LivepatchAction.Unload));
        Assert.Null(core.Upload("second", s_hello.Value));
        Assert.Equal(LivepatchCheck.NameInUse, core.Upload("second", s_nop.Value)?.Check);
        Assert.Equal(0, core.Action("second", LivepatchAction.Unload));
        Assert.Null(core.Upload("first", s_hello.Value));
        Assert.Equal(["other", "first"], core.Payloads.Select(p => p.Name));
    }
}
