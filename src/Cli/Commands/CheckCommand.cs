using System.Globalization;
using System.Text;
using System.Text.Json;
using XenLivepatch.Hypervisor;
using XenLivepatch.Signing;

namespace XenLivepatch.Cli;

/// <summary>
/// <c>xen-livepatch check</c>: would this payload upload and apply on that hypervisor? Runs the livepatch
/// core's UPLOAD path against an offline target, then the APPLY checks that need no running CPU.
/// </summary>
internal static class CheckCommand
{
    public const string Help = """
        Usage: xen-livepatch check <payload> [--target <image> | --symbols <file> --build-id <hex>] [options]
        Runs <payload> through the livepatch core's upload checks against a hypervisor that is not running,
        then the apply checks that need no CPU: the build-id dependency and, when the target has code bytes,
        the expectations. Prints OK and a summary, or "error <errno> (<NAME>): <payload>: <message>".
        Without --target or --symbols, the target is the running hypervisor (real Xen, or the sandbox) when one answers.
        Exit status: 0 when accepted; 1 when refused (the errno is in the message and the JSON); 64 for a wrong
        command line; 66 when an input cannot be read.
          --target <image>       the hypervisor as an ELF image with symbols (xen-syms, artifacts/sandbox/xen-syms)
          --symbols <file>       its symbols as /proc/xen/xensyms lists them (no code bytes: expectations unchecked)
          --build-id <hex>       with --symbols: its build-id (/sys/hypervisor/properties/buildid)
          --arch x86_64|arm64    with --symbols: its architecture (default x86_64)
          --profile <name>       xen-4.17 (default: Debian's Xen 4.17), xen-4.22 (upstream
                                 Xen 4.22) or seed-2016 (the 2016 design)
          --applied <payload>... payloads applied underneath, oldest first (their build-ids form the stack)
          --name <name>          the payload's name (default: its file name without the extension)
          --nodeps               skip the payload-to-payload build-id check, as 'apply --nodeps' does
          --json                 print one JSON object instead of text
        """ + SignatureOptions.Help + """
        With a signature policy, the signature is checked first, as the hypervisor checks it at upload: a refusal
        is "error 22 (EINVAL): <payload>: signature check failed (<reason>): ...", the reason one of unsigned,
        unknown key, bad signature, malformed signature block, unsupported algorithm. The --applied payloads
        were uploaded to the same hypervisor: the policy checks them too.

        """;

    public static int Run(string[] args, TextWriter stdout, TextWriter stderr, ToolOptions? options = null)
    {
        if (args.Contains("--help") || args.Contains("-h"))
        {
            stdout.Write(Help);
            return OwnExitCodes.Success;
        }
        var a = ArgReader.Parse(args, ["--target", "--symbols", "--build-id", "--arch", "--profile", "--name", .. SignatureOptions.Options], ["--nodeps", "--json"], ["--applied"], out string? argError);
        if (a == null || a.Positional.Count != 1)
            return Usage(stderr, argError ?? (a!.Positional.Count == 0 ? "which payload? give its file" : $"one payload at a time (got {a.Positional.Count})"));
        string file = a.Positional[0];
        if (!CommandInput.TryProfile("check", a.Value("--profile"), stderr, out var profile, out int profileError))
            return profileError;

        if (!SignatureOptions.TryTrust("check", a, stderr, profile, out var trust, out int code))
            return code;
        if (!CommandInput.TryTarget("check", a, stderr, out var target, out code, options))
            return code;
        if (!TryRead(file, stderr, out byte[] data))
            return OwnExitCodes.NoInput;
        var applied = new List<StackedPayload>();
        foreach (string under in a.Values("--applied"))
        {
            if (!TryRead(under, stderr, out byte[] d))
                return OwnExitCodes.NoInput;
            applied.Add(new StackedPayload(NameOf(under), d));
        }
        string name = a.Value("--name") ?? NameOf(file);
        var report = PayloadCheck.Run(name, data, target.Create(), profile, applied, a.Flag("--nodeps"), trust);
        if (options?.Json == true)
            stdout.Write(Json(report));
        else if (report.Error is { } e)
            stderr.Write(Line(e.ToString()));
        else
            stdout.Write(Summary(report));
        return OwnExitCodes.FromCheck(report.Error);
    }

    /// <summary>A payload's default name, as Xen's <c>load</c> makes it: the file name up to its last dot.</summary>
    public static string NameOf(string path)
    {
        string b = Path.GetFileName(path);
        int dot = b.LastIndexOf('.');
        return dot >= 0 ? b[..dot] : b;
    }

    private static string Line(string s) => s + "\n";

    private static int Usage(TextWriter stderr, string problem) => CommandInput.Usage("check", stderr, problem);

    private static bool TryRead(string path, TextWriter stderr, out byte[] data) => CommandInput.TryRead("check", path, stderr, out data);

    private static string Hex(ReadOnlyMemory<byte> b) => b.IsEmpty ? "-" : Convert.ToHexStringLower(b.Span);

