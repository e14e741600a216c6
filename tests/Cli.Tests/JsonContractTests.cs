using System.Text.Json;
using System.Text.Json.Nodes;
using Json.Schema;
using XenLivepatch.TestKit;

namespace XenLivepatch.Cli.Tests;

/// <summary>
/// The one <c>--json</c> contract: every command, on success and on failure, prints exactly one object on stdout that
/// schemas/xen-livepatch.schema.json accepts, whose <c>exit_code</c> is the process's and whose <c>command</c> names
/// the command. Every command of <see cref="CommandTable"/> must have a case here.
/// </summary>
public class JsonContractTests
{
    private static readonly Lazy<JsonSchema> s_schema = new(() =>
        JsonSchema.FromText(File.ReadAllText(Repo.Path("schemas", "xen-livepatch.schema.json"))));

    /// <summary>Checks the contract on one run and returns the object.</summary>
    internal static JsonElement Validate(CliRun r)
    {
        JsonElement root;
        try
        {
            using var doc = JsonDocument.Parse(r.Stdout);
            root = doc.RootElement.Clone();
        }
        catch (JsonException e)
        {
            throw new Xunit.Sdk.XunitException($"stdout is not one JSON value ({e.Message}):\n{r.Stdout}\nstderr:\n{r.Stderr}");
        }
        Assert.Equal(JsonValueKind.Object, root.ValueKind);
        var result = s_schema.Value.Evaluate(root, new EvaluationOptions { OutputFormat = OutputFormat.List });
        if (!result.IsValid)
        {
            var errors = (result.Details ?? []).Where(d => d.Errors != null)
                .SelectMany(d => d.Errors!.Select(e => $"{d.InstanceLocation} ({d.EvaluationPath}): {e.Key}: {e.Value}"));
            throw new Xunit.Sdk.XunitException($"the schema refuses it:\n  {string.Join("\n  ", errors)}\n{r.Stdout}");
        }
        Assert.Equal(1, root.GetProperty("schema_version").GetInt32());
        Assert.Equal(r.ExitCode, root.GetProperty("exit_code").GetInt32());
        return root;
    }

    private static readonly Lazy<string> s_temp = new(() => Repo.TempDirectory("json-contract"));

    private static string Temp(string name) => Path.Combine(s_temp.Value, name);

    private static readonly Lazy<(TestImage Image, string Hello, string Bye, string Object)> s_inputs = new(() =>
    {
        var image = LivepatchFixtures.Image();
        string hello = Payloads.Hello;
        string bye = Payloads.Bye;
        string obj = Tool.CompileC("const char *xen_extra_version(void) { return \"Json\"; }", Repo.TempDirectory("json-contract-obj"), "json",
            "gcc", "-O2", "-ffunction-sections", "-fno-asynchronous-unwind-tables");
        return (image, hello, bye, obj);
    });

