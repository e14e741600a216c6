using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Nodes;
using XenLivepatch.Control;

namespace XenLivepatch.Cli;

/// <summary>
/// The one <c>--json</c> contract, for every command (schemas/xen-livepatch.schema.json): one object on stdout,
/// <code>
/// {"schema_version": 1, "command": "apply", "exit_code": 1, "errno": 2, "error": "ENOENT", "message": "...", ...}
/// </code>
/// <c>command</c> is the command's full name (null when none was given; "--help", "--version" for those);
/// <c>exit_code</c> is the process's; on failure <c>error</c> (the errno's name, or the kind of failure: usage,
/// unknown_command, no_hypervisor, no_input, data_error, cant_create, patch_does_not_apply, tree_does_not_build,
/// objects_mismatched, nothing_to_patch, retry, failed) and <c>message</c> are always there,
/// <c>errno</c> when the failure has one. The command's own fields follow. Commands write their own object (or
/// text) to a buffer; this puts the envelope around it in one place, so that a command added to
/// <see cref="CommandTable"/> is under the contract without knowing it.
/// </summary>
internal static class JsonEnvelope
{
    /// <summary>The contract's version: bumped when a field changes meaning or goes away (new fields do not bump it).</summary>
    public const int SchemaVersion = 1;

    /// <summary>How every JSON object of the tool is written: indented, UTF-8 as is (no \u0027 for an apostrophe).</summary>
    public static JsonWriterOptions WriterOptions { get; } = new() { Indented = true, Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    private static readonly string[] s_envelope = ["schema_version", "command", "exit_code", "errno", "error", "message"];

    /// <summary>
    /// The object for a run of <paramref name="command"/> that exited with <paramref name="exitCode"/>, printed
    /// <paramref name="body"/> on stdout (its own JSON object, or text) and <paramref name="diagnostics"/> on stderr.
    /// </summary>
    public static string Compose(string? command, int exitCode, string body, string diagnostics, string? errorKind)
    {
        JsonObject? own = null;
        string? text = null;
        if (body.Length > 0)
        {
            try
            {
                own = JsonNode.Parse(body) as JsonObject;
            }
            catch (JsonException)
            {
            }
            if (own == null)
                text = body;
        }
        own ??= [];

        var o = new JsonObject
        {
            ["schema_version"] = SchemaVersion,
            ["command"] = command,
            ["exit_code"] = exitCode,
        };
        int? errno = Int(own["errno"]);
        string? error = Str(own["error"]);
        string? message = Str(own["message"]);
        if (exitCode != ExitCodes.Success)
        {
            var step = FailedStep(own);
            if (errno == null && step != null)
                errno = Int(step["errno"]);
            error ??= errno is int e ? XenErrors.Name(e) : own.ContainsKey("transport_error") ? "no_hypervisor" : errorKind ?? KindOf(exitCode);
            message ??= StepMessage(step) ?? TransportMessage(own) ?? Trimmed(diagnostics) ?? Trimmed(text) ?? DescribeExit(exitCode);
        }
        if (errno != null || own.ContainsKey("errno"))
            o["errno"] = errno;
        if (error != null || own.ContainsKey("error"))
            o["error"] = error;
        if (message != null || own.ContainsKey("message"))
            o["message"] = message;
        foreach (var (key, value) in own.ToList())
        {
            if (Array.IndexOf(s_envelope, key) >= 0)
                continue;
            own.Remove(key);
            o[key] = value;
        }
        if (text != null)
            o["text"] = text;
        return Write(o);
    }

    /// <summary>Writes a node as the tool writes JSON, with a final newline.</summary>
    public static string Write(JsonNode node)
    {
        using var ms = new MemoryStream();
        using (var w = new Utf8JsonWriter(ms, WriterOptions))
            node.WriteTo(w);
        return Encoding.UTF8.GetString(ms.ToArray()) + "\n";
    }

    /// <summary>The kind of failure an exit code means, for "error" when there is no errno.</summary>
    public static string KindOf(int exitCode) => exitCode switch
    {
        ExitCodes.Retry => "retry",
        OwnExitCodes.Usage => "usage",
        OwnExitCodes.DataError => "data_error",
        OwnExitCodes.NoInput => "no_input",
        OwnExitCodes.CantCreate => "cant_create",
        OwnExitCodes.PatchDoesNotApply => "patch_does_not_apply",
        OwnExitCodes.TreeDoesNotBuild => "tree_does_not_build",
        OwnExitCodes.Mismatched => "objects_mismatched",
        OwnExitCodes.NothingToPatch => "nothing_to_patch",
        _ => "failed",
    };

    private static string DescribeExit(int exitCode) => $"failed with exit code {exitCode}";

    // The last step that failed (Xen's commands record their steps), for the errno and Xen's lines.
    private static JsonObject? FailedStep(JsonObject own) =>
        (own["steps"] as JsonArray)?.OfType<JsonObject>().LastOrDefault(s => Str(s["outcome"]) == "failed");

    private static string? StepMessage(JsonObject? step)
    {
        if (step == null)
            return null;
        var lines = (step["messages"] as JsonArray)?.Select(Str).OfType<string>().ToList() ?? [];
        if (lines.Count > 0)
            return string.Join("\n", lines);
        return Str(step["message"]);
    }

    private static string? TransportMessage(JsonObject own) =>
        own["transport_error"] is JsonObject t && Str(t["problem"]) is { } p ? $"{p}\n{Str(t["advice"])}".TrimEnd() : null;

    private static string? Trimmed(string? s) => string.IsNullOrWhiteSpace(s) ? null : s.TrimEnd('\n', ' ');

    private static string? Str(JsonNode? n) => n is JsonValue v && v.TryGetValue(out string? s) ? s : null;

    private static int? Int(JsonNode? n) => n is JsonValue v && v.TryGetValue(out int i) ? i : null;
}

/// <summary>A writer that passes everything on to another writer and keeps a copy (stderr in JSON mode).</summary>
internal sealed class TeeWriter : TextWriter
{
    private readonly TextWriter? _inner;
    private readonly StringBuilder _copy = new();

    public TeeWriter(TextWriter? inner) => _inner = inner;

    public override Encoding Encoding => Encoding.UTF8;

    /// <summary>What was written.</summary>
    public string Text => _copy.ToString();

    public override void Write(char value)
    {
        _copy.Append(value);
        _inner?.Write(value);
    }

    public override void Write(string? value)
    {
        _copy.Append(value);
        _inner?.Write(value);
    }

    public override void Write(char[] buffer, int index, int count)
    {
        _copy.Append(buffer, index, count);
        _inner?.Write(buffer, index, count);
    }

    public override void Write(ReadOnlySpan<char> buffer)
    {
        _copy.Append(buffer);
        _inner?.Write(buffer);
    }
}
