using System.Text.Json;
using XenLivepatch.Abi;
using XenLivepatch.Hypervisor;
using XenLivepatch.TestKit;

namespace XenLivepatch.Cli.Tests;

/// <summary>
/// Every text and exit code of Xen's commands (reference §5.1) against an in-process hypervisor (the livepatch
/// core over the offline test image). Xen's own C tool is compared with ours on the same cases in
/// CToolDifferentialTests (through an LD_PRELOAD shim); these pin the texts down one by one.
/// </summary>
public class HypervisorCommandTests
{
    private static string Copy(string payload, string name)
    {
        string path = Path.Combine(Repo.TempDirectory("copy"), name);
        File.Copy(payload, path);
        return path;
    }

    [Fact]
    public void An_empty_list_prints_Nothing_to_list()
    {
        Assert.Equal(new CliRun(0, "Nothing to list\n", ""), CliRun.With(OfflineXen.Create(), "list"));
    }

    [Fact]
    public void Upload_prints_progress_on_stdout_and_errors_on_stderr()
    {
        var xen = OfflineXen.Create();
        Assert.Equal(new CliRun(0, $"Uploading {Payloads.Hello}... completed\n", ""), CliRun.With(xen, "upload", "hello", Payloads.Hello));
        Assert.Equal(new CliRun(1, $"Uploading {Payloads.Hello}... failed\n", "Error 17: File exists\n"), CliRun.With(xen, "upload", "hello", Payloads.Hello));
        Assert.Equal($"Uploading {Payloads.Hello}... failed\nError 17: File exists\n", CliRun.Interleaved(xen, "upload", "hello", Payloads.Hello));
    }

    [Fact]
    public void Upload_reports_file_errors_as_open_stat_and_mmap_do()
    {
        var xen = OfflineXen.Create();
        string dir = Repo.TempDirectory("files");
        string empty = Path.Combine(dir, "empty.livepatch");
        File.WriteAllBytes(empty, []);
        Assert.Equal(new CliRun(1, "", $"Could not open {dir}/none.\nError 2: No such file or directory\n"), CliRun.With(xen, "upload", "x", $"{dir}/none"));
        Assert.Equal(new CliRun(1, "", $"Could not map {empty}.\nError 22: Invalid argument\n"), CliRun.With(xen, "upload", "x", empty));
        Assert.Equal(new CliRun(1, "", $"Could not map {dir}.\nError 19: No such device\n"), CliRun.With(xen, "upload", "x", dir));
        Assert.Equal(0, xen.Calls);
    }

    [Fact]
    public void Names_are_checked_by_the_tool_then_by_libxc()
    {
        var xen = OfflineXen.Create();
        string n129 = new('n', 129), n128 = new('n', 128);
        Assert.Equal(new CliRun(1, "", "ID must be no more than 128 characters.\n"), CliRun.With(xen, "upload", n129, Payloads.Hello));
        Assert.Equal(new CliRun(1, "", "ID must be no more than 128 characters.\n"), CliRun.With(xen, "apply", n129));
        // 128 passes the tool's check, and libxc refuses it (strlen + 1 > 128) before any hypercall.
        Assert.Equal(new CliRun(1, $"Uploading {Payloads.Hello}... failed\n", "Error 22: Invalid argument\n"), CliRun.With(xen, "upload", n128, Payloads.Hello));
        Assert.Equal(new CliRun(1, "", $"Failed to get status of {n128}.\nError 22: Invalid argument\n"), CliRun.With(xen, "revert", n128));
        Assert.Equal(0, xen.Calls);
    }

    [Fact]
    public void Wrong_argument_counts_print_the_help_and_fail()
    {
        var xen = OfflineXen.Create();
        foreach (string[] args in new[] { ["upload"], ["upload", "a"], ["upload", "a", "b", "c"], ["list", "x"], ["apply"], new[] { "load" } })
            Assert.Equal(new CliRun(1, "", Usage.Help), CliRun.With(xen, args));
    }

