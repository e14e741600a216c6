using System.Globalization;
using System.Text;
using System.Text.Json;
using XenLivepatch.Tooling;

namespace XenLivepatch.Cli;

/// <summary>
/// <c>xen-livepatch build-source</c>: a source patch and the running hypervisor's tree in, a payload out
/// (<see cref="SourceBuild"/>: livepatch-build's job, with <c>diff</c> and <c>build</c>).
/// </summary>
internal static class BuildSourceCommand
{
    public const string Help = """
        Usage: xen-livepatch build-source --src <tree> --patch <file> [--patch <file>...] -o <out.livepatch> [options]
        Makes a live patch from source patches, as Xen vendors do for a security advisory: builds the tree the
        running hypervisor was built from (or takes that build, --base-build), applies the patches to a copy,
        rebuilds what they change with the same configuration and build stamps, compares every object that
        changed with its original ('xen-livepatch diff'), and links the changed and new functions into a payload
        for the original xen-syms ('xen-livepatch build'). The tree is only read. Progress goes to stderr.
          --src <tree>              the source tree: Xen's (the folder holding xen/, with xen/.config) or the
                                    sandbox hypervisor's (src/Sandbox/image)
          --patch <file>            a unified diff (-p1 paths, as git writes them); several apply in order
          -o, --output <file>       the payload to write
          --name <name>             its name (default: the first patch's file name, as livepatch-build names it)
          --base-build <dir>        the tree as built for the running hypervisor (its xen-syms and objects);
                                    without it the tree is built first, with fixed build stamps
          --depends-on <payload>    stack on that payload (its build-id; the patches must be on top of its own)
          --depends <hex>           depend on this build-id instead of the hypervisor's
          --replace                 a payload for 'xen-livepatch replace': it depends on the hypervisor itself
          --metadata <key>=<value>  a .modinfo string, shown by 'xen-livepatch list' (may be repeated)
          -j, --jobs <n>            parallel make jobs (default: the number of CPUs)
          --offline                 do not ask the running hypervisor (by default, when one answers through
                                    privcmd or the sandbox socket, the base build must be the one it runs:
                                    its build-id is compared and a mismatch refused, exit 82)
          --keep <dir>              keep the trees, build logs and compared objects there (a new or empty folder)
          --json                    print one JSON object on stdout: per object, the changed, new and refused
                                    symbols with the reason
        """ + PayloadSigning.Help + """
        Exit status: 0 when written; 64 for a wrong command line; 65 when a change cannot be live-patched (the
        message names object, section and symbol) or the payload cannot be made; 66 when an input cannot be read;
        73 when the output cannot be written; 80 when a patch does not apply (the hunk is named); 81 when the
        tree does not build; 82 when objects cannot be compared (other compiler or flags, a base build of other
        sources); 83 when there is nothing to patch (an empty patch, or no function's code changes).

        """;

    private static readonly Dictionary<string, string> s_aliases = new(StringComparer.Ordinal) { ["-o"] = "--output", ["-j"] = "--jobs" };

