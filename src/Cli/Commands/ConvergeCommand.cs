using System.Globalization;
using System.Text.Json;
using XenLivepatch.Control;
using XenLivepatch.Host;
using XenLivepatch.Signing;

namespace XenLivepatch.Cli;

/// <summary>
/// <c>xen-livepatch converge DIR|MANIFEST</c>: makes the payloads the hypervisor has loaded and applied equal a
/// desired set (<see cref="Converger"/>), printing the plan (<c>--dry-run</c>) or what it did; <c>--json</c> is the
/// contract fleets' orchestration reads (schema <see cref="Schema"/>).
/// </summary>
internal static class ConvergeCommand
{
    /// <summary>The version of the JSON report of converge and apply-installed; grows only by added members.</summary>
    public const int Schema = 1;

    public static readonly string Help = $$"""
        Usage: xen-livepatch [--xen | --sandbox PATH] converge <dir|manifest> [--dry-run] [--json] [--timeout <ms>]
        Makes the payloads the hypervisor has loaded and applied exactly the desired set, bottom of the stack first:
        uploads what is missing, applies in dependency order (NODEPS where what a payload depends on is below it but
        not on top), uses REPLACE where the set says so, reverts and unloads what is no longer wanted (a payload
        found loaded but not applied is uploaded anew: Xen refuses to apply a reverted payload with .data again).
        Run twice, the second run does nothing. The hypervisor's payloads are told apart by name and build-id (read
        with debug key 'x', which prints to Xen's console).
          <dir>                  every *.livepatch file in it, each under its file name, in dependency order
                                 (ties by name)
          <manifest>             a text file, one payload per line, in order (paths relative to the manifest):
                                   # FILE [name=NAME] [replace] [nodeps]
                                   xen_replace_world.livepatch replace
                                   xen_nop.livepatch
                                 or JSON: {"schema": 1, "payloads": [{"file": F, "name": N, "replace": B, "nodeps": B}]}
                                 'replace' (first payload only): applied with REPLACE, which reverts the whole
                                 stack and applies it in one pause; 'nodeps': applied with NODEPS whatever is below
          --dry-run              print the plan, change nothing
          --json                 one JSON object (schema 1): plan, steps with their outcome, changed, converged,
                                 differences, the payloads left (in applied order), problems
          --timeout <ms>         each action's deadline for stopping the CPUs (default 30, as Xen's tool)
        {{SignatureOptions.HostHelp}}Exit status: 0 converged (or, with --dry-run, planned); 1 a step failed or the state differs (what is left
        is printed); 64 a wrong command line; 65 the set cannot be applied as it is (a payload for another
        hypervisor, a dependency missing, a misplaced replace, a payload the signature policy refuses); 66 a payload or the manifest cannot be read.

        """;

    public static async Task<int> RunAsync(string[] args, ToolOptions options, TextWriter stdout, TextWriter stderr, ToolHost host, CancellationToken cancellationToken)
    {
        var a = ArgReader.Parse(args, ["--timeout", .. SignatureOptions.Options], ["--dry-run", "--json"], [], out string? argError);
        if (a == null || a.Positional.Count != 1)
            return CommandInput.Usage("converge", stderr, argError ?? (a!.Positional.Count == 0 ? "converge to what? give a directory of payloads or a manifest" : "give one directory or manifest"));
        if (!TryTimeout("converge", a, stderr, out uint timeoutNs, out int code))
            return code;
        if (!SignatureOptions.TryHostTrust("converge", a, stderr, out var trust, out code))
            return code;
        bool json = options.Json || a.Flag("--json");
        if (!DesiredSet.TryLoad(a.Positional[0], out var desired, out var problems))
        {
            foreach (string p in problems)
                stderr.Write($"xen-livepatch converge: {p}\n");
            return OwnExitCodes.NoInput;
        }
        await using var session = new Session("converge", options with { Json = json }, stdout, stderr, host, cancellationToken);
        return await RunAsync(session, desired, ConvergeMode.Exact, a.Flag("--dry-run"), timeoutNs, extra: null, trust: trust).ConfigureAwait(false);
    }

