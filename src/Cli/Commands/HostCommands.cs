using System.Globalization;
using System.Text;
using System.Text.Json;
using XenLivepatch.Control;
using XenLivepatch.Interop;

namespace XenLivepatch.Cli;

/// <summary>
/// Our commands that read the running hypervisor's state through the control library: <c>buildid</c> (XENVER_build_id,
/// as <c>/sys/hypervisor/properties/buildid</c> shows it) and <c>dump</c> (debug key 'x', read back from the console
/// ring as <c>xl debug-keys x; xl dmesg</c> would show it).
/// </summary>
internal static class HostCommands
{
    public const string BuildIdHelp = """
        Usage: xen-livepatch [--xen | --sandbox PATH] buildid [--json]
        Prints the running hypervisor's build-id in lowercase hex, as /sys/hypervisor/properties/buildid shows it
        (XENVER_build_id through the control library). Every payload's .livepatch.xen_depends must equal it; the
        install store keeps payloads under this name.
        Exit status: 0 printed; 1 when no hypervisor answered (the message says why).
          --json                 one JSON object: build_id, transport

        """;

    public const string DumpHelp = """
        Usage: xen-livepatch [--xen | --sandbox PATH] dump [--json]
        Prints what Xen's debug key 'x' prints: the hypervisor's build-id, then for each payload its name, state,
        text/.data/.rodata addresses and pages, its metadata, each patched function's old and new address and
        size, and its build-id and dependencies. It presses 'x' (XEN_SYSCTL_debug_keys) and reads what the console
        ring gained (XEN_SYSCTL_readconsole), as 'xl debug-keys x; xl dmesg' would show it.
        Exit status: 0 printed; 1 when the hypervisor did not answer or its console did not show the dump.
          --json                 one JSON object: build_id, payloads (name, state, addresses, functions, build-ids), lines

        """;

    // The start of a command that takes no argument but --json: its step, and the client (null when there is none,
    // or the command line is wrong: the message is out).
    private static async Task<(StepRecord Step, LivepatchClient? Client)> BeginAsync(Session s, string command, string[] args)
    {
        var step = s.Begin(command);
        if (args.FirstOrDefault(a => a != "--json") is { } extra)
        {
            s.Err($"xen-livepatch {command}: unexpected argument '{extra}' (see 'xen-livepatch {command} --help')\n");
            return (step, null);
        }
        return (step, await s.ClientAsync().ConfigureAwait(false));
    }

    /// <summary><c>buildid</c>.</summary>
    public static async Task<int> BuildIdAsync(Session s, string[] args)
    {
        var (step, client) = await BeginAsync(s, "buildid", args).ConfigureAwait(false);
        if (client == null)
            return -1;
        var id = await client.GetBuildIdAsync(s.CancellationToken).ConfigureAwait(false);
        if (!id.Result.Succeeded)
        {
            step.Errno = id.Result.Errno;
            s.Err($"xen-livepatch buildid: {client.Transport.Description} did not give its build-id: Error {id.Result.Errno}: {LibC.StrError(id.Result.Errno)}\n" +
                (id.Result.Errno == 38 ? "  (a sandbox started by an older xen-livepatch cannot answer: restart it)\n" : ""));
            return id.Result.Errno;
        }
        step.Outcome = "completed";
        s.BuildId = id.Hex;
        s.Out(id.Hex + "\n");
        return 0;
    }

    /// <summary>The JSON of <c>buildid</c>.</summary>
    public static string BuildIdJson(Session s, int exitCode) => Json(w =>
    {
        JsonReport.Header(w, "buildid", exitCode, s);
        NullableString(w, "build_id", s.BuildId);
        w.WriteString("transport", s.TransportDescription);
        Messages(w, s);
        w.WriteEndObject();
    });

    /// <summary><c>dump</c>.</summary>
    public static async Task<int> DumpAsync(Session s, string[] args)
    {
        var (step, client) = await BeginAsync(s, "dump", args).ConfigureAwait(false);
        if (client == null)
            return -1;
        var dump = await client.DumpAsync(s.CancellationToken).ConfigureAwait(false);
        if (!dump.Result.Succeeded)
        {
            step.Errno = dump.Result.Errno;
            string call = dump.Result.Call == LivepatchCall.DebugKeys ? "pressing 'x' (XEN_SYSCTL_debug_keys)" : "reading the console (XEN_SYSCTL_readconsole)";
            s.Err($"xen-livepatch dump: {call} failed: Error {dump.Result.Errno}: {LibC.StrError(dump.Result.Errno)}\n");
            return dump.Result.Errno;
        }
        if (dump.Dump == null)
        {
            s.Err($"xen-livepatch dump: {dump.Problem}; try again\n");
            return -1;
        }
        step.Outcome = "completed";
        s.Dump = dump.Dump;
        s.Out(dump.Dump.ToString());
        return 0;
    }

    /// <summary>The JSON of <c>dump</c>.</summary>
    public static string DumpJson(Session s, int exitCode) => Json(w =>
    {
        JsonReport.Header(w, "dump", exitCode, s);
        var d = s.Dump;
        NullableString(w, "build_id", d?.BuildId);
        w.WriteStartArray("payloads");
        foreach (var p in d?.Payloads ?? [])
            DumpedPayloadJson(w, p);
        w.WriteEndArray();
        w.WriteStartArray("lines");
        foreach (string l in d?.Lines ?? [])
            w.WriteStringValue(l);
        w.WriteEndArray();
        Messages(w, s);
        w.WriteEndObject();
    });

