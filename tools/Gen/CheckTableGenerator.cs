using System.Text;
using System.Text.RegularExpressions;

namespace XenLivepatch.Tools.Gen;

/// <summary>
/// Reads a check table (<c>kind checks</c>, tools/Gen/Tables/livepatch-checks.tbl) and renders the
/// <c>LivepatchCheck</c> enum, its per-check facts and one factory per check. A record is:
/// <code>
/// check 603 FuncsSize EINVAL
///   rule     Xen refuses a payload whose .livepatch.funcs is not a multiple of the entry size.
///   message  wrong size {size} of .livepatch.funcs (must be a multiple of {entry})
///   args     ulong size, int entry
///   xen      prepare_payload
///   code     PayloadFunctions.Prepare
///   outcome  returned
/// </code>
/// Every hole of the message must be an argument and every argument a hole; an errno of <c>varies</c>
/// gives the factory an errno argument (which the message may show as <c>{errno}</c>).
/// </summary>
public static partial class CheckTableGenerator
{
    public sealed record Check(int Id, string Name, string? Errno, string Stage, string Rule, string Message,
        List<(string Type, string Name)> Args, string Xen, string Code, string Outcome, int Line);

    public sealed record Table(string Output, string Namespace, string NamesClass, List<Check> Checks);

    private static readonly string[] s_keys = ["rule", "message", "args", "xen", "code", "outcome"];
    private static readonly string[] s_outcomes = ["returned", "rc", "both"];

    [GeneratedRegex(@"\{([A-Za-z_][A-Za-z0-9_]*)(:[^}]*)?\}")]
    private static partial Regex Hole();

    public static bool IsCheckTable(IReadOnlyList<string> lines) => lines.Any(l => l.Trim() == "kind checks");