    [Fact]
    public void Apply_revert_unload_with_the_60_ms_wait_and_one_GET()
    {
        var xen = OfflineXen.Create();
        var waits = new List<TimeSpan>();
        var host = CliRun.Host(xen, waits);
        CliRun.With(host, "upload", "xen_hello_world", Payloads.Hello);
        int before = xen.Calls;
        Assert.Equal(new CliRun(0, "Applying xen_hello_world... completed\n", ""), CliRun.With(host, "apply", "xen_hello_world"));
        // GET, ACTION, the wait, GET.
        Assert.Equal(3, xen.Calls - before);
        Assert.Equal([TimeSpan.FromMilliseconds(60)], waits);
        Assert.Equal(new CliRun(0, "No action needed.\n", ""), CliRun.With(host, "apply", "xen_hello_world"));
        Assert.Equal(new CliRun(1, "", "xen_hello_world is in the wrong state.\nCurrent state: APPLIED\nExpected state: CHECKED\n"), CliRun.With(host, "unload", "xen_hello_world"));
        Assert.Equal(new CliRun(0, "Reverting xen_hello_world... completed\n", ""), CliRun.With(host, "revert", "xen_hello_world"));
        Assert.Equal(new CliRun(0, "No action needed.\n", ""), CliRun.With(host, "revert", "xen_hello_world"));
        Assert.Equal(new CliRun(0, "Unloading xen_hello_world... completed\n", ""), CliRun.With(host, "unload", "xen_hello_world"));
        Assert.Equal(new CliRun(1, "", "Failed to get status of xen_hello_world.\nError 2: No such file or directory\n"), CliRun.With(host, "unload", "xen_hello_world"));
    }

    [Fact]
    public void Flags_are_nodeps_for_apply_only()
    {
        var xen = OfflineXen.Create();
        CliRun.With(xen, "upload", "xen_hello_world", Payloads.Hello);
        Assert.Equal(new CliRun(1, "", "Unsupported flag: --bogus.\n"), CliRun.With(xen, "apply", "xen_hello_world", "--bogus"));
        Assert.Equal(new CliRun(1, "", "Unsupported flag: --nodeps.\n"), CliRun.With(xen, "revert", "xen_hello_world", "--nodeps"));
        Assert.Equal(new CliRun(1, "", "Unsupported flag: --nodeps.\n"), CliRun.With(xen, "unload", "xen_hello_world", "--nodeps"));
        Assert.Equal(new CliRun(0, "Applying xen_hello_world... completed\n", ""), CliRun.With(xen, "apply", "xen_hello_world", "--nodeps", "--nodeps"));
    }

    [Fact]
    public void A_wrong_dependency_fails_the_apply_and_nodeps_skips_the_check()
    {
        var xen = OfflineXen.Create();
        CliRun.With(xen, "upload", "xen_bye_world", Payloads.Bye);
        Assert.Equal(new CliRun(1, "Applying xen_bye_world... failed\n", "Error 22: Invalid argument\n"), CliRun.With(xen, "apply", "xen_bye_world"));
        Assert.Equal(new CliRun(0, "Applying xen_bye_world... completed\n", ""), CliRun.With(xen, "apply", "xen_bye_world", "--nodeps"));
    }

    [Fact]
    public void Reapplying_a_payload_with_data_fails_through_its_rc_and_list_shows_it()
    {
        var xen = OfflineXen.Create();
        Assert.Equal(0, CliRun.With(xen, "load", Payloads.WithData).ExitCode);
        Assert.Equal(0, CliRun.With(xen, "revert", "xen_counter").ExitCode);
        // The hypercall says 0; the GET after the wait finds rc -EINVAL.
        Assert.Equal(new CliRun(1, "Applying xen_counter... failed\n", "Error 22: Invalid argument\n"), CliRun.With(xen, "apply", "xen_counter"));
        var list = CliRun.With(xen, "list");
        Assert.Equal(new CliRun(0,
            " ID                                     | status     | metadata\n" +
            "----------------------------------------+------------+---------------\n" +
            "xen_counter                             | CHECKED (22, Invalid argument)    | A=1;B=2\n", ""), list);
    }