    /// <summary>One payload of the 'x' dump as JSON (the members <c>get --json</c> shares).</summary>
    public static void DumpedPayloadFields(Utf8JsonWriter w, DumpedPayload p)
    {
        w.WriteString("text", Hex(p.Text));
        w.WriteString("data", Hex(p.Data));
        w.WriteString("rodata", Hex(p.Rodata));
        w.WriteNumber("pages", p.Pages);
        w.WriteStartArray("functions");
        foreach (var f in p.Functions)
        {
            w.WriteStartObject();
            w.WriteString("name", f.Name);
            w.WriteString("old_addr", Hex(f.OldAddress));
            w.WriteNumber("old_size", f.OldSize);
            w.WriteString("new_addr", Hex(f.NewAddress));
            w.WriteNumber("new_size", f.NewSize);
            w.WriteEndObject();
        }
        w.WriteEndArray();
        NullableString(w, "build_id", p.BuildId);
        NullableString(w, "depends", p.DependsOn);
        NullableString(w, "xen_depends", p.DependsOnXen);
    }

    private static void DumpedPayloadJson(Utf8JsonWriter w, DumpedPayload p)
    {
        w.WriteStartObject();
        w.WriteString("name", p.Name);
        w.WriteString("state", p.State);
        w.WriteNumber("state_value", p.StateValue);
        w.WriteStartArray("metadata");
        foreach (string m in p.Metadata)
            w.WriteStringValue(m);
        w.WriteEndArray();
        DumpedPayloadFields(w, p);
        w.WriteEndObject();
    }

    /// <summary>
    /// The details <c>get NAME</c> prints under the state line, like <c>kpatch info</c>: build-ids, metadata, where
    /// the payload sits and what it patches (from the 'x' dump, which also names the payload it depends on).
    /// </summary>
    public static string Details(DumpedPayload p, LivepatchDump dump)
    {
        ArgumentNullException.ThrowIfNull(dump);
        string? xenBuildId = dump.BuildId;
        var c = CultureInfo.InvariantCulture;
        var sb = new StringBuilder();
        sb.Append(c, $"  build-id     {p.BuildId ?? "-"}\n");
        string depends = p.DependsOn == null ? "-"
            : p.DependsOn == xenBuildId ? $"{p.DependsOn} (the hypervisor)"
            : dump.Payloads.FirstOrDefault(q => q.BuildId == p.DependsOn) is { } below ? $"{p.DependsOn} ({below.Name})"
            : p.DependsOn;
        sb.Append(c, $"  depends on   {depends}\n");
        string xen = p.DependsOnXen == null ? "-" : p.DependsOnXen == xenBuildId ? $"{p.DependsOnXen} (the running hypervisor)" : p.DependsOnXen;
        sb.Append(c, $"  made for     {xen}\n");
        sb.Append(c, $"  metadata     {(p.Metadata.Count == 0 ? "-" : string.Join("; ", p.Metadata))}\n");
        sb.Append(c, $"  memory       text {Hex(p.Text)}, .data {Hex(p.Data)}, .rodata {Hex(p.Rodata)}; {p.Pages} page{(p.Pages == 1 ? "" : "s")}\n");
        sb.Append(c, $"  functions    {p.Functions.Count}\n");
        int width = p.Functions.Count == 0 ? 0 : p.Functions.Max(f => f.Name.Length);
        foreach (var f in p.Functions)
        {
            string target = f.NewAddress == 0 ? $"NOP ({f.NewSize} bytes)" : $"{Hex(f.NewAddress)} ({f.NewSize} bytes)";
            sb.Append(c, $"    {(f.Name.Length == 0 ? "(by address)" : f.Name).PadRight(Math.Max(width, 12))}  {Hex(f.OldAddress)} ({f.OldSize} bytes) -> {target}\n");
        }
        return sb.ToString();
    }

    private static string Hex(ulong v) => v.ToString("x16", CultureInfo.InvariantCulture);

    /// <summary>A string member, or null.</summary>
    public static void NullableString(Utf8JsonWriter w, string name, string? value)
    {
        if (value != null)
            w.WriteString(name, value);
        else
            w.WriteNull(name);
    }

    /// <summary>The messages (stderr lines) the steps gathered in JSON mode.</summary>
    public static void Messages(Utf8JsonWriter w, Session s)
    {
        if (s.Warning != null)
            w.WriteString("warning", s.Warning);
        w.WriteStartArray("messages");
        foreach (var step in s.Steps)
        {
            foreach (string m in step.Messages)
                w.WriteStringValue(m);
        }
        w.WriteEndArray();
    }

    /// <summary>Writes one JSON object with <paramref name="write"/> (which opens and closes it).</summary>
    public static string Json(Action<Utf8JsonWriter> write)
    {
        ArgumentNullException.ThrowIfNull(write);
        using var ms = new MemoryStream();
        using (var w = new Utf8JsonWriter(ms, new JsonWriterOptions { Indented = true }))
            write(w);
        return Encoding.UTF8.GetString(ms.ToArray()) + "\n";
    }
}
