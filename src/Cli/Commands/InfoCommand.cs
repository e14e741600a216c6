using System.Globalization;
using System.Text;
using System.Text.Json;
using XenLivepatch.Elf;
using XenLivepatch.Signing;
using XenLivepatch.Tooling;

namespace XenLivepatch.Cli;

/// <summary>
/// <c>xen-livepatch info</c>: what a payload holds (<see cref="PayloadInfo"/>) and, with a hypervisor, what it
/// would do to it (<see cref="TargetPreview"/>), as text or JSON.
/// </summary>
internal static class InfoCommand
{
    public const string Help = """
        Usage: xen-livepatch info <payload> [--json] [--target <image> | --symbols <file> --build-id <hex>] [options]
        Describes a payload without loading it: its functions (names, sizes, version, expectations), build-id
        and dependencies, hooks, metadata, sections and relocations. Given the hypervisor, it also loads the
        payload there as the livepatch core would, and shows for each function the first instructions of the
        old code beside the patch that would be written over them. Without --target or --symbols, the hypervisor is
        the running one (real Xen, or the sandbox) when one answers.
          --json                 print one JSON object instead of text
          --target <image>       the hypervisor as an ELF image with symbols (its code is disassembled)
          --symbols <file>       its symbols as /proc/xen/xensyms lists them (no code bytes: the patch alone)
          --build-id <hex>       with --symbols: its build-id (/sys/hypervisor/properties/buildid)
          --arch x86_64|arm64    with --symbols: its architecture (default x86_64)
          --profile <name>       with a hypervisor: xen-4.17 (default), xen-4.22 or seed-2016
          --name <name>          with a hypervisor: the payload's name (default: its file name without the extension)
          --trusted-keys <dir>   check the signature against these keys (PEM certificates or public keys)
        The signature line names the format (appended PKCS#7 or the ELF note .note.Xen.signature), the
        algorithm, the signer and what it covers.
        Any other file is named for what it is (an object without .livepatch.funcs, an executable, a hypervisor
        image, text, compressed data) with why it is not a payload.
        Exit status: 0 when described; 64 for a wrong command line; 65 when the file is not a payload; 66 when
        an input cannot be read.

        """;

    public static int Run(string[] args, TextWriter stdout, TextWriter stderr, ToolOptions? options = null)
    {
        if (args.Contains("--help") || args.Contains("-h"))
        {
            stdout.Write(Help);
            return OwnExitCodes.Success;
        }
        var a = ArgReader.Parse(args, [.. CommandInput.TargetOptions, "--profile", "--name", "--trusted-keys"], ["--json"], [], out string? argError);
        if (a == null || a.Positional.Count != 1)
            return CommandInput.Usage("info", stderr, argError ?? (a!.Positional.Count == 0 ? "which payload? give its file" : $"one payload at a time (got {a.Positional.Count})"));
        if (!CommandInput.TryProfile("info", a.Value("--profile"), stderr, out var profile, out int profileError))
            return profileError;
        string file = a.Positional[0];
        OfflineTarget? target = null;
        if (a.Value("--target") != null || a.Value("--symbols") != null)
        {
            if (!CommandInput.TryTarget("info", a, stderr, out target, out int code))
                return code;
        }
        else if (CommandInput.Running(options) is { Target: { } running } found)
        {
            // Without a target, the running hypervisor when one answers; otherwise the payload alone.
            stderr.Write($"xen-livepatch info: target: {found.Description}\n");
            target = running;
        }
        TrustStore? keys = null;
        if (a.Value("--trusted-keys") is { } dir)
        {
            if (!SignatureOptions.TryKeys("info", dir, stderr, out var k, out int code))
                return code;
            keys = k;
        }
        if (!CommandInput.TryRead("info", file, stderr, out byte[] data))
            return OwnExitCodes.NoInput;
        var kind = FileKind.Of(data);
        if (!kind.IsPayload)
        {
            // Say what it is, so that a wrong file is recognised at once (the hypervisor image given as the payload).
            stderr.Write($"xen-livepatch info: {file} is {kind.Description}, not a livepatch payload: {kind.WhyNot}\n");
            if (options?.Json == true)
            {
                var o = new System.Text.Json.Nodes.JsonObject
                {
                    ["file"] = Path.GetFileName(file),
                    ["size"] = data.Length,
                    ["kind"] = kind.Kind,
                    ["description"] = kind.Description,
                };
                stdout.Write(JsonEnvelope.Write(o));
            }
            return OwnExitCodes.DataError;
        }
        PayloadSignatures.TryInspect(data, out var signature);
        var verdict = keys == null ? null : PayloadSignatures.Verify(data, keys);
        if (!PayloadInfo.TryRead(Path.GetFileName(file), data, out var info, out string? error))
        {
            stderr.Write($"xen-livepatch info: {file}: {error}\n");
            return OwnExitCodes.NoInput;
        }
        var preview = target == null ? null : TargetPreview.Create(a.Value("--name") ?? CheckCommand.NameOf(file), data, target, profile);
        stdout.Write(options?.Json == true ? Json(info, preview, signature, verdict) : Text(info, preview, signature, verdict));
        return OwnExitCodes.Success;
    }