    [Fact]
    public void List_prints_xens_table_with_metadata()
    {
        var xen = OfflineXen.Create();
        CliRun.With(xen, "load", Payloads.Hello);
        string longName = new('L', 45);
        CliRun.With(xen, "upload", longName, Payloads.Nop);
        Assert.Equal(new CliRun(0,
            " ID                                     | status     | metadata\n" +
            "----------------------------------------+------------+---------------\n" +
            "xen_hello_world                         | APPLIED    | LIVEPATCH_RULEZ\n" +
            $"{longName}| CHECKED    | \n", ""), CliRun.With(xen, "list"));
        Assert.Equal(CliRun.With(xen, "list"), CliRun.With(xen, "l"));
    }

    [Fact]
    public void Load_names_the_payload_after_the_file_and_unloads_when_the_apply_fails()
    {
        var xen = OfflineXen.Create();
        string file = Copy(Payloads.Hello, "my.patch.v1.livepatch");
        Assert.Equal(new CliRun(0, $"Uploading {file}... completed\nApplying my.patch.v1... completed\n", ""), CliRun.With(xen, "load", file));
        Assert.Equal(new CliRun(1, $"Uploading {file}... failed\n", "Error 17: File exists\n"), CliRun.With(xen, "load", file));

        xen = OfflineXen.Create();
        Assert.Equal(new CliRun(1, $"Uploading {Payloads.Bye}... completed\nApplying xen_bye_world... failed\nUnloading xen_bye_world... completed\n",
            "Error 22: Invalid argument\n"), CliRun.With(xen, "load", Payloads.Bye));
        Assert.Null(xen.Core.Find("xen_bye_world"));
        // The flags are checked after the upload (they belong to the apply), so the unload follows too.
        Assert.Equal(new CliRun(1, $"Uploading {Payloads.Nop}... completed\nUnloading xen_nop... completed\n", "Unsupported flag: --bogus.\n"),
            CliRun.With(xen, "load", Payloads.Nop, "--bogus"));
        Assert.Equal(new CliRun(0, $"Uploading {Payloads.Bye}... completed\nApplying xen_bye_world... completed\n", ""), CliRun.With(xen, "load", Payloads.Bye, "--nodeps"));
    }

    [Theory]
    [InlineData("a/b/name.livepatch", "name")]
    [InlineData("name", "name")]
    [InlineData("dir/name.livepatch/", "name")]
    [InlineData(".livepatch", "")]
    [InlineData("a.b.c", "a.b")]
    [InlineData("/", "/")]
    public void Load_names_come_from_basename_up_to_the_last_dot(string path, string name)
    {
        Assert.Equal(name, XenCommands.NameOf(path));
    }

    [Fact]
    public void Replace_uses_xens_verb()
    {
        var xen = OfflineXen.Create();
        CliRun.With(xen, "load", Payloads.Hello);
        CliRun.With(xen, "upload", "xen_nop", Payloads.Nop);
        Assert.Equal(new CliRun(0, "Replacing all live patches with xen_nop... completed\n", ""), CliRun.With(xen, "replace", "xen_nop"));
        Assert.Equal(LivepatchState.Checked, xen.Core.Find("xen_hello_world")!.State);
    }

    /// <summary>CPUs that never run the work (an action stays in progress) or always time out.</summary>
    private sealed class StuckCpus(int? completeWith) : ILivepatchCpus
    {
        public void Schedule(Action work, ulong timeoutNs, Action<int> completed, Action? prepare = null)
        {
            if (completeWith is int rc)
                completed(rc);
        }
    }

    [Fact]
    public void An_action_still_running_after_the_wait_exits_2_and_blocks_the_next()
    {
        var xen = OfflineXen.Create(cpus: new StuckCpus(null));
        CliRun.With(xen, "upload", "xen_hello_world", Payloads.Hello);
        Assert.Equal(new CliRun(2, "Applying xen_hello_world... failed\n", "Operation didn't complete.\n"), CliRun.With(xen, "apply", "xen_hello_world"));
        Assert.Equal(new CliRun(2, "", "Cannot execute revert.\nOperation already in progress.\n"), CliRun.With(xen, "revert", "xen_hello_world"));
        Assert.Equal(2, CliRun.With(xen, "get", "xen_hello_world").ExitCode);
    }