    public static int Run(string[] args, TextWriter stdout, TextWriter stderr, ToolOptions? options = null, ToolHost? host = null)
    {
        if (args.Contains("--help") || args.Contains("-h"))
        {
            stdout.Write(Help);
            return 0;
        }
        // make's spelling: -j4 as well as -j 4.
        args = [.. args.Select(x => x.StartsWith("-j", StringComparison.Ordinal) && x.Length > 2 && char.IsAsciiDigit(x[2]) ? "--jobs=" + x[2..] : x)];
        var a = ArgReader.Parse(args, ["--src", "--patch", "--output", "--name", "--base-build", "--depends-on", "--depends", "--metadata", "--jobs", "--keep", .. PayloadSigning.Options],
            ["--replace", "--json", "--offline"], [], out string? argError, s_aliases);
        if (a == null)
            return Usage(stderr, argError!);
        if (a.Positional.Count > 0)
            return Usage(stderr, $"unexpected argument '{a.Positional[0]}'");
        string? tree = a.Value("--src");
        string? output = a.Value("--output");
        if (tree == null)
            return Usage(stderr, "which tree? give --src <tree>");
        if (a.Values("--patch").Count == 0)
            return Usage(stderr, "which change? give --patch <file>");
        if (output == null)
            return Usage(stderr, "where to? give -o <out.livepatch>");
        int given = (a.Value("--depends-on") != null ? 1 : 0) + (a.Value("--depends") != null ? 1 : 0) + (a.Flag("--replace") ? 1 : 0);
        if (given > 1)
            return Usage(stderr, "--depends-on, --depends and --replace each say what the payload depends on: give one");
        int jobs = Environment.ProcessorCount;
        if (a.Value("--jobs") is { } j && (!int.TryParse(j, NumberStyles.None, CultureInfo.InvariantCulture, out jobs) || jobs < 1 || jobs > 1024))
            return Usage(stderr, $"-j '{j}': give a number of jobs from 1 to 1024");
        string? name = a.Value("--name");
        if (name != null && (name.Length == 0 || name.Length >= Abi.Livepatch.NameSize))
            return Usage(stderr, $"the name '{name}' must have 1 to {Abi.Livepatch.NameSize - 1} characters (Xen's limit)");
        foreach (string m in a.Values("--metadata"))
        {
            if (m.Length == 0 || m.Contains('\0', StringComparison.Ordinal))
                return Usage(stderr, "a --metadata string is empty or holds a NUL; give key=value");
        }
        ReadOnlyMemory<byte>? depends = null;
        if (a.Value("--depends") is { } hex)
        {
            if (!CommandInput.TryHex(hex, out byte[] id) || id.Length == 0)
                return Usage(stderr, $"--depends '{hex}' is not a hexadecimal build-id");
            depends = id;
        }
        Hypervisor.StackedPayload? dependsOn = null;
        if (a.Value("--depends-on") is { } under)
        {
            if (!CommandInput.TryRead("build-source", under, stderr, out byte[] data))
                return OwnExitCodes.NoInput;
            dependsOn = new Hypervisor.StackedPayload(CheckCommand.NameOf(under), data);
        }
        foreach (string p in a.Values("--patch"))
        {
            if (!File.Exists(p))
            {
                stderr.Write($"xen-livepatch build-source: cannot read {p}: no such file\n");
                return OwnExitCodes.NoInput;
            }
        }
        if (!PayloadSigning.TryCreate("build-source", a, stderr, out var signing, out int code))
            return code;
        using var signingKey = signing;
        (byte[]? runningId, string? runningWhere) = (null, null);
        if (!a.Flag("--offline"))
        {
            (runningId, runningWhere, string? why) = RunningBuildId(options, host ?? ToolHost.Default);
            stderr.Write(runningId != null
                ? $"xen-livepatch build-source: target: {runningWhere}, build-id {Convert.ToHexStringLower(runningId)}\n"
                : $"xen-livepatch build-source: note: {why}; building for the base build's xen-syms\n");
        }
        var request = new SourceBuildRequest
        {
            RunningBuildId = runningId is null ? (ReadOnlyMemory<byte>?)null : runningId,
            RunningDescription = runningWhere,
            Tree = tree,
            Patches = a.Values("--patch"),
            Output = output,
            Name = name,
            BaseBuild = a.Value("--base-build"),
            Depends = depends,
            DependsOn = dependsOn,
            Replace = a.Flag("--replace"),
            Metadata = a.Values("--metadata"),
            Jobs = jobs,
            Keep = a.Value("--keep"),
            Seal = signing == null ? null : (byte[] payload, out byte[] written, out string? problem) =>
            {
                written = signing.SignOrNull(payload, out problem) ?? [];
                return problem == null;
            },
        };
        var result = SourceBuild.Run(request, stderr);
        int exit = ExitCode(result.Outcome);
        if ((a.Flag("--json") || options?.Json == true))
            stdout.Write(Json(request, result, exit));
        if (exit != 0)
        {
            stderr.Write($"xen-livepatch build-source: {result.Problem}\n");
            return exit;
        }
        if (!(a.Flag("--json") || options?.Json == true))
        {
            stdout.Write(Summary(request, result));
            if (signing != null)
                stdout.Write($"  {signing.Describe(result.Written!)}\n");
        }
        return 0;
    }

    // The build-id of the hypervisor the options reach (privcmd, else the sandbox socket), or why there is none.
    private static (byte[]? Id, string? Where, string? Problem) RunningBuildId(ToolOptions? options, ToolHost host)
    {
        return Ask().GetAwaiter().GetResult();

        async Task<(byte[]?, string?, string?)> Ask()
        {
            var opened = await host.OpenTransport(options?.Transport ?? Control.TransportChoice.Auto, options?.SandboxPath, CancellationToken.None).ConfigureAwait(false);
            if (opened.Transport == null)
                return (null, null, $"no running hypervisor to compare with ({opened.Problem})");
            await using var client = new Control.LivepatchClient(opened.Transport);
            var id = await client.GetBuildIdAsync().ConfigureAwait(false);
            string where = client.Transport.Description;
            return id.Result.Succeeded && id.BuildId.Length > 0
                ? (id.BuildId, where, null)
                : (null, null, $"{where} did not give its build-id ({Control.XenErrors.Name(id.Result.Errno)})");
        }
    }

    private static int Usage(TextWriter stderr, string problem) => CommandInput.Usage("build-source", stderr, problem);

    public static int ExitCode(SourceBuildOutcome o) => o switch
    {
        SourceBuildOutcome.Built => 0,
        SourceBuildOutcome.PatchDoesNotApply => OwnExitCodes.PatchDoesNotApply,
        SourceBuildOutcome.TreeDoesNotBuild => OwnExitCodes.TreeDoesNotBuild,
        SourceBuildOutcome.Mismatched => OwnExitCodes.Mismatched,
        SourceBuildOutcome.NothingToPatch => OwnExitCodes.NothingToPatch,
        SourceBuildOutcome.Refused => OwnExitCodes.DataError,
        SourceBuildOutcome.CannotWrite => OwnExitCodes.CantCreate,
        _ => OwnExitCodes.NoInput,
    };