    private static string Hex(ReadOnlyMemory<byte> b) => b.IsEmpty ? "-" : Convert.ToHexStringLower(b.Span);

    private static string Bytes(ReadOnlySpan<byte> b)
    {
        var sb = new StringBuilder(b.Length * 3);
        foreach (byte x in b)
            sb.Append(sb.Length == 0 ? "" : " ").Append(x.ToString("x2", CultureInfo.InvariantCulture));
        return sb.ToString();
    }

    private static string MachineName(ElfMachine m) => m switch
    {
        ElfMachine.X86_64 => "x86-64",
        ElfMachine.AArch64 => "arm64",
        _ => m.GetSpecName() ?? $"machine {(ushort)m}",
    };

    private static string Where(FunctionInfo f) => f.Entry.OldAddr == 0 ? "old_addr 0 (resolved by name at load)" : $"old_addr 0x{f.Entry.OldAddr:x}";

    private static string Text(PayloadInfo info, TargetPreview? preview, SignatureInfo? signature, SignatureVerdict? verdict)
    {
        var c = CultureInfo.InvariantCulture;
        var sb = new StringBuilder();
        sb.Append(c, $"{info.FileName}: {MachineName(info.Machine)} payload, {info.Size} bytes, {info.Sections.Count} sections\n");
        sb.Append(c, $"  build-id     {Hex(info.BuildId)}\n");
        sb.Append(c, $"  depends      {Hex(info.Depends)}\n");
        sb.Append(c, $"  xen_depends  {Hex(info.XenDepends)}\n");
        sb.Append(c, $"  metadata     {(info.Metadata.Count == 0 ? "-" : string.Join("; ", info.Metadata))}\n");
        sb.Append(c, $"  signature    {(signature == null ? "none" : SignatureOptions.Describe(signature))}\n");
        if (signature != null && SignatureOptions.Coverage(signature) is { Length: > 0 } coverage)
            sb.Append(c, $"               {coverage}\n");
        if (verdict != null)
            sb.Append(c, $"               {SignatureOptions.Verdict(verdict)}\n");
        sb.Append(c, $"functions: {info.Functions.Count}{(info.FuncsVersion != 0 ? $" (version {info.FuncsVersion})" : "")}\n");
        foreach (var f in info.Functions)
        {
            string what = f.IsNop ? "NOP" : $"replaced by {f.New?.ToString() ?? $"0x{f.Entry.NewAddr:x}"}";
            sb.Append(c, $"  [{f.Index}] {f.Name ?? "(no name)"}: {what}, new_size {f.Entry.NewSize}, old_size {f.Entry.OldSize}, {Where(f)}\n");
            if (f.Entry.Expect.Enabled)
                sb.Append(c, $"      expects {f.Entry.Expect.Length} bytes: {Bytes(f.Entry.Expect.Data.Span[..Math.Min(f.Entry.Expect.Length, f.Entry.Expect.Data.Length)])}\n");
        }
        sb.Append("hooks:").Append(info.Hooks.Count == 0 ? " none\n" : "\n");
        foreach (var h in info.Hooks)
            sb.Append(c, $"  {h.Kind,-11} {string.Join(", ", h.Functions)}\n");
        sb.Append("sections:\n");
        int width = info.Sections.Select(s => s.Name.Length).Append(4).Max();
        sb.Append(c, $"  [Nr] {"Name".PadRight(width)}  {"Type",-9} {"Flags",-5} {"Size",8} {"Align",5} {"Relocs",6}\n");
        foreach (var s in info.Sections)
        {
            string row = string.Create(c, $"  [{s.Index,2}] {s.Name.PadRight(width)}  {s.Type,-9} {s.Flags,-5} {"0x" + s.Size.ToString("x", c),8} {s.Alignment,5} {(s.Relocations == 0 ? "" : s.Relocations.ToString(c)),6}");
            sb.Append(row.TrimEnd()).Append('\n');
        }
        sb.Append(c, $"relocations: {info.RelocationCount}");
        if (info.RelocationTypes.Count > 0)
            sb.Append(" (").Append(string.Join(", ", info.RelocationTypes.Select(t => $"{t.Type} {t.Count}"))).Append(')');
        sb.Append('\n');
        foreach (string p in info.Problems)
            sb.Append(c, $"problem: {p}\n");
        if (preview != null)
            AppendPreview(sb, preview);
        return sb.ToString();
    }

