using System.Globalization;
using System.Text;
using System.Text.Json;
using XenLivepatch.Tooling.Diffing;
using XenLivepatch.Tooling.Sources;

namespace XenLivepatch.Cli;

/// <summary>
/// <c>xen-livepatch diff</c>: the create-diff-object step (<see cref="ObjectDiff"/>): an object of the running
/// hypervisor's build and the same object rebuilt from patched source in, an object holding what changed out.
/// </summary>
internal static class DiffCommand
{
    public const string Help = """
        Usage: xen-livepatch diff <original.o> <patched.o> -o <out.o> [--patch <file>]... [--json]
        Compares an object of the running hypervisor's build with the same object rebuilt from patched source
        (both compiled with -ffunction-sections -fdata-sections, as Xen builds with CONFIG_CC_SPLIT_SECTIONS)
        and writes an object holding the functions whose code changed and the new ones, with what they need:
        new data, the string literals they use, their bug frames, exception-table entries and alternatives.
        Everything unchanged is referred to by name in the running hypervisor (file#name for a static symbol),
        so variables keep their storage. Changed functions keep the hypervisor's name, so 'xen-livepatch build'
        pairs each with the function it replaces. A change that only moves line numbers is no change.
        Refused, naming object, section and symbol: changed initial data of existing variables, new or changed
        per-CPU data, changed __init code or data, changed assembly entry code, sections the tool does not know.
          -o, --output <file>    the object to write (only when something changed and nothing is refused)
          --patch <file>         the source patch that made the difference: a function whose only change is a
                                 __LINE__ argument that the patch's line moves explain is then no change
          --json                 print one JSON object instead of text
        Exit status: 0 when written; 64 for a wrong command line; 65 when a change is refused (the message
        names it); 66 when an input cannot be read; 73 when the output cannot be written; 82 when the objects
        were built differently (compiler, flags) or are not comparable; 83 when nothing changed ("nothing to patch").

        """;

    private static readonly Dictionary<string, string> s_aliases = new(StringComparer.Ordinal) { ["-o"] = "--output" };

    public static int Run(string[] args, TextWriter stdout, TextWriter stderr, ToolOptions? options = null)
    {
        if (args.Contains("--help") || args.Contains("-h"))
        {
            stdout.Write(Help);
            return 0;
        }
        var a = ArgReader.Parse(args, ["--output", "--patch"], ["--json"], [], out string? argError, s_aliases);
        if (a == null)
            return CommandInput.Usage("diff", stderr, argError!);
        if (a.Positional.Count != 2)
            return CommandInput.Usage("diff", stderr, $"give the original object and the patched one (got {a.Positional.Count} file{(a.Positional.Count == 1 ? "" : "s")})");
        string? output = a.Value("--output");
        if (output == null)
            return CommandInput.Usage("diff", stderr, "where to? give -o <out.o>");
        if (!CommandInput.TryReadElf("diff", a.Positional[0], stderr, out var original) ||
            !CommandInput.TryReadElf("diff", a.Positional[1], stderr, out var patched))
        {
            return OwnExitCodes.NoInput;
        }
        var patches = new List<SourcePatch>();
        foreach (string path in a.Values("--patch"))
        {
            if (!SourcePatch.TryRead(path, out var sp, out string? why))
            {
                stderr.Write($"xen-livepatch diff: {why}\n");
                return OwnExitCodes.NoInput;
            }
            patches.Add(sp);
        }
        var result = ObjectDiff.Run(new DiffInput(Path.GetFileName(a.Positional[0]), original), new DiffInput(Path.GetFileName(a.Positional[1]), patched), patches);
        int exit = ExitCode(result);
        if (exit == 0 && !CommandInput.TryWrite("diff", output, result.Output!, stderr))
            return OwnExitCodes.CantCreate;
        if ((a.Flag("--json") || options?.Json == true))
        {
            stdout.Write(Json(result, exit, exit == 0 ? output : null));
            return exit;
        }
        if (exit == 0)
            stdout.Write(Text(result, output));
        else
            stderr.Write(Failure("diff", result));
        return exit;
    }

    /// <summary>The exit code of a diff's outcome.</summary>
    public static int ExitCode(DiffResult r) => r.Outcome switch
    {
        DiffOutcome.Changed => 0,
        DiffOutcome.NothingToPatch => OwnExitCodes.NothingToPatch,
        DiffOutcome.Refused => OwnExitCodes.DataError,
        _ => OwnExitCodes.Mismatched,
    };