    /// <summary>(command expected in the JSON, exit code, "error" expected or null for success, the run).</summary>
    private static IEnumerable<(string? Command, int Exit, string? Error, Func<CliRun> Run)> Cases()
    {
        var (image, hello, bye, obj) = s_inputs.Value;
        string keys = Repo.TempDirectory("json-contract-keys");
        var xen = OfflineXen.Create();
        Func<CliRun> With(params string[] args) => () => CliRun.With(xen, args);
        Func<CliRun> Ours(params string[] args) => () => CliRun.Ours(args);

        // The dispatcher's own answers.
        yield return ("lsit", 1, "unknown_command", Ours("--json", "lsit"));
        yield return ("--help", 0, null, Ours("--json", "--help"));
        yield return ("--version", 0, null, Ours("--version", "--json"));
        yield return (null, 1, "usage", Ours("--json", "--xen", "--sandbox", "x", "list"));
        yield return ("help", 0, null, Ours("--json", "help"));
        yield return ("list", 1, "no_hypervisor", Ours("--json", "--sandbox", $"/tmp/xlp-none-{Environment.ProcessId}.sock", "list"));

        // Xen's commands, in order against one hypervisor: --json before or after the command.
        yield return ("list", 0, null, With("list", "--json"));
        yield return ("upload", 1, "ENOENT", With("--json", "upload", "x", Temp("missing.livepatch")));
        yield return ("upload", 0, null, With("--json", "upload", "xen_hello_world", hello));
        yield return ("apply", 1, "usage", With("--json", "apply"));
        yield return ("apply", 0, null, With("--json", "apply", "xen_hello_world"));
        yield return ("unload", 1, "failed", With("--json", "unload", "xen_hello_world"));
        yield return ("list", 0, null, With("--json", "l"));
        yield return ("get", 0, null, With("get", "xen_hello_world", "--json"));
        yield return ("get", 1, "ENOENT", With("--json", "get", "nope"));
        yield return ("get", 1, "usage", With("--json", "get"));
        yield return ("revert", 0, null, With("--json", "revert", "xen_hello_world"));
        yield return ("replace", 0, null, With("--json", "replace", "xen_hello_world"));
        yield return ("load", 1, "EINVAL", With("--json", "load", bye, "--nodeps", "--bogus"));
        yield return ("load", 0, null, With("--json", "load", bye));

        // Ours, offline.
        yield return ("check", 0, null, Ours("--json", "check", hello, "--target", image.Path));
        yield return ("check", 1, "EINVAL", Ours("check", bye, "--target", image.Path, "--json"));
        yield return ("check", 66, "no_input", Ours("check", Temp("missing.livepatch"), "--target", image.Path, "--json"));
        yield return ("check", 64, "usage", Ours("--json", "check"));
        yield return ("info", 0, null, Ours("--json", "info", hello, "--target", image.Path));
        yield return ("info", 65, "data_error", Ours("--json", "info", image.Path));
        yield return ("info", 66, "no_input", Ours("info", Repo.TempDirectory("json-contract-dir"), "--json"));
        yield return ("build", 0, null, Ours("--json", "build", "-o", Temp("built.livepatch"), "--target", image.Path, obj));
        yield return ("build", 73, "cant_create", Ours("--json", "build", "-o", "/nonexistent-dir/x.livepatch", "--target", image.Path, obj));
        yield return ("build", 64, "usage", Ours("build", "--json"));
        yield return ("sign", 64, "usage", Ours("--json", "sign", hello));
        yield return ("sign", 66, "no_input", Ours("--json", "sign", hello, "--key", Path.Combine(keys, "missing.pem"), "-o", Temp("signed.livepatch")));
        yield return ("sandbox", 66, "no_input", Ours("--json", "sandbox", "--image", Repo.Path("README.md"), "--socket", $"/tmp/xlp-none-{Environment.ProcessId}.sock"));
        // A socket path no Unix socket address can hold: said, not thrown.
        yield return ("list", 1, "no_hypervisor", Ours("--json", "--sandbox", "/tmp/" + new string('s', 120), "list"));
        yield return ("demo", 66, "no_input", Ours("--json", "demo", "--image", Repo.Path("README.md")));
        yield return ("demo", 0, null, Ours("--json", "demo", "--help"));
        yield return ("diff", 64, "usage", Ours("--json", "diff", obj));
        yield return ("diff", 66, "no_input", Ours("diff", Temp("missing.o"), obj, "-o", Temp("d.o"), "--json"));
        yield return ("build-source", 64, "usage", Ours("--json", "build-source", "--bogus"));
        yield return ("completion", 0, null, Ours("--json", "completion", "bash"));
        yield return ("completion", 64, "usage", Ours("--json", "completion", "tcsh"));
        yield return ("man", 0, null, Ours("man", "--json"));
    }

    /// <summary>The commands whose cases need a sandbox over its socket (<see cref="OperatorJsonContractTests"/>).</summary>
    internal static readonly string[] SandboxCommands = ["buildid", "dump", "install", "uninstall", "apply-installed", "converge"];

    [Fact]
    public void Every_command_prints_one_object_the_schema_accepts_on_success_and_failure()
    {
        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (var (command, exit, error, run) in Cases())
        {
            var r = run();
            var j = Validate(r);
            string label = $"{command} (exit {r.ExitCode}): {r.Stdout}";
            Assert.True(exit == r.ExitCode, label);
            Assert.True(command == j.GetProperty("command").GetString(), label);
            if (error == null)
            {
                Assert.True(r.ExitCode == 0, label);
            }
            else
            {
                Assert.True(error == j.GetProperty("error").GetString(), label);
                Assert.False(string.IsNullOrWhiteSpace(j.GetProperty("message").GetString()), label);
                if (error.StartsWith('E'))
                    Assert.True(j.GetProperty("errno").GetInt32() > 0, label);
            }
            if (command != null)
                seen.Add(command);
        }
        // A command added to the table needs its cases here.
        var missing = CommandTable.All.Select(c => c.Name).Where(n => !seen.Contains(n) && !SandboxCommands.Contains(n)).ToList();
        Assert.True(missing.Count == 0, "no JSON case for: " + string.Join(", ", missing));
    }