    private static void AppendPreview(StringBuilder sb, TargetPreview t)
    {
        var c = CultureInfo.InvariantCulture;
        sb.Append(c, $"on {t.Target} (build-id {Hex(t.BuildId)}, {t.Profile.Name}): ");
        if (t.UploadError is { } e)
        {
            sb.Append(c, $"refused at upload: {e}\n");
            return;
        }
        sb.Append(c, $"loads; depends on {t.DependsOn}\n");
        foreach (var f in t.Functions)
        {
            string what = f.NewAddress == 0 ? $"{f.Patch.Length} bytes of NOPs" : $"jump to 0x{f.NewAddress:x}";
            string offset = f.PatchOffset == 0 ? "" : $", written after its first {f.PatchOffset} bytes (ENDBR64)";
            sb.Append(c, $"  {f.Name} at 0x{f.OldAddress:x}, {f.OldSize} bytes: {what}{offset}\n");
            var left = f.Before.Select(Line).ToList();
            var right = f.After.Select(Line).ToList();
            int width = Math.Max("old code".Length, left.Count == 0 ? 0 : left.Max(l => l.Length));
            sb.Append(c, $"    {"old code".PadRight(width)}  | patched\n");
            for (int i = 0; i < Math.Max(left.Count, right.Count); i++)
            {
                string l = i < left.Count ? left[i] : "";
                string r = i < right.Count ? right[i] : "";
                sb.Append(string.Create(c, $"    {l.PadRight(width)}  | {r}").TrimEnd()).Append('\n');
            }
            if (f.Leftover > 0)
                sb.Append(c, $"    {"".PadRight(width)}  | ({f.Leftover} more bytes of the old instruction, never reached)\n");
            if (f.Note != null)
                sb.Append(c, $"    note: {f.Note}\n");
        }
    }

    private static string Line(Instruction i) => string.Create(CultureInfo.InvariantCulture, $"{i.Address:x}: {Bytes(i.Bytes),-23} {i.Text}");