    [Fact]
    public void A_rendezvous_timeout_is_EBUSY_and_exits_2()
    {
        var xen = OfflineXen.Create(cpus: new StuckCpus(-(int)XenErrno.EBUSY));
        CliRun.With(xen, "upload", "xen_hello_world", Payloads.Hello);
        Assert.Equal(new CliRun(2, "Applying xen_hello_world... failed\n", "Error 16: Device or resource busy\n"), CliRun.With(xen, "apply", "xen_hello_world"));
    }

    [Fact]
    public void Force_on_xen_4_17_is_refused_by_the_hypervisor_and_we_say_why()
    {
        var xen = OfflineXen.Create();
        var r = CliRun.With(xen, "--force", "upload", "h", Payloads.Hello);
        Assert.Equal((1, $"Uploading {Payloads.Hello}... failed\n"), (r.ExitCode, r.Stdout));
        Assert.StartsWith("Error 22: Invalid argument\nxen-livepatch: note: hypervisors before Xen 4.19 refuse --force", r.Stderr, StringComparison.Ordinal);
    }

    [Fact]
    public void Get_is_ours_and_matches_by_full_name_only()
    {
        var xen = OfflineXen.Create();
        CliRun.With(xen, "load", Payloads.Hello);
        var get = CliRun.With(xen, "get", "xen_hello_world");
        Assert.Equal((0, ""), (get.ExitCode, get.Stderr));
        // The state line, then what debug key 'x' shows of it (like kpatch info).
        Assert.StartsWith("xen_hello_world: APPLIED\n  build-id     ", get.Stdout, StringComparison.Ordinal);
        Assert.Contains("\n  metadata     LIVEPATCH_RULEZ\n", get.Stdout, StringComparison.Ordinal);
        Assert.Equal(new CliRun(1, "", "Failed to get status of nope.\nError 2: No such file or directory\n"), CliRun.With(xen, "get", "nope"));
        Assert.Equal(new CliRun(1, "", "Unrecognised command 'ge' -- try 'xen-livepatch help'\nxen-livepatch: did you mean 'get'? ('xen-livepatch --help' lists every command)\n"), CliRun.With(xen, "ge", "x"));
        Assert.Equal(0, CliRun.With(xen, "get", "--help").ExitCode);
        Assert.Contains("Usage: xen-livepatch", CliRun.With(xen, "get", "--help").Stdout, StringComparison.Ordinal);

        using var doc = JsonDocument.Parse(CliRun.With(xen, "get", "xen_hello_world", "--json").Stdout);
        var j = doc.RootElement;
        Assert.Equal(("xen_hello_world", "APPLIED", 2, 0, false), (j.GetProperty("name").GetString(), j.GetProperty("state").GetString(),
            j.GetProperty("state_value").GetInt32(), j.GetProperty("rc").GetInt32(), j.GetProperty("in_progress").GetBoolean()));
    }

