using System.Text.Json;
using XenLivepatch.TestKit;

namespace XenLivepatch.Host.Tests;

/// <summary>
/// The install store: what it keeps, what it refuses, and that no failure (a payload for another hypervisor, an
/// unwritable directory, a full disk, a damaged file) leaves it half-written or unreadable.
/// </summary>
public class InstallStoreTests
{
    private static InstallStore NewStore(out string root)
    {
        root = Repo.TempDirectory("store");
        return new InstallStore(root, Payloads.XenBuildId);
    }

    private static string[] FilesIn(string directory) =>
        [.. Directory.GetFiles(directory).Select(Path.GetFileName).OfType<string>().Order(StringComparer.Ordinal)];

    [Fact]
    public void Installed_payloads_are_kept_under_the_build_id_with_checksum_and_order_and_read_back_whole()
    {
        var store = NewStore(out string root);
        Assert.True(store.TryInstall([Payloads.File("xen_bye_world"), Payloads.File("xen_hello_world")], false, false, out var installed, out string? problem), problem);
        Assert.Equal(["xen_bye_world", "xen_hello_world"], installed.Select(e => e.Name));
        Assert.Equal([1, 2], installed.Select(e => e.Order));
        Assert.Equal(Path.Combine(root, Payloads.XenBuildId), store.Directory);

        Assert.True(store.TryReadAll(out var stored, out problem), problem);
        Assert.All(stored, s => Assert.Null(s.Problem));
        var hello = Payloads.File("xen_hello_world");
        var entry = stored.Single(s => s.Entry.Name == "xen_hello_world");
        Assert.Equal(hello.Sha256, entry.Entry.Sha256);
        Assert.Equal(hello.Data, entry.Payload!.Data);
        Assert.Equal(hello.BuildId, entry.Entry.BuildId);
        Assert.Equal(hello.Depends, entry.Entry.Depends);

        // The index is JSON a person (or a script) can read.
        using var doc = JsonDocument.Parse(File.ReadAllText(store.IndexPath));
        Assert.Equal(Payloads.XenBuildId, doc.RootElement.GetProperty("build_id").GetString());
        Assert.Equal(2, doc.RootElement.GetProperty("payloads").GetArrayLength());
        Assert.Equal([".lock", "installed.json", $"xen_bye_world.{Payloads.File("xen_bye_world").Sha256[..16]}.livepatch", $"xen_hello_world.{hello.Sha256[..16]}.livepatch"],
            FilesIn(store.Directory));
    }

    [Fact]
    public void Installing_a_name_again_keeps_its_place_and_replace_moves_it_last_and_uninstall_removes_the_file()
    {
        var store = NewStore(out _);
        Assert.True(store.TryInstall([Payloads.File("xen_hello_world"), Payloads.File("xen_nop")], false, false, out _, out string? problem), problem);
        Assert.True(store.TryInstall([Payloads.File("xen_hello_world")], false, true, out var again, out problem), problem);
        Assert.Equal((1, true), (again[0].Order, again[0].NoDeps));
        Assert.True(store.TryInstall([Payloads.File("xen_nop")], true, false, out var replaced, out problem), problem);
        Assert.Equal((3, true), (replaced[0].Order, replaced[0].Replace));

        Assert.True(store.TryUninstall("xen_hello_world", out var removed, out problem), problem);
        Assert.Equal("xen_hello_world", removed!.Name);
        Assert.DoesNotContain(FilesIn(store.Directory), f => f.StartsWith("xen_hello_world", StringComparison.Ordinal));
        Assert.False(store.TryUninstall("xen_hello_world", out _, out problem));
        Assert.Equal($"xen_hello_world is not installed for hypervisor {Payloads.XenBuildId} (installed: xen_nop)", problem);
    }

    [Fact]
    public void A_payload_for_another_hypervisor_is_refused_and_nothing_is_installed()
    {
        var store = NewStore(out _);
        string foreign = Payloads.ForAnotherHypervisor("xen_nop", Repo.TempDirectory("foreign"));
        Assert.True(PayloadFile.TryRead(foreign, null, out var f, out string? error), error);
        Assert.False(store.TryInstall([Payloads.File("xen_hello_world"), f], false, false, out _, out string? problem));
        Assert.Contains($"xen_nop ({foreign}) was made for hypervisor build-id {string.Concat(Enumerable.Repeat("ab", 20))}", problem, StringComparison.Ordinal);
        Assert.Contains($"not {Payloads.XenBuildId}", problem, StringComparison.Ordinal);
        Assert.False(Directory.Exists(store.Directory) && File.Exists(store.IndexPath));
    }

    [Fact]
    public void A_truncated_a_changed_and_a_missing_file_are_each_reported_and_the_others_read()
    {
        var store = NewStore(out _);
        Assert.True(store.TryInstall([Payloads.File("xen_hello_world"), Payloads.File("xen_nop"), Payloads.File("xen_replace_world")], false, false, out var e, out string? problem), problem);
        string hello = Path.Combine(store.Directory, e[0].File), nop = Path.Combine(store.Directory, e[1].File);
        byte[] data = File.ReadAllBytes(hello);
        File.WriteAllBytes(hello, data[..(data.Length / 2)]);
        File.Delete(nop);

        Assert.True(store.TryReadAll(out var stored, out problem), problem);
        Assert.Contains("is 2484 bytes, not the 4968 installed (truncated or changed)", stored[0].Problem, StringComparison.Ordinal);
        Assert.Contains("install it again", stored[0].Problem, StringComparison.Ordinal);
        Assert.Contains("is missing", stored[1].Problem, StringComparison.Ordinal);
        Assert.Null(stored[2].Problem);

        // Same size, other bytes: the checksum tells.
        data[100] ^= 0xff;
        File.WriteAllBytes(hello, data);
        Assert.True(store.TryReadAll(out stored, out _));
        Assert.Contains("has changed since it was installed", stored[0].Problem, StringComparison.Ordinal);
    }

