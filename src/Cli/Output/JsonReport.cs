using System.Text;
using System.Text.Json;
using XenLivepatch.Control;
using XenLivepatch.Interop;

namespace XenLivepatch.Cli;

/// <summary>
/// <c>--json</c>: one JSON object on stdout for a hypervisor command (exit codes unchanged). Shapes:
/// <code>
/// {"command": "apply", "exit_code": 0, "steps": [{"op": "apply", "name": "x", "outcome": "completed",
///   "state": "APPLIED", "rc": 0, "errno": null, "error": null, "message": null, "messages": []}]}
/// {"command": "list", "exit_code": 0, "payloads": [{"name": "x", "state": "APPLIED", "state_value": 2, "rc": 0,
///   "errno": null, "error": null, "metadata": ["LIVEPATCH_RULEZ"], "signature": null}], "steps": [...]}
/// {"command": "list", "exit_code": 1, "transport_error": {"problem": "...", "advice": "..."}}
/// </code>
/// <c>outcome</c> is completed, no-action or failed; <c>messages</c> are the lines Xen's tool prints on stderr.
/// </summary>
internal static class JsonReport
{
    /// <summary>Opens the object and writes what every report starts with: the command, the exit code, a transport failure.</summary>
    public static void Header(Utf8JsonWriter w, string command, int exitCode, Session s)
    {
        w.WriteStartObject();
        w.WriteString("command", command);
        w.WriteNumber("exit_code", exitCode);
        if (s.HandlerFailure is var (problem, advice))
        {
            w.WriteStartObject("transport_error");
            w.WriteString("problem", problem);
            w.WriteString("advice", advice);
            w.WriteEndObject();
        }
    }

    public static string Write(Session s, int exitCode)
    {
        using var ms = new MemoryStream();
        using (var w = new Utf8JsonWriter(ms, new JsonWriterOptions { Indented = true }))
        {
            Header(w, s.Command, exitCode, s);
            if (s.Warning != null)
                w.WriteString("warning", s.Warning);
            if (s.Listed != null)
            {
                w.WriteStartArray("payloads");
                foreach (var e in s.Listed)
                    Payload(w, e, s.Signatures.GetValueOrDefault(e.Name));
                w.WriteEndArray();
            }
            w.WriteStartArray("steps");
            foreach (var step in s.Steps)
                Step(w, step);
            w.WriteEndArray();
            w.WriteEndObject();
        }
        return Encoding.UTF8.GetString(ms.ToArray()) + "\n";
    }

    private static void Payload(Utf8JsonWriter w, LivepatchListEntry e, PayloadSignatureStatus? signature)
    {
        w.WriteStartObject();
        w.WriteString("name", RawText.Printable(e.Name));
        w.WriteString("state", XenCommands.StateName(e.Status.State));
        w.WriteNumber("state_value", e.Status.State);
        w.WriteNumber("rc", e.Status.Rc);
        Errno(w, e.Status.Rc < 0 ? -e.Status.Rc : null);
        w.WriteStartArray("metadata");
        foreach (string m in e.MetadataStrings)
            w.WriteStringValue(m);
        w.WriteEndArray();
        Signature(w, signature);
        w.WriteEndObject();
    }

    /// <summary>
    /// "signature": what the hypervisor recorded of the payload's signature check at upload, or null when it
    /// reports none (real Xen checks no signature; the sandbox reports its policy and verdict).
    /// </summary>
    public static void Signature(Utf8JsonWriter w, PayloadSignatureStatus? status)
    {
        if (status == null)
        {
            w.WriteNull("signature");
            return;
        }
        w.WriteStartObject("signature");
        w.WriteString("policy", status.Policy);
        w.WriteBoolean("checked", status.Checked);
        w.WriteBoolean("verified", status.Verified);
        if (status.Format is { } f) w.WriteString("format", f); else w.WriteNull("format");
        if (status.Reason is { } r) w.WriteString("reason", r); else w.WriteNull("reason");
        w.WriteString("detail", status.Detail);
        if (status.Key is { } k) w.WriteString("key", k); else w.WriteNull("key");
        if (status.KeyId is { } id) w.WriteString("key_id", id); else w.WriteNull("key_id");
        w.WriteEndObject();
    }

    private static void Step(Utf8JsonWriter w, StepRecord step)
    {
        w.WriteStartObject();
        w.WriteString("op", step.Op);
        if (step.Name != null)
            w.WriteString("name", RawText.Printable(step.Name));
        if (step.File != null)
            w.WriteString("file", step.File);
        w.WriteString("outcome", step.Outcome);
        if (step.State is uint state)
            w.WriteString("state", XenCommands.StateName(state));
        else
            w.WriteNull("state");
        if (step.Rc is int rc)
            w.WriteNumber("rc", rc);
        else
            w.WriteNull("rc");
        Errno(w, step.Errno is > 0 ? step.Errno : null);
        w.WriteStartArray("messages");
        foreach (string m in step.Messages)
            w.WriteStringValue(m);
        w.WriteEndArray();
        w.WriteEndObject();
    }

    /// <summary>An array of strings.</summary>
    public static void Strings(Utf8JsonWriter w, string name, IEnumerable<string> values)
    {
        w.WriteStartArray(name);
        foreach (string v in values)
            w.WriteStringValue(v);
        w.WriteEndArray();
    }

    /// <summary>A string, or null.</summary>
    public static void StringOrNull(Utf8JsonWriter w, string name, string? value)
    {
        if (value == null)
            w.WriteNull(name);
        else
            w.WriteString(name, value);
    }

    /// <summary>Our commands' failure: {"message", "advice"}, or null.</summary>
    public static void Problem(Utf8JsonWriter w, Tooling.ToolingProblem? problem)
    {
        if (problem == null)
        {
            w.WriteNull("problem");
            return;
        }
        w.WriteStartObject("problem");
        w.WriteString("message", problem.Message);
        w.WriteString("advice", problem.Advice);
        w.WriteEndObject();
    }

    /// <summary>"errno", "error" (its name) and "message" (strerror), or nulls.</summary>
    public static void Errno(Utf8JsonWriter w, int? errno)
    {
        if (errno is int e)
        {
            w.WriteNumber("errno", e);
            w.WriteString("error", XenErrors.Name(e));
            w.WriteString("message", LibC.StrError(e));
        }
        else
        {
            w.WriteNull("errno");
            w.WriteNull("error");
            w.WriteNull("message");
        }
    }
}