    [Fact]
    public void Json_output_carries_the_list_and_each_step()
    {
        var xen = OfflineXen.Create();
        var load = CliRun.With(xen, "--json", "load", Payloads.Bye);
        Assert.Equal((1, ""), (load.ExitCode, load.Stderr));
        using (var doc = JsonDocument.Parse(load.Stdout))
        {
            var steps = doc.RootElement.GetProperty("steps").EnumerateArray().ToList();
            Assert.Equal(["upload", "apply", "unload"], steps.Select(s => s.GetProperty("op").GetString()));
            Assert.Equal(["completed", "failed", "completed"], steps.Select(s => s.GetProperty("outcome").GetString()));
            Assert.Equal(("EINVAL", 22), (steps[1].GetProperty("error").GetString(), steps[1].GetProperty("errno").GetInt32()));
            Assert.Equal(1, doc.RootElement.GetProperty("exit_code").GetInt32());
        }
        CliRun.With(xen, "load", Payloads.Hello);
        CliRun.With(xen, "upload", "xen_counter", Payloads.WithData);
        var list = CliRun.With(xen, "--json", "list");
        using (var doc = JsonDocument.Parse(list.Stdout))
        {
            var p = doc.RootElement.GetProperty("payloads").EnumerateArray().ToList();
            Assert.Equal(["xen_hello_world", "xen_counter"], p.Select(e => e.GetProperty("name").GetString()));
            Assert.Equal(["APPLIED", "CHECKED"], p.Select(e => e.GetProperty("state").GetString()));
            Assert.Equal(["A=1", "B=2"], p[1].GetProperty("metadata").EnumerateArray().Select(m => m.GetString()));
        }
        var wrong = CliRun.With(xen, "--json", "unload", "xen_hello_world");
        using (var doc = JsonDocument.Parse(wrong.Stdout))
        {
            var step = doc.RootElement.GetProperty("steps")[0];
            Assert.Equal(["xen_hello_world is in the wrong state.", "Current state: APPLIED", "Expected state: CHECKED"],
                step.GetProperty("messages").EnumerateArray().Select(m => m.GetString()));
        }
        Assert.Equal(1, wrong.ExitCode);
    }

    [Fact]
    public void Without_a_hypervisor_we_say_what_to_do_then_xens_line()
    {
        string sock = Path.Combine(Repo.TempDirectory("nosock"), "s.sock");
        var r = CliRun.Ours("--sandbox", sock, "list");
        Assert.Equal(1, r.ExitCode);
        Assert.Equal("", r.Stdout);
        Assert.Equal($"xen-livepatch: no sandbox socket at {sock}\n  start the sandbox hypervisor with 'xen-livepatch sandbox', or point --sandbox PATH (or XEN_LIVEPATCH_SANDBOX) at its socket\nfailed to get the handler\n", r.Stderr);
        var auto = CliRun.Ours("list");
        Assert.EndsWith("failed to get the handler\n", auto.Stderr, StringComparison.Ordinal);
        Assert.Contains("run this in dom0 as root, or start the sandbox hypervisor with 'xen-livepatch sandbox'", auto.Stderr, StringComparison.Ordinal);
        var json = CliRun.Ours("--json", "--sandbox", sock, "list");
        using var doc = JsonDocument.Parse(json.Stdout);
        Assert.StartsWith("no sandbox socket", doc.RootElement.GetProperty("transport_error").GetProperty("problem").GetString(), StringComparison.Ordinal);
    }

    [Fact]
    public void Transport_options_go_before_the_command()
    {
        Assert.Equal(new CliRun(1, "", "xen-livepatch: --xen and --sandbox exclude each other: give one\n"), CliRun.Ours("--xen", "--sandbox", "/x", "list"));
        Assert.Equal(new CliRun(1, "", "xen-livepatch: --sandbox needs the socket's path: --sandbox PATH <command> ...\n"), CliRun.Ours("--sandbox"));
        Assert.Equal(new CliRun(1, "", Usage.Help), CliRun.Ours("--xen"));
        // After the command they are Xen's arguments: a name, a flag.
        var xen = OfflineXen.Create();
        Assert.Equal(new CliRun(1, "", "Failed to get status of --xen.\nError 2: No such file or directory\n"), CliRun.With(xen, "apply", "--xen"));
        // --json is the one option that may also come after the command.
        Assert.Equal(CliRun.With(xen, "--json", "list"), CliRun.With(xen, "list", "--json"));
    }

    [OutsideXenFact]
    public void Xen_chosen_outside_a_xen_domain_says_privcmd_is_absent()
    {
        Assert.StartsWith("/dev/xen/privcmd is absent", CliRun.Ours("--xen", "list").Stderr["xen-livepatch: ".Length..], StringComparison.Ordinal);
    }
}