    [Fact]
    public void A_damaged_index_is_reported_with_what_to_do_and_refuses_changes()
    {
        var store = NewStore(out _);
        Assert.True(store.TryInstall([Payloads.File("xen_nop")], false, false, out _, out _));
        File.WriteAllText(store.IndexPath, "{\"schema\": 1, \"build_id\": \"");
        Assert.False(store.TryReadIndex(out _, out string? problem));
        Assert.Contains("is damaged", problem, StringComparison.Ordinal);
        Assert.Contains("remove it and install the payloads again", problem, StringComparison.Ordinal);
        Assert.False(store.TryInstall([Payloads.File("xen_hello_world")], false, false, out _, out _));
    }

    [Fact]
    public void An_unwritable_directory_refuses_the_install_with_a_clear_message_and_leaves_the_store_as_it_was()
    {
        var store = NewStore(out string root);
        Assert.True(store.TryInstall([Payloads.File("xen_nop")], false, false, out _, out _));
        string before = File.ReadAllText(store.IndexPath);
        using (ReadOnly(root))
        {
            Assert.False(store.TryInstall([Payloads.File("xen_hello_world")], false, false, out _, out string? problem));
            Assert.StartsWith($"cannot change the store {store.Directory}: ", problem, StringComparison.Ordinal);
            Assert.Contains("nothing was changed", problem, StringComparison.Ordinal);
            Assert.Contains("--store DIR", problem, StringComparison.Ordinal);
            Assert.Equal(before, File.ReadAllText(store.IndexPath));
            Assert.True(store.TryReadAll(out var stored, out _));
            Assert.Equal("xen_nop", Assert.Single(stored).Entry.Name);
        }
    }

    [RootFact]
    public void A_full_disk_refuses_the_install_and_leaves_neither_a_half_written_payload_nor_a_temporary_file()
    {
        string root = Repo.TempDirectory("store-full");
        Tool.Run("mount", "-t", "tmpfs", "-o", "size=12k", "tmpfs", root).EnsureSuccess();
        try
        {
            var store = new InstallStore(root, Payloads.XenBuildId);
            Assert.True(store.TryInstall([Payloads.File("xen_nop")], false, false, out _, out string? problem), problem);
            string before = File.ReadAllText(store.IndexPath);
            // 4,968 + 2,208 + 2,192 bytes do not fit in what is left of 12 KiB.
            Assert.False(store.TryInstall([Payloads.File("xen_hello_world"), Payloads.File("xen_replace_world"), Payloads.File("xen_bye_world")], false, false, out _, out problem));
            Assert.Contains("no space left on the device", problem, StringComparison.Ordinal);
            Assert.Equal(before, File.ReadAllText(store.IndexPath));
            Assert.Equal([".lock", "installed.json", $"xen_nop.{Payloads.File("xen_nop").Sha256[..16]}.livepatch"], FilesIn(store.Directory));
            Assert.True(store.TryReadAll(out var stored, out _));
            Assert.Null(Assert.Single(stored).Problem);
        }
        finally
        {
            Tool.Run("umount", root).EnsureSuccess();
        }
    }

    [Fact]
    public void A_crash_between_the_file_and_the_index_leaves_the_old_index_naming_whole_files_and_the_next_change_cleans_up()
    {
        var store = NewStore(out _);
        Assert.True(store.TryInstall([Payloads.File("xen_nop")], false, false, out _, out _));
        // What a crash after writing a payload and a temporary index, before the rename, leaves behind.
        File.WriteAllBytes(Path.Combine(store.Directory, "xen_hello_world.0123456789abcdef.livepatch"), File.ReadAllBytes(Payloads.Path("xen_hello_world")));
        File.WriteAllText(Path.Combine(store.Directory, ".tmp-999-deadbeef-installed.json"), "{\"half\":");
        Assert.True(store.TryReadAll(out var stored, out string? problem), problem);
        Assert.Equal("xen_nop", Assert.Single(stored).Entry.Name);
        Assert.True(store.TryInstall([Payloads.File("xen_replace_world")], false, false, out _, out problem), problem);
        Assert.DoesNotContain(FilesIn(store.Directory), f => f.StartsWith(".tmp-", StringComparison.Ordinal) || f.StartsWith("xen_hello_world", StringComparison.Ordinal));
    }

    private static bool IsRoot => Environment.UserName == "root";

    // The directory made read-only: a read-only bind mount for root (who ignores permissions), else mode 0555.
    private static IDisposable ReadOnly(string directory)
    {
        if (IsRoot)
        {
            Tool.Run("mount", "--bind", directory, directory).EnsureSuccess();
            Tool.Run("mount", "-o", "remount,bind,ro", directory).EnsureSuccess();
            return new Undo(() => Tool.Run("umount", directory).EnsureSuccess());
        }
        var dirs = Directory.GetDirectories(directory, "*", SearchOption.AllDirectories).Append(directory).ToList();
        foreach (string d in dirs)
            File.SetUnixFileMode(d, UnixFileMode.UserRead | UnixFileMode.UserExecute);
        return new Undo(() =>
        {
            foreach (string d in dirs)
                File.SetUnixFileMode(d, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        });
    }

    private sealed class Undo(Action undo) : IDisposable
    {
        public void Dispose() => undo();
    }
}