    /// <summary>--timeout MS as ns (default Xen's tool's 30 ms).</summary>
    public static bool TryTimeout(string command, ArgReader a, TextWriter stderr, out uint timeoutNs, out int code)
    {
        timeoutNs = LivepatchClient.ToolTimeoutNs;
        code = 0;
        if (a.Value("--timeout") is not { } t)
            return true;
        if (!uint.TryParse(t, NumberStyles.None, CultureInfo.InvariantCulture, out uint ms) || ms is 0 or > 4000)
        {
            code = CommandInput.Usage(command, stderr, $"--timeout takes milliseconds from 1 to 4000, not '{t}'");
            return false;
        }
        timeoutNs = ms * 1_000_000;
        return true;
    }

    /// <summary>
    /// Converges in <paramref name="mode"/> and reports, as text or JSON; <paramref name="extra"/> adds members to the
    /// JSON (apply-installed's store).
    /// </summary>
    public static async Task<int> RunAsync(Session s, DesiredSet desired, ConvergeMode mode, bool dryRun, uint timeoutNs, Action<Utf8JsonWriter>? extra,
        IReadOnlyList<string>? leftOut = null, IReadOnlyList<string>? superseded = null, PayloadTrust? trust = null)
    {
        var client = await s.ClientAsync().ConfigureAwait(false);
        if (client == null)
        {
            if (s.Json)
                s.Write(Json(s, null, 1, extra));
            return ExitCodes.Failure;
        }
        string command = s.Command;
        // Each step takes milliseconds (an upload, or one pause of the CPUs): the report comes when all are done.
        var runner = new ConvergeRunner { TimeoutNs = timeoutNs };
        ConvergeReport report;
        try
        {
            report = await Converger.RunAsync(client, desired, mode, dryRun, runner, trust, s.CancellationToken).ConfigureAwait(false);
        }
        catch (LivepatchTransportException e)
        {
            s.Err($"xen-livepatch {command}: {e.Message}\n");
            if (s.Json)
                s.Write(Json(s, null, 1, extra));
            return ExitCodes.Failure;
        }
        int exit = report.Problems.Count > 0 ? OwnExitCodes.DataError
            : report.Failure != null ? ExitCodes.Failure
            : dryRun ? ExitCodes.Success
            : report.Converged && (leftOut == null || leftOut.Count == 0) ? ExitCodes.Success
            : ExitCodes.Failure;
        if (s.Json)
            s.Write(Json(s, report, exit, extra, leftOut?.Count > 0));
        else if (report.Problems.Count > 0 || report.Failure != null)
        {
            // Nothing was done: the reasons are errors, on stderr.
            foreach (string p in report.Problems)
                s.Stderr.Write($"xen-livepatch {command}: cannot apply {report.Desired.Source}: {p}\n");
            if (report.Failure is { } f)
                s.Stderr.Write($"xen-livepatch {command}: cannot read the hypervisor's payloads: {f}\n");
        }
        else
            s.Write(Text(command, client, report, leftOut, superseded));
        return exit;
    }

    private static string Text(string command, LivepatchClient client, ConvergeReport r, IReadOnlyList<string>? leftOut, IReadOnlyList<string>? superseded)
    {
        var c = CultureInfo.InvariantCulture;
        var sb = new System.Text.StringBuilder();
        string xen = r.Before?.XenBuildId ?? "(build-id unknown)";
        sb.Append(c, $"{command}: {r.Desired.Source} on hypervisor {xen} ({client.Transport.Description})\n");
        foreach (string n in r.Plan?.Notes ?? [])
            sb.Append(c, $"note: {n}\n");
        if (superseded is { Count: > 0 })
            sb.Append(c, $"superseded by a later --replace install, not applied: {string.Join(", ", superseded)}\n");
        foreach (string n in r.Plan?.Conflicts ?? [])
            sb.Append(c, $"conflict: {n}\n");
        var plan = r.Plan!;
        if (plan.IsEmpty)
        {
            sb.Append("nothing to do; ");
        }
        else if (r.DryRun)
        {
            sb.Append("plan (dry run, nothing done):\n");
            int width = plan.Steps.Max(st => st.Verb.Length);
            foreach (var st in plan.Steps)
                sb.Append(c, $"  {st.Verb.PadRight(width)}  ({st.Why})\n");
        }
        else
        {
            int width = plan.Steps.Max(st => st.Verb.Length);
            foreach (var o in r.Outcomes)
            {
                string outcome = o.Outcome == "done" ? "done" : $"{o.Outcome.ToUpperInvariant()}: {o.Message}";
                sb.Append(c, $"  {o.Step.Verb.PadRight(width)}  {outcome}  ({o.Step.Why})\n");
            }
        }
        var state = r.After ?? r.Before;
        string applied = state == null || state.AppliedStack.Count == 0 ? "nothing applied" : "applied, bottom first: " + string.Join(", ", state.AppliedStack.Select(p => p.Name));
        if (r.DryRun && !plan.IsEmpty)
            sb.Append(c, $"now {applied}\n");
        else if (r.Differences.Count == 0 && r.Outcomes.All(o => o.Done))
            sb.Append(c, $"{(plan.IsEmpty ? "the hypervisor has the desired set" : "converged")}: {applied}\n");
        else
        {
            sb.Append(c, $"not converged: {applied}\n");
            foreach (string d in r.Differences)
                sb.Append(c, $"  {d}\n");
        }
        foreach (string l in leftOut ?? [])
            sb.Append(c, $"not applied: {l}\n");
        return sb.ToString();
    }

