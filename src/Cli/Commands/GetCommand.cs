using System.Text;
using System.Text.Json;
using XenLivepatch.Abi;
using XenLivepatch.Control;
using XenLivepatch.Interop;

namespace XenLivepatch.Cli;

/// <summary><c>xen-livepatch get &lt;name&gt;</c> (ours): one payload's state and rc, from one GET.</summary>
internal static class GetCommand
{
    public const string Help = """
        Usage: xen-livepatch [--xen | --sandbox PATH] [--json] get <name> [--json]
        Prints the state of payload <name> as the hypervisor reports it (XEN_SYSCTL_LIVEPATCH_GET):
          <name>: CHECKED|APPLIED                        when its last action succeeded
          <name>: <STATE> (rc <n>: <ERRNO> <message>)    when its last action failed, or runs (rc -11, EAGAIN)
          signature: verified by <key> | not verified (<reason>): ...
                                                     when the hypervisor checks signatures (the sandbox with
                                                     --signature-policy; real Xen 4.17 checks none)
        then, like 'kpatch info', what the hypervisor holds of it (from debug key 'x', see 'xen-livepatch dump'):
        its build-id, what it depends on and was made for, its metadata, its memory, and each patched function's
        old and new address and size.
        A name the hypervisor does not know prints Xen's "Failed to get status of <name>." and its error.
        Exit status: 0 found, 2 an action is in progress, 1 anything else (Xen's codes).
          --json                 one JSON object: name, state, state_value, rc, in_progress, errno, error, message,
                                 signature (policy, verified, format, reason, detail, key, key_id; null from real Xen),
                                 metadata, build_id, depends, xen_depends, text, data, rodata, pages, functions

        """;

    public static async Task<int> RunAsync(Session s, string[] args)
    {
        if (args.Length != 1 || args[0].StartsWith('-'))
        {
            s.UsageProblem("xen-livepatch get: give one payload name (see 'xen-livepatch get --help')\n");
            return -1;
        }
        string name = args[0];
        var step = s.Begin("get", name);
        var client = await s.ClientAsync().ConfigureAwait(false);
        if (client == null)
            return -1;
        var get = await client.GetAsync(name, s.CancellationToken).ConfigureAwait(false);
        bool json = s.Json;
        if (!get.Result.Succeeded)
        {
            step.Errno = get.Result.Errno;
            if (json)
                s.Current!.Messages.Add($"Failed to get status of {name}.");
            else
                s.Err($"Failed to get status of {name}.\nError {get.Result.Errno}: {LibC.StrError(get.Result.Errno)}\n");
            return get.Result.Errno;
        }
        step.State = get.Status.State;
        step.Rc = get.Status.Rc;
        step.Outcome = "completed";
        step.Signature = await s.SignatureAsync(client, name).ConfigureAwait(false);
        if (!json)
        {
            string rc = get.Status.Rc == 0 ? "" : $" (rc {get.Status.Rc}: {XenErrors.Name(-get.Status.Rc)} {LibC.StrError(-get.Status.Rc)})";
            s.Out($"{name}: {XenCommands.StateName(get.Status.State)}{rc}\n");
            if (step.Signature is { Checked: true } sig)
                s.Out(sig.Verified ? $"  signature: verified {sig.Detail}\n" : $"  signature: not verified ({sig.Reason}): {sig.Detail} (signature policy {sig.Policy})\n");
        }
        // The rest comes from debug key 'x': Xen reports nothing else of a loaded payload.
        var dump = await client.DumpAsync(s.CancellationToken).ConfigureAwait(false);
        s.Details = dump.Dump?.Payloads.LastOrDefault(p => p.Name == name);
        if (s.Details != null)
            s.Out(HostCommands.Details(s.Details, dump.Dump!));
        else
            s.Err($"xen-livepatch get: no details of {name}: {dump.Problem ?? (dump.Result.Succeeded ? "the 'x' dump does not show it" : $"the 'x' dump failed ({XenErrors.Name(dump.Result.Errno)})")}\n");
        return get.InProgress ? (int)XenErrno.EAGAIN : 0;
    }

    /// <summary>The JSON object of a GET (the one thing <c>get --json</c> prints).</summary>
    public static string Json(Session s, int exitCode)
    {
        var step = s.Steps.LastOrDefault();
        using var ms = new MemoryStream();
        using (var w = new Utf8JsonWriter(ms, new JsonWriterOptions { Indented = true }))
        {
            JsonReport.Header(w, "get", exitCode, s);
            if (step != null)
            {
                w.WriteString("name", RawText.Printable(step.Name));
                if (step.State is uint state)
                {
                    w.WriteString("state", XenCommands.StateName(state));
                    w.WriteNumber("state_value", state);
                    w.WriteNumber("rc", step.Rc ?? 0);
                    w.WriteBoolean("in_progress", step.Rc == -(int)XenErrno.EAGAIN);
                    JsonReport.Errno(w, step.Rc < 0 ? -step.Rc : null);
                    JsonReport.Signature(w, step.Signature);
                    if (s.Details is { } d)
                    {
                        w.WriteStartArray("metadata");
                        foreach (string m in d.Metadata)
                            w.WriteStringValue(m);
                        w.WriteEndArray();
                        HostCommands.DumpedPayloadFields(w, d);
                    }
                }
                else
                {
                    w.WriteNull("state");
                    JsonReport.Errno(w, step.Errno);
                }
            }
            w.WriteEndObject();
        }
        return Encoding.UTF8.GetString(ms.ToArray()) + "\n";
    }
}
