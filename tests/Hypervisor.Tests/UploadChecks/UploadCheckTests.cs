using XenLivepatch.Abi;
using XenLivepatch.TestKit;

namespace XenLivepatch.Hypervisor.Tests;

/// <summary>
/// Every UPLOAD check, one case per line of tests/Data/cases/upload-checks.txt: a payload built with Xen's
/// recipe, mutated, is refused by the check the line names, with that check's errno and the errno the line
/// gives (Xen's), a message that names the payload, and nothing left behind (no payload, no memory, no
/// version bump). A failure names its line.
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

    /// <summary>The cases: (line number, the line).</summary>
    public static TheoryData<int, string> Cases()
    {
        var data = new TheoryData<int, string>();
        string[] lines = File.ReadAllLines(CasesPath);
        for (int i = 0; i < lines.Length; i++)
        {
            string line = lines[i].Trim();
            if (line.Length > 0 && line[0] != '#')
                data.Add(i + 1, line);
        }
        return data;
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
    public void Upload_check(int line, string text)
    {
        string where = $"upload-checks.txt:{line}: {text}";
        string[] columns = text.Split('|', StringSplitOptions.TrimEntries);
        Assert.True(columns.Length == 4, $"{where}: expected check | payload | mutation | errno");
        string check = columns[0], errnoName = columns[3];
        byte[] payload = PayloadMutation.Apply(Base(columns[1]), columns[2]);

        var (core, target) = Targets.Core();
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
}