    /// <summary>The text for a diff that wrote an object.</summary>
    public static string Text(DiffResult r, string? output)
    {
        var sb = new StringBuilder();
        var c = CultureInfo.InvariantCulture;
        if (output != null)
            sb.Append(c, $"{output}: from {r.Object}{(r.SourceFile != null ? $" ({r.SourceFile})" : "")}\n");
        else
            sb.Append(c, $"{r.Object}{(r.SourceFile != null ? $" ({r.SourceFile})" : "")}:\n");
        foreach (var s in r.Changed)
            sb.Append(c, $"  changed function {s.HypervisorName}: {s.Reason}\n");
        foreach (var s in r.New)
        {
            if (s.Reason == "new")
                sb.Append(c, $"  new function {s.HypervisorName}\n");
            else
                sb.Append(c, $"  carries {s.Name}: {s.Reason}\n");
        }
        foreach (var s in r.NewData)
            sb.Append(c, $"  new data {(s.HypervisorName.Length > 0 ? s.HypervisorName : s.Name)}{(s.Reason == "new" ? "" : $": {s.Reason}")}\n");
        if (r.References.Count > 0)
            sb.Append(c, $"  refers to {r.References.Count} hypervisor symbol{(r.References.Count == 1 ? "" : "s")} by name\n");
        foreach (string n in r.Notes)
            sb.Append(c, $"  note: {n}\n");
        return sb.ToString();
    }

    /// <summary>The message for a diff that wrote nothing (on stderr), naming what is refused or why not.</summary>
    public static string Failure(string command, DiffResult r)
    {
        var sb = new StringBuilder();
        var c = CultureInfo.InvariantCulture;
        switch (r.Outcome)
        {
            case DiffOutcome.NothingToPatch:
                sb.Append(c, $"xen-livepatch {command}: {r.Object}: nothing to patch: no function's code changed\n");
                foreach (string n in r.Notes)
                    sb.Append(c, $"  note: {n}\n");
                break;
            case DiffOutcome.Mismatched:
                sb.Append(c, $"xen-livepatch {command}: {r.Problem}\n");
                break;
            default:
                sb.Append(c, $"xen-livepatch {command}: {r.Object}: this change cannot be live-patched:\n");
                foreach (var x in r.Refusals)
                    sb.Append(c, $"  {x}\n");
                sb.Append("  a live patch replaces functions; rework the patch so that running code and existing data stay as they are (or reboot into the fixed build)\n");
                break;
        }
        return sb.ToString();
    }

    private static string Json(DiffResult r, int exit, string? output)
    {
        using var ms = new MemoryStream();
        using (var w = new Utf8JsonWriter(ms, new JsonWriterOptions { Indented = true }))
        {
            w.WriteStartObject();
            w.WriteString("command", "diff");
            w.WriteNumber("exit_code", exit);
            JsonReport.StringOrNull(w, "output", output);
            WriteResult(w, r);
            w.WriteEndObject();
        }
        return Encoding.UTF8.GetString(ms.ToArray()) + "\n";
    }

    /// <summary>Writes a diff's fields (object, outcome, changed/new/refused symbols with reasons) into the open JSON object.</summary>
    public static void WriteResult(Utf8JsonWriter w, DiffResult r)
    {
        w.WriteString("object", r.Object);
        JsonReport.StringOrNull(w, "source_file", r.SourceFile);
        w.WriteString("outcome", r.Outcome switch
        {
            DiffOutcome.Changed => "changed",
            DiffOutcome.NothingToPatch => "nothing_to_patch",
            DiffOutcome.Refused => "refused",
            _ => "mismatched",
        });
        Symbols(w, "changed", r.Changed);
        Symbols(w, "new", r.New);
        Symbols(w, "new_data", r.NewData);
        w.WriteStartArray("refused");
        foreach (var x in r.Refusals)
        {
            w.WriteStartObject();
            w.WriteString("section", x.Section);
            JsonReport.StringOrNull(w, "symbol", x.Symbol);
            w.WriteString("reason", x.Reason);
            w.WriteEndObject();
        }
        w.WriteEndArray();
        JsonReport.Strings(w, "references", r.References);
        JsonReport.Strings(w, "notes", r.Notes);
        JsonReport.Problem(w, r.Problem);
    }

    private static void Symbols(Utf8JsonWriter w, string name, IReadOnlyList<DiffSymbol> list)
    {
        w.WriteStartArray(name);
        foreach (var s in list)
        {
            w.WriteStartObject();
            w.WriteString("name", s.Name);
            w.WriteString("hypervisor_name", s.HypervisorName);
            w.WriteString("section", s.Section);
            w.WriteString("reason", s.Reason);
            w.WriteEndObject();
        }
        w.WriteEndArray();
    }
}