    private static string Json(PayloadInfo info, TargetPreview? preview, SignatureInfo? signature, SignatureVerdict? verdict)
    {
        using var ms = new MemoryStream();
        using (var w = new Utf8JsonWriter(ms, new JsonWriterOptions { Indented = true }))
        {
            w.WriteStartObject();
            w.WriteString("file", info.FileName);
            w.WriteNumber("size", info.Size);
            w.WriteString("machine", MachineName(info.Machine));
            w.WriteString("build_id", Hex(info.BuildId));
            w.WriteString("depends", Hex(info.Depends));
            w.WriteString("xen_depends", Hex(info.XenDepends));
            w.WriteStartArray("metadata");
            foreach (string m in info.Metadata)
                w.WriteStringValue(m);
            w.WriteEndArray();
            SignatureOptions.WriteJson(w, signature, verdict);
            if (signature == null && verdict != null)
                SignatureOptions.WriteVerification(w, verdict);
            w.WriteNumber("funcs_version", info.FuncsVersion);
            w.WriteStartArray("functions");
            foreach (var f in info.Functions)
            {
                w.WriteStartObject();
                w.WriteNumber("index", f.Index);
                if (f.Name == null) w.WriteNull("name"); else w.WriteString("name", f.Name);
                w.WriteBoolean("nop", f.IsNop);
                if (f.New == null) w.WriteNull("new"); else w.WriteString("new", f.New.ToString());
                w.WriteNumber("new_size", f.Entry.NewSize);
                w.WriteString("old_addr", $"0x{f.Entry.OldAddr:x}");
                w.WriteNumber("old_size", f.Entry.OldSize);
                w.WriteNumber("version", f.Entry.Version);
                if (f.Entry.Expect.Enabled)
                {
                    w.WriteStartObject("expect");
                    w.WriteNumber("length", f.Entry.Expect.Length);
                    w.WriteString("bytes", Convert.ToHexStringLower(f.Entry.Expect.Data.Span[..Math.Min(f.Entry.Expect.Length, f.Entry.Expect.Data.Length)]));
                    w.WriteEndObject();
                }
                else
                {
                    w.WriteNull("expect");
                }
                w.WriteEndObject();
            }
            w.WriteEndArray();
            w.WriteStartObject("hooks");
            foreach (var h in info.Hooks)
            {
                w.WriteStartArray(h.Kind);
                foreach (string fn in h.Functions)
                    w.WriteStringValue(fn);
                w.WriteEndArray();
            }
            w.WriteEndObject();
            w.WriteStartArray("sections");
            foreach (var s in info.Sections)
            {
                w.WriteStartObject();
                w.WriteNumber("index", s.Index);
                w.WriteString("name", s.Name);
                w.WriteString("type", s.Type);
                w.WriteString("flags", s.Flags);
                w.WriteNumber("size", s.Size);
                w.WriteNumber("align", s.Alignment);
                w.WriteNumber("relocations", s.Relocations);
                w.WriteEndObject();
            }
            w.WriteEndArray();
            w.WriteStartObject("relocations");
            w.WriteNumber("total", info.RelocationCount);
            foreach (var (type, count) in info.RelocationTypes)
                w.WriteNumber(type, count);
            w.WriteEndObject();
            w.WriteStartArray("problems");
            foreach (string p in info.Problems)
                w.WriteStringValue(p);
            w.WriteEndArray();
            if (preview == null)
                w.WriteNull("target");
            else
                WritePreview(w, preview);
            w.WriteEndObject();
        }
        return Encoding.UTF8.GetString(ms.ToArray()) + "\n";
    }

    private static void WritePreview(Utf8JsonWriter w, TargetPreview t)
    {
        w.WriteStartObject("target");
        w.WriteString("name", t.Target);
        w.WriteString("build_id", Hex(t.BuildId));
        w.WriteString("profile", t.Profile.Name);
        w.WriteBoolean("loads", t.UploadError == null);
        if (t.UploadError is { } e)
        {
            w.WriteNumber("errno", (int)e.Errno);
            w.WriteString("error", e.Name);
            w.WriteString("message", e.Message);
        }
        if (t.DependsOn == null) w.WriteNull("depends_on"); else w.WriteString("depends_on", t.DependsOn);
        w.WriteStartArray("functions");
        foreach (var f in t.Functions)
        {
            w.WriteStartObject();
            w.WriteString("name", f.Name);
            w.WriteString("old_addr", $"0x{f.OldAddress:x}");
            w.WriteNumber("old_size", f.OldSize);
            w.WriteString("new_addr", $"0x{f.NewAddress:x}");
            w.WriteNumber("patch_offset", f.PatchOffset);
            w.WriteString("patch", Convert.ToHexStringLower(f.Patch));
            WriteInstructions(w, "old_code", f.Before);
            WriteInstructions(w, "patched", f.After);
            w.WriteNumber("leftover", f.Leftover);
            if (f.Note == null) w.WriteNull("note"); else w.WriteString("note", f.Note);
            w.WriteEndObject();
        }
        w.WriteEndArray();
        w.WriteEndObject();
    }

    private static void WriteInstructions(Utf8JsonWriter w, string name, IReadOnlyList<Instruction> list)
    {
        w.WriteStartArray(name);
        foreach (var i in list)
        {
            w.WriteStartObject();
            w.WriteString("address", $"0x{i.Address:x}");
            w.WriteString("bytes", Convert.ToHexStringLower(i.Bytes));
            w.WriteString("text", i.Text);
            w.WriteEndObject();
        }
        w.WriteEndArray();
    }
}