    public static Table Parse(IReadOnlyList<string> lines, string source)
    {
        string? output = null, ns = null, names = null, stage = null;
        var checks = new List<Check>();
        int at = -1;
        string? header = null;
        var fields = new Dictionary<string, string>(StringComparer.Ordinal);

        void Flush()
        {
            if (header == null)
                return;
            var h = header.Split(' ', StringSplitOptions.RemoveEmptyEntries);
            if (h.Length != 4 || !int.TryParse(h[1], out int id))
                throw Error(source, at, "expected: check <id> <Name> <ERRNO | varies>");
            foreach (string key in new[] { "rule", "message", "args", "xen", "code" })
            {
                if (!fields.ContainsKey(key))
                    throw Error(source, at, $"check {h[2]} has no '{key}'");
            }
            string outcome = fields.GetValueOrDefault("outcome", "returned");
            if (!s_outcomes.Contains(outcome))
                throw Error(source, at, $"outcome '{outcome}': use returned, rc or both");
            var args = new List<(string, string)>();
            foreach (string a in fields["args"].Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
            {
                var parts = a.Split(' ', StringSplitOptions.RemoveEmptyEntries);
                if (parts.Length != 2)
                    throw Error(source, at, $"argument '{a}': give a type and a name");
                if (parts[1] is "payload" or "errno")
                    throw Error(source, at, $"argument '{parts[1]}': the factory has it already");
                args.Add((parts[0], parts[1]));
            }
            string? errno = h[3] == "varies" ? null : h[3];
            string message = fields["message"];
            var holes = Hole().Matches(message).Select(m => m.Groups[1].Value).ToHashSet(StringComparer.Ordinal);
            var known = args.Select(x => x.Item2).ToHashSet(StringComparer.Ordinal);
            if (errno == null)
                known.Add("errno");
            foreach (string hole in holes)
            {
                if (!known.Contains(hole))
                    throw Error(source, at, $"check {h[2]}: the message's {{{hole}}} is not an argument");
            }
            foreach (var (_, name) in args)
            {
                if (!holes.Contains(name))
                    throw Error(source, at, $"check {h[2]}: argument {name} is not in the message");
            }
            if (Hole().Replace(message, "").IndexOfAny(['{', '}']) >= 0)
                throw Error(source, at, $"check {h[2]}: a brace outside a {{hole}}");
            checks.Add(new Check(id, h[2], errno, stage ?? throw Error(source, at, "a check before any stage"), fields["rule"], message, args,
                fields["xen"], fields["code"], outcome, at));
            header = null;
            fields.Clear();
        }

        for (int i = 0; i < lines.Count; i++)
        {
            string raw = lines[i];
            string line = raw.Trim();
            if (line.Length == 0 || line[0] == '#')
                continue;
            if (char.IsWhiteSpace(raw[0]))
            {
                if (header == null)
                    throw Error(source, i + 1, "an indented line outside a check");
                int space = line.IndexOf(' ', StringComparison.Ordinal);
                string key = space < 0 ? line : line[..space];
                string value = space < 0 ? "" : line[(space + 1)..].Trim();
                if (!s_keys.Contains(key))
                    throw Error(source, i + 1, $"unknown key '{key}' (expected {string.Join(", ", s_keys)})");
                if (!fields.TryAdd(key, value))
                    throw Error(source, i + 1, $"'{key}' twice");
                continue;
            }
            Flush();
            string word = line.Split(' ')[0];
            string rest = line[word.Length..].Trim();
            switch (word)
            {
                case "output": output = rest; break;
                case "namespace": ns = rest; break;
                case "names": names = rest; break;
                case "kind": break;
                case "stage": stage = rest; break;
                case "check": header = line; at = i + 1; break;
                default: throw Error(source, i + 1, $"unexpected '{word}'");
            }
        }
        Flush();
        if (output == null || ns == null || names == null)
            throw Error(source, 1, "output, namespace and names are required");
        var twice = checks.GroupBy(c => c.Id).Where(g => g.Count() > 1)
            .Select(g => g.Last()).Concat(checks.GroupBy(c => c.Name).Where(g => g.Count() > 1).Select(g => g.Last())).FirstOrDefault();
        if (twice != null)
            throw Error(source, twice.Line, $"check {twice.Name} ({twice.Id}) repeats an id or a name");
        return new Table(output, ns, names, checks);
    }

    private static FormatException Error(string source, int line, string message) => new($"{source}:{line}: {message}");

    public static string Render(Table table, string source)
    {
        var sb = new StringBuilder();
        sb.Append(TableGenerator.Banner(source));
        sb.Append("#nullable enable\n\nusing XenLivepatch.Abi;\n\n");
        sb.Append($"namespace {table.Namespace};\n\n");

        sb.Append("/// <summary>\n/// Every check of the livepatch core, by its stable id (").Append(Xml(source))
          .Append("): what a refusal carries in <see cref=\"LivepatchError.Check\"/>.\n/// </summary>\n");
        sb.Append("public enum LivepatchCheck : ushort\n{\n");
        foreach (var c in table.Checks)
        {
            sb.Append($"    /// <summary>{Xml(c.Rule)} {Xml(c.Errno ?? "The errno varies")}; Xen: <c>{Xml(c.Xen)}</c>; ours: {Xml(c.Code)}.</summary>\n");
            sb.Append($"    {c.Name} = {c.Id},\n");
        }
        sb.Append("}\n\n");

        sb.Append($"/// <summary>What the check table says of each check.</summary>\npublic static partial class {table.NamesClass}\n{{\n");
        sb.Append("    /// <summary>Every check, in the table's order.</summary>\n");
        sb.Append("    public static IReadOnlyList<LivepatchCheck> All { get; } =\n    [\n");
        foreach (var c in table.Checks)
            sb.Append($"        LivepatchCheck.{c.Name},\n");
        sb.Append("    ];\n\n");
        Lookup(sb, "XenErrno?", "GetErrno", "The errno Xen answers, or null when it varies (a hook's result, for one)",
            table.Checks.Where(c => c.Errno != null).Select(c => (c, $"XenErrno.{c.Errno}")), "null");
        Lookup(sb, "string", "GetRule", "The rule, in a sentence", table.Checks.Select(c => (c, Quote(c.Rule))), "\"\"");
        Lookup(sb, "string", "GetStage", "The stage it belongs to", table.Checks.Select(c => (c, Quote(c.Stage.Split(' ')[0]))), "\"\"");
        Lookup(sb, "string", "GetXenFunction", "The Xen function that makes it", table.Checks.Select(c => (c, Quote(c.Xen))), "\"\"");
        Lookup(sb, "string", "GetCode", "Where our code makes it", table.Checks.Select(c => (c, Quote(c.Code))), "\"\"");
        Lookup(sb, "CheckOutcome", "GetOutcome", "How ACTION reports it: as its result, in the payload's rc, or both",
            table.Checks.Where(c => c.Outcome != "returned").Select(c => (c, c.Outcome == "rc" ? "CheckOutcome.Rc" : "CheckOutcome.Both")), "CheckOutcome.Returned");
        sb.Append("    /// <summary>The hypercall's value for a check with a fixed errno: <c>-errno</c>.</summary>\n");
        sb.Append("    public static int Rc(this LivepatchCheck check) =>\n");
        sb.Append("        -(int)(check.GetErrno() ?? throw new ArgumentOutOfRangeException(nameof(check), check, \"the check's errno varies\"));\n");
        sb.Append("}\n\n");

        sb.Append("/// <summary>One factory per check: the refusal with the check's id, errno and message.</summary>\n");
        sb.Append("internal static class Refuse\n{\n");
        bool first = true;
        foreach (var c in table.Checks)
        {
            if (!first)
                sb.Append('\n');
            first = false;
            var parameters = new List<string> { "string payload" };
            if (c.Errno == null)
                parameters.Add("XenErrno errno");
            parameters.AddRange(c.Args.Select(a => $"{a.Type} {a.Name}"));
            sb.Append($"    /// <summary>{Xml(c.Rule)}</summary>\n");
            sb.Append($"    public static LivepatchError {c.Name}({string.Join(", ", parameters)}) =>\n");
            sb.Append($"        new(LivepatchCheck.{c.Name}, {(c.Errno != null ? "XenErrno." + c.Errno : "errno")}, payload, ${Quote(c.Message)});\n");
        }
        sb.Append("}\n");
        return sb.ToString();
    }

    private static void Lookup(StringBuilder sb, string type, string method, string doc, IEnumerable<(Check Check, string Value)> rows, string fallback)
    {
        sb.Append($"    /// <summary>{Xml(doc)}.</summary>\n");
        sb.Append($"    public static {type} {method}(this LivepatchCheck check) => check switch\n    {{\n");
        foreach (var (c, value) in rows)
            sb.Append($"        LivepatchCheck.{c.Name} => {value},\n");
        sb.Append($"        _ => {fallback},\n    }};\n\n");
    }

    private static string Quote(string s) => "\"" + s.Replace("\\", "\\\\", StringComparison.Ordinal).Replace("\"", "\\\"", StringComparison.Ordinal) + "\"";

    private static string Xml(string s) => s.Replace("&", "&amp;", StringComparison.Ordinal).Replace("<", "&lt;", StringComparison.Ordinal).Replace(">", "&gt;", StringComparison.Ordinal);
}