    [Fact]
    public void Json_before_or_after_the_command_is_the_same_object()
    {
        var (image, hello, _, _) = s_inputs.Value;
        Assert.Equal(CliRun.Ours("--json", "check", hello, "--target", image.Path), CliRun.Ours("check", hello, "--target", image.Path, "--json"));
        Assert.Equal(CliRun.Ours("--json", "nope"), CliRun.Ours("nope", "--json"));
    }

    [Fact]
    public void Apostrophes_and_non_ascii_are_written_as_they_are()
    {
        var r = CliRun.Ours("--json", "frobnicate");
        Assert.Contains("'frobnicate'", r.Stdout, StringComparison.Ordinal);
        Assert.DoesNotContain("\\u0027", r.Stdout, StringComparison.Ordinal);
        var missing = CliRun.Ours("--json", "info", Temp("caf\u00e9.livepatch"));
        Assert.Contains("caf\u00e9.livepatch", missing.Stdout, StringComparison.Ordinal);
    }

    [Fact]
    public void Diagnostics_stay_on_stderr_and_the_failure_is_in_the_object()
    {
        var r = CliRun.Ours("--json", "info", Temp("missing.livepatch"));
        var j = Validate(r);
        Assert.Equal($"xen-livepatch info: cannot read {Temp("missing.livepatch")}: no such file: check the path", j.GetProperty("message").GetString());
        Assert.Equal(j.GetProperty("message").GetString() + "\n", r.Stderr);
    }

    [Fact]
    public void The_schema_refuses_a_failure_without_a_message()
    {
        // The validator is not a formality: the contract's rules fail objects that break them.
        var ok = JsonNode.Parse("""{"schema_version": 1, "command": "info", "exit_code": 66, "error": "no_input", "message": "cannot read x"}""")!;
        Assert.True(s_schema.Value.Evaluate(JsonDocument.Parse(ok.ToJsonString()).RootElement).IsValid);
        foreach (string bad in new[]
        {
            """{"schema_version": 1, "command": "info", "exit_code": 66, "error": "no_input"}""",
            """{"schema_version": 1, "command": "info", "exit_code": 66, "error": "ENOENT ", "message": "x"}""",
            """{"schema_version": 2, "command": "info", "exit_code": 0}""",
            """{"schema_version": 1, "command": "check", "exit_code": 0, "verdict": "rejected"}""",
            """{"schema_version": 1, "exit_code": 0}""",
        })
        {
            Assert.False(s_schema.Value.Evaluate(JsonDocument.Parse(bad).RootElement).IsValid, bad);
        }
    }
}

/// <summary>The JSON contract for the operator's commands, against the sandbox over its socket.</summary>
[Collection("sandbox")]
public sealed class OperatorJsonContractTests(SocketSandbox sandbox) : IClassFixture<SocketSandbox>
{
    [Fact]
    public void The_operators_commands_print_one_object_the_schema_accepts()
    {
        sandbox.Reset();
        string store = Repo.TempDirectory("json-contract-store");
        string set = Repo.TempDirectory("json-contract-set");
        File.Copy(SandboxBuild.PayloadPath("xen_hello_world"), Path.Combine(set, "xen_hello_world.livepatch"));
        string cmdline = Path.Combine(Repo.TempDirectory("json-contract-cmdline"), "cmdline");
        File.WriteAllText(cmdline, "ro quiet\n");
        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (var (command, exit, args) in new (string, int, string[])[]
        {
            ("buildid", 0, ["--json", "buildid"]),
            ("dump", 0, ["dump", "--json"]),
            ("install", 0, ["--json", "install", "--store", store, SandboxBuild.PayloadPath("xen_hello_world")]),
            ("install", 66, ["--json", "install", "--store", store, "/nonexistent/x.livepatch"]),
            ("list", 0, ["--json", "list", "--installed", "--store", store]),
            ("apply-installed", 0, ["--json", "apply-installed", "--store", store, "--timeout", SocketSandbox.TimeoutMs, "--cmdline", cmdline]),
            ("uninstall", 0, ["uninstall", "--store", store, "xen_hello_world", "--json"]),
            ("uninstall", 64, ["--json", "uninstall", "--store", store]),
            ("converge", 0, ["--json", "converge", set, "--timeout", SocketSandbox.TimeoutMs]),
            ("converge", 66, ["--json", "converge", "/nonexistent-set"]),
        })
        {
            var r = sandbox.Run(args);
            var j = JsonContractTests.Validate(r);
            Assert.True(exit == r.ExitCode, $"{string.Join(' ', args)}: {r}");
            Assert.Equal(command, j.GetProperty("command").GetString());
            seen.Add(command);
        }
        Assert.Equal(JsonContractTests.SandboxCommands.Order(StringComparer.Ordinal), seen.Where(c => c != "list").Order(StringComparer.Ordinal));
    }
}