    private static string Summary(SourceBuildRequest request, SourceBuildResult r)
    {
        var p = r.Payload!;
        var c = CultureInfo.InvariantCulture;
        var sb = new StringBuilder();
        sb.Append(c, $"{request.Output}: {r.Name}, {r.Written!.Length} bytes, build-id {Convert.ToHexStringLower(p.BuildId)}, for {r.BaseImage}\n");
        foreach (var o in r.Objects.Where(o => o.Diff != null))
        {
            foreach (var s in o.Diff!.Changed)
                sb.Append(c, $"  {o.Path}: {s.HypervisorName} changed: {s.Reason}\n");
            foreach (var s in o.Diff.New.Where(s => s.Reason == "new"))
                sb.Append(c, $"  {o.Path}: {s.HypervisorName} new\n");
            foreach (var s in o.Diff.NewData)
                sb.Append(c, $"  {o.Path}: new data {(s.HypervisorName.Length > 0 ? s.HypervisorName : s.Name)}\n");
        }
        sb.Append(c, $"  depends on {p.Depends.Of} ({Convert.ToHexStringLower(p.Depends.BuildId.Span)}){(request.Replace ? "; load it with 'xen-livepatch replace'" : "")}\n");
        foreach (string note in p.Notes)
            sb.Append(c, $"  note: {note}\n");
        return sb.ToString();
    }

    private static string Outcome(SourceBuildOutcome o) => o switch
    {
        SourceBuildOutcome.Built => "built",
        SourceBuildOutcome.PatchDoesNotApply => "patch_does_not_apply",
        SourceBuildOutcome.TreeDoesNotBuild => "tree_does_not_build",
        SourceBuildOutcome.Mismatched => "mismatched",
        SourceBuildOutcome.NothingToPatch => "nothing_to_patch",
        SourceBuildOutcome.Refused => "refused",
        SourceBuildOutcome.CannotWrite => "cannot_write",
        _ => "bad_input",
    };

    private static string Json(SourceBuildRequest request, SourceBuildResult r, int exit)
    {
        using var ms = new MemoryStream();
        using (var w = new Utf8JsonWriter(ms, new JsonWriterOptions { Indented = true }))
        {
            w.WriteStartObject();
            w.WriteString("command", "build-source");
            w.WriteNumber("exit_code", exit);
            w.WriteString("name", r.Name);
            w.WriteString("outcome", Outcome(r.Outcome));
            if (r.Outcome == SourceBuildOutcome.Built) w.WriteString("output", request.Output); else w.WriteNull("output");
            w.WriteString("tree", request.Tree);
            JsonReport.StringOrNull(w, "base_build", request.BaseBuild);
            JsonReport.Strings(w, "patches", request.Patches);
            JsonReport.Problem(w, r.Problem);
            if (r.PatchFailure is { } f)
            {
                w.WriteStartObject("patch_failure");
                w.WriteString("patch", f.Patch);
                w.WriteString("file", f.File);
                w.WriteNumber("hunk", f.Hunk);
                JsonReport.StringOrNull(w, "header", f.Header);
                w.WriteString("reason", f.Reason);
                w.WriteEndObject();
            }
            else
            {
                w.WriteNull("patch_failure");
            }
            w.WriteStartArray("objects");
            foreach (var o in r.Objects)
            {
                w.WriteStartObject();
                w.WriteString("path", o.Path);
                if (o.Diff != null)
                    DiffCommand.WriteResult(w, o.Diff);
                w.WriteEndObject();
            }
            w.WriteEndArray();
            if (r.Payload is { } p)
            {
                w.WriteStartObject("payload");
                w.WriteNumber("size", r.Written!.Length);
                w.WriteBoolean("signed", request.Seal != null);
                w.WriteString("build_id", Convert.ToHexStringLower(p.BuildId));
                w.WriteString("hypervisor", r.BaseImage);
                w.WriteString("depends", Convert.ToHexStringLower(p.Depends.BuildId.Span));
                w.WriteString("depends_on", p.Depends.Of);
                w.WriteStartArray("functions");
                foreach (var fn in p.Functions)
                {
                    w.WriteStartObject();
                    w.WriteString("name", fn.Name);
                    w.WriteNumber("old_size", fn.OldSize);
                    JsonReport.StringOrNull(w, "new_symbol", fn.NewSymbol);
                    w.WriteNumber("new_size", fn.NewSize);
                    w.WriteEndObject();
                }
                w.WriteEndArray();
                JsonReport.Strings(w, "notes", p.Notes);
                w.WriteEndObject();
            }
            else
            {
                w.WriteNull("payload");
            }
            w.WriteStartObject("seconds");
            foreach (var (step, seconds) in r.Timings)
                w.WriteNumber(step.Replace(' ', '_'), Math.Round(seconds, 3));
            w.WriteEndObject();
            w.WriteEndObject();
        }
        return Encoding.UTF8.GetString(ms.ToArray()) + "\n";
    }
}