    private static string Summary(CheckReport r)
    {
        var p = r.Loaded!;
        var sb = new StringBuilder("OK\n");
        sb.Append(CultureInfo.InvariantCulture, $"{r.Payload}: accepted by {r.Profile.Name} (hypervisor build-id {Hex(r.HypervisorBuildId)})\n");
        if (r.AppliedUnder.Count > 0)
            sb.Append(CultureInfo.InvariantCulture, $"  stacked on: {string.Join(" -> ", r.AppliedUnder)}\n");
        if (r.Signature is { } v)
            sb.Append(CultureInfo.InvariantCulture, $"  signature: {SignatureOptions.Verdict(v)} (signature policy {r.Trust.Policy.Name()})\n");
        sb.Append(CultureInfo.InvariantCulture, $"  functions: {p.Functions.Count}\n");
        foreach (var f in p.Functions)
        {
            string what = f.NewAddress == 0
                ? $"NOP {f.Entry.NewSize} bytes"
                : $"-> 0x{f.NewAddress:x} ({f.Entry.NewSize} bytes)";
            sb.Append(CultureInfo.InvariantCulture, $"    {(f.Name.Length > 0 ? f.Name : "(unnamed)")} at 0x{f.OldAddress:x} ({f.Entry.OldSize} bytes) {what}{(f.Entry.Expect.Enabled ? $", expects {f.Entry.Expect.Length} bytes" : "")}\n");
        }
        sb.Append(CultureInfo.InvariantCulture, $"  build-id {Hex(p.BuildId)}\n  depends {Hex(p.Depends)}\n");
        if (!p.XenDepends.IsEmpty)
            sb.Append(CultureInfo.InvariantCulture, $"  xen_depends {Hex(p.XenDepends)}\n");
        sb.Append(CultureInfo.InvariantCulture, $"  memory: text {p.Memory.TextSize}, rw {p.Memory.RwSize}, ro {p.Memory.RoSize} bytes; {(p.SafeToReapply ? "may be re-applied after a revert" : "has data: cannot be re-applied after a revert")}\n");
        var hooks = new List<string>();
        if (p.Hooks.Load.Count > 0) hooks.Add($"load {p.Hooks.Load.Count}");
        if (p.Hooks.Unload.Count > 0) hooks.Add($"unload {p.Hooks.Unload.Count}");
        foreach (var (n, slot) in new[] { ("preapply", p.Hooks.PreApply), ("apply", p.Hooks.Apply), ("postapply", p.Hooks.PostApply), ("prerevert", p.Hooks.PreRevert), ("revert", p.Hooks.Revert), ("postrevert", p.Hooks.PostRevert) })
        {
            if (slot != 0)
                hooks.Add(n);
        }
        if (hooks.Count > 0)
            sb.Append(CultureInfo.InvariantCulture, $"  hooks: {string.Join(", ", hooks)}\n");
        if (!p.Metadata.IsEmpty)
            sb.Append(CultureInfo.InvariantCulture, $"  metadata: {Encoding.Latin1.GetString(p.Metadata.Span).TrimEnd('\0').Replace('\0', ';')}\n");
        foreach (string note in r.Notes)
            sb.Append(CultureInfo.InvariantCulture, $"  note: {note}\n");
        return sb.ToString();
    }

    private static string Json(CheckReport r)
    {
        using var ms = new MemoryStream();
        using (var w = new Utf8JsonWriter(ms, new JsonWriterOptions { Indented = true }))
        {
            var p = r.Loaded;
            w.WriteStartObject();
            w.WriteString("payload", r.Payload);
            w.WriteString("profile", r.Profile.Name);
            w.WriteString("verdict", r.Accepted ? "accepted" : "rejected");
            w.WriteString("stage", r.Stage);
            if (r.Error is { } e)
            {
                w.WriteNumber("errno", (int)e.Errno);
                w.WriteString("error", e.Name);
                w.WriteString("message", e.Message);
            }
            else
            {
                w.WriteNull("errno");
                w.WriteNull("error");
                w.WriteString("message", "accepted");
            }
            w.WriteString("hypervisor_build_id", Hex(r.HypervisorBuildId));
            w.WriteString("signature_policy", r.Trust.Policy.Name());
            SignatureOptions.WriteJson(w, r.Signature?.Signature, r.Signature);
            if (r.Signature is { Signature: null } unsigned)
                SignatureOptions.WriteVerification(w, unsigned);
            if (p != null)
            {
                w.WriteString("build_id", Hex(p.BuildId));
                w.WriteString("depends", Hex(p.Depends));
                if (p.XenDepends.IsEmpty) w.WriteNull("xen_depends"); else w.WriteString("xen_depends", Hex(p.XenDepends));
            }
            else
            {
                w.WriteNull("build_id");
                w.WriteNull("depends");
                w.WriteNull("xen_depends");
            }
            w.WriteStartArray("functions");
            foreach (var f in p?.Functions ?? [])
            {
                w.WriteStartObject();
                w.WriteString("name", f.Name);
                w.WriteString("old_addr", $"0x{f.OldAddress:x}");
                w.WriteNumber("old_size", f.Entry.OldSize);
                w.WriteString("new_addr", $"0x{f.NewAddress:x}");
                w.WriteNumber("new_size", f.Entry.NewSize);
                w.WriteBoolean("nop", f.NewAddress == 0);
                w.WriteBoolean("expectation", f.Entry.Expect.Enabled);
                w.WriteEndObject();
            }
            w.WriteEndArray();
            w.WriteStartArray("applied_under");
            foreach (string n in r.AppliedUnder)
                w.WriteStringValue(n);
            w.WriteEndArray();
            w.WriteStartArray("notes");
            foreach (string n in r.Notes)
                w.WriteStringValue(n);
            w.WriteEndArray();
            w.WriteEndObject();
        }
        return Encoding.UTF8.GetString(ms.ToArray()) + "\n";
    }
}