    private static string Json(Session s, ConvergeReport? r, int exit, Action<Utf8JsonWriter>? extra, bool leftOut = false) => HostCommands.Json(w =>
    {
        JsonReport.Header(w, s.Command, exit, s);
        w.WriteNumber("schema", Schema);
        w.WriteString("mode", r?.Mode == ConvergeMode.Additive ? "additive" : "exact");
        w.WriteBoolean("dry_run", r?.DryRun ?? false);
        if (r != null)
            w.WriteString("source", r.Desired.Source);
        if (s.TransportDescription != null)
            w.WriteString("transport", s.TransportDescription);
        HostCommands.NullableString(w, "build_id", r?.Before?.XenBuildId);
        extra?.Invoke(w);
        Strings(w, "problems", r?.Problems ?? []);
        Strings(w, "notes", r?.Plan?.Notes ?? []);
        Strings(w, "conflicts", r?.Plan?.Conflicts ?? []);
        w.WriteStartArray("plan");
        foreach (var st in r?.Plan?.Steps ?? [])
        {
            w.WriteStartObject();
            StepFields(w, st);
            w.WriteEndObject();
        }
        w.WriteEndArray();
        w.WriteStartArray("steps");
        foreach (var o in r?.Outcomes ?? [])
        {
            w.WriteStartObject();
            StepFields(w, o.Step);
            w.WriteString("outcome", o.Outcome == "done" ? "completed" : o.Outcome);
            JsonReport.Errno(w, o.Errno > 0 ? o.Errno : null);
            if (o.Errno <= 0 && o.Message != null)
                w.WriteString("message", o.Message);
            else if (o.Errno > 0 && o.Message != null)
                w.WriteString("detail", o.Message);
            w.WriteEndObject();
        }
        w.WriteEndArray();
        w.WriteBoolean("changed", r?.Changed ?? false);
        // Payloads left out of the set (apply-installed: damaged files) keep it from being converged.
        bool converged = r != null && !leftOut &&
            (r.DryRun ? r.Problems.Count == 0 && r.Failure == null && r.Plan is { IsEmpty: true } && r.Differences.Count == 0 : r.Converged);
        w.WriteBoolean("converged", converged);
        Strings(w, "differences", r?.Differences ?? []);
        var state = r?.After ?? r?.Before;
        w.WriteStartArray("payloads");
        if (state != null)
        {
            // Applied ones bottom of the stack first, then the others in upload order.
            foreach (var p in state.AppliedStack.Concat(state.Loaded.Where(l => !l.IsApplied)))
            {
                w.WriteStartObject();
                w.WriteString("name", p.Name);
                w.WriteString("state", p.State?.ToString().ToUpperInvariant() ?? "unknown");
                w.WriteNumber("rc", p.Rc);
                HostCommands.NullableString(w, "build_id", p.BuildId);
                HostCommands.NullableString(w, "depends", p.Depends);
                w.WriteEndObject();
            }
        }
        w.WriteEndArray();
        HostCommands.Messages(w, s);
        w.WriteEndObject();
    });

    private static void StepFields(Utf8JsonWriter w, PlanStep st)
    {
        w.WriteString("op", st.Kind.ToString().ToLowerInvariant());
        w.WriteString("name", st.Name);
        w.WriteBoolean("nodeps", st.NoDeps);
        w.WriteString("why", st.Why);
    }

    private static void Strings(Utf8JsonWriter w, string name, IEnumerable<string> values)
    {
        w.WriteStartArray(name);
        foreach (string v in values)
            w.WriteStringValue(v);
        w.WriteEndArray();
    }
}
