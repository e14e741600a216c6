using System.Globalization;
using System.Text;
using System.Text.Json;
using XenLivepatch.Hypervisor;
using XenLivepatch.Tooling;

namespace XenLivepatch.Cli;

/// <summary>
/// <c>xen-livepatch build</c>: replacement objects in, a payload for one hypervisor out (see
/// <see cref="PayloadBuilder"/>). Nothing is written unless the payload is made and the livepatch core accepts it.
/// </summary>
internal static class BuildCommand
{
    public const string Help = """
        Usage: xen-livepatch build -o <out.livepatch> [--target <image> | --symbols <file> --build-id <hex>] [options] <object.o>...
        Links the replacement objects (what gcc -c makes) into a livepatch payload for that hypervisor, adding
        .livepatch.funcs, .livepatch.depends, .livepatch.xen_depends, .modinfo and the payload's own build-id, as
        Xen's recipe does with objcopy and ld -r. By default every global function of the objects that has the
        name of a hypervisor function replaces it. The payload is written only once the livepatch core accepts it.
        Without --target or --symbols, the target is the running hypervisor (real Xen, or the sandbox) when one answers.
          -o, --output <file>       the payload to write
          --name <name>             its name in messages and in the check (default: the output's name without extension)
          --target <image>          the hypervisor as an ELF image with symbols (xen-syms, artifacts/sandbox/xen-syms)
          --symbols <file>          its symbols as /proc/xen/xensyms lists them; functions' sizes are then the
                                    distance to the next symbol (see --old-size)
          --build-id <hex>          with --symbols: its build-id (/sys/hypervisor/properties/buildid)
          --arch x86_64|arm64       with --symbols: its architecture (default x86_64)
          --profile <name>          xen-4.17 (default) or xen-4.22: version 2 functions and
                                    .livepatch.xen_depends; seed-2016 (the 2016 design): version 1
                                    functions, no .livepatch.xen_depends
          --depends <hex>           the build-id .livepatch.depends names (default: the hypervisor's)
          --depends-on <payload>    stack on that payload: its build-id, and the objects may use its symbols
          --replace <old>=<new>     the objects' function <new> replaces the hypervisor's <old> (a static
                                    function of the hypervisor is file#name, as in /proc/xen/xensyms)
          --nop <func>:<len>        NOP out the first <len> bytes of <func>; -<n> for all but its last <n> bytes
          --expect <func>=<hex>     apply only while <func> starts with these bytes (an expectation)
          --expect <func>:<len>     the same with its first <len> bytes as the --target image has them
          --old-size <func>=<n>     the size of the hypervisor's <func>, where its listing has none
          --metadata <key>=<value>  a .modinfo string, shown by 'xen-livepatch list'
          --resolve                 store the old functions' addresses (default: 0, Xen resolves the names)
        """ + PayloadSigning.Help + """
        Options naming functions or metadata may be repeated.
        Exit status: 0 when written; 64 for a wrong command line; 65 when the payload cannot be made (the
        message says why and what to do); 66 when an input cannot be read; 73 when the output cannot be written.

        """;

    private static readonly Dictionary<string, string> s_aliases = new(StringComparer.Ordinal) { ["-o"] = "--output" };

    public static int Run(string[] args, TextWriter stdout, TextWriter stderr, ToolOptions? options = null)
    {
        if (args.Contains("--help") || args.Contains("-h"))
        {
            stdout.Write(Help);
            return OwnExitCodes.Success;
        }
        var a = ArgReader.Parse(args,
            [.. CommandInput.TargetOptions, .. PayloadSigning.Options, "--output", "--name", "--profile", "--depends", "--depends-on", "--replace", "--nop", "--expect", "--old-size", "--metadata"],
            ["--resolve"], [], out string? argError, s_aliases);
        if (a == null)
            return Usage(stderr, argError!);
        string? output = a.Value("--output");
        if (output == null)
            return Usage(stderr, "where to? give -o <out.livepatch>");
        string name = a.Value("--name") ?? CheckCommand.NameOf(output);
        if (name.Length == 0 || name.Length >= Abi.Livepatch.NameSize || name.Contains('\0', StringComparison.Ordinal))
            return Usage(stderr, $"the name '{name}' must have 1 to {Abi.Livepatch.NameSize - 1} characters (Xen's limit); give --name");
        if (!CommandInput.TryProfile("build", a.Value("--profile"), stderr, out var profile, out int profileError))
            return profileError;
        if (a.Value("--depends") != null && a.Value("--depends-on") != null)
            return Usage(stderr, "--depends and --depends-on both say what the payload depends on: give one");
        if (!TryOptions(a, stderr, out var replace, out var nops, out var expect, out var oldSizes, out int code))
            return code;

        if (!PayloadSigning.TryCreate("build", a, stderr, out var signing, out code))
            return code;
        using var signingKey = signing;
        if (!CommandInput.TryTarget("build", a, stderr, out var target, out code, options))
            return code;
        ReadOnlyMemory<byte>? depends = null;
        if (a.Value("--depends") is { } hex)
        {
            if (!CommandInput.TryHex(hex, out byte[] id) || id.Length == 0)
                return Usage(stderr, $"--depends '{hex}' is not a hexadecimal build-id");
            depends = id;
        }
        StackedPayload? dependsOn = null;
        if (a.Value("--depends-on") is { } under)
        {
            if (!CommandInput.TryRead("build", under, stderr, out byte[] data))
                return OwnExitCodes.NoInput;
            dependsOn = new StackedPayload(CheckCommand.NameOf(under), data);
        }
        var objects = new List<LinkInput>();
        foreach (string path in a.Positional)
        {
            if (!CommandInput.TryReadElf("build", path, stderr, out var file))
                return OwnExitCodes.NoInput;
            objects.Add(new LinkInput(Path.GetFileName(path), file));
        }
        var request = new PayloadBuildRequest
        {
            Name = name,
            Target = target,
            Objects = objects,
            Profile = profile,
            Depends = depends,
            DependsOn = dependsOn,
            Replace = replace,
            Nops = nops,
            Expect = expect,
            OldSizes = oldSizes,
            Metadata = a.Values("--metadata"),
            ResolveOldAddresses = a.Flag("--resolve"),
        };
        foreach (string m in request.Metadata)
        {
            if (m.Length == 0 || m.Contains('\0', StringComparison.Ordinal))
                return Usage(stderr, "a --metadata string is empty or holds a NUL; give key=value");
        }
        if (!PayloadBuilder.TryBuild(request, out var result, out var problem))
        {
            stderr.Write($"xen-livepatch build: {problem}\n");
            return OwnExitCodes.DataError;
        }
        byte[] written = result.Data;
        if (signing != null)
        {
            if (!signing.TrySign("build", written, stderr, out written))
                return OwnExitCodes.DataError;
        }
        if (!CommandInput.TryWrite("build", output, written, stderr))
            return OwnExitCodes.CantCreate;
        if (options?.Json == true)
        {
            stdout.Write(Json(output, written.Length, target, profile, result, signing?.Describe(written)));
            return OwnExitCodes.Success;
        }
        stdout.Write(Summary(output, target, profile, result));
        if (signing != null)
            stdout.Write($"  {signing.Describe(written)}\n");
        return OwnExitCodes.Success;
    }

    private static int Usage(TextWriter stderr, string problem) => CommandInput.Usage("build", stderr, problem);

    private static bool TryOptions(ArgReader a, TextWriter stderr, out List<FunctionReplacement> replace, out List<NopRequest> nops,
        out List<ExpectRequest> expect, out Dictionary<string, uint> oldSizes, out int code)
    {
        replace = [];
        nops = [];
        expect = [];
        oldSizes = new Dictionary<string, uint>(StringComparer.Ordinal);
        code = OwnExitCodes.Success;
        foreach (string r in a.Values("--replace"))
        {
            int eq = r.IndexOf('=', StringComparison.Ordinal);
            if (eq <= 0 || eq == r.Length - 1)
                return Bad(stderr, $"--replace '{r}': give <old>=<new> (the hypervisor's function, then the objects')", out code);
            replace.Add(new FunctionReplacement(r[..eq], r[(eq + 1)..]));
        }
        foreach (string n in a.Values("--nop"))
        {
            int colon = n.LastIndexOf(':');
            if (colon <= 0 || !int.TryParse(n[(colon + 1)..], NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out int length) || length == 0)
                return Bad(stderr, $"--nop '{n}': give <func>:<len> (bytes from its start) or <func>:-<n> (all but its last n bytes)", out code);
            nops.Add(new NopRequest(n[..colon], Math.Abs(length), length < 0));
        }
        foreach (string x in a.Values("--expect"))
        {
            int eq = x.IndexOf('=', StringComparison.Ordinal);
            int colon = x.LastIndexOf(':');
            if (eq > 0 && CommandInput.TryHex(x[(eq + 1)..], out byte[] bytes) && bytes.Length > 0)
                expect.Add(new ExpectRequest(x[..eq], bytes, bytes.Length));
            else if (eq < 0 && colon > 0 && int.TryParse(x[(colon + 1)..], NumberStyles.None, CultureInfo.InvariantCulture, out int length) && length > 0)
                expect.Add(new ExpectRequest(x[..colon], null, length));
            else
                return Bad(stderr, $"--expect '{x}': give <func>=<hex bytes> or <func>:<length>", out code);
        }
        foreach (string s in a.Values("--old-size"))
        {
            int eq = s.IndexOf('=', StringComparison.Ordinal);
            if (eq <= 0 || !TryNumber(s[(eq + 1)..], out uint size) || size == 0)
                return Bad(stderr, $"--old-size '{s}': give <func>=<bytes> (decimal, or hex with 0x)", out code);
            oldSizes[s[..eq]] = size;
        }
        return true;
    }

    private static bool Bad(TextWriter stderr, string problem, out int code)
    {
        code = Usage(stderr, problem);
        return false;
    }

    private static bool TryNumber(string s, out uint value) =>
        s.StartsWith("0x", StringComparison.OrdinalIgnoreCase)
            ? uint.TryParse(s.AsSpan(2), NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out value)
            : uint.TryParse(s, NumberStyles.None, CultureInfo.InvariantCulture, out value);

    private static string Json(string output, int size, OfflineTarget target, LivepatchProfile profile, PayloadBuildResult r, string? signature)
    {
        using var ms = new MemoryStream();
        using (var w = new Utf8JsonWriter(ms, JsonEnvelope.WriterOptions))
        {
            w.WriteStartObject();
            w.WriteString("output", output);
            w.WriteNumber("size", size);
            w.WriteString("build_id", Convert.ToHexStringLower(r.BuildId));
            w.WriteString("target", target.Description);
            w.WriteString("profile", profile.Name);
            w.WriteStartArray("functions");
            foreach (var f in r.Functions)
            {
                w.WriteStartObject();
                w.WriteString("name", f.Name);
                w.WriteString("old_addr", $"0x{f.OldAddress:x}");
                w.WriteBoolean("old_addr_stored", f.OldAddressStored);
                w.WriteNumber("old_size", f.OldSize);
                if (f.NewSymbol == null) w.WriteNull("new"); else w.WriteString("new", f.NewSymbol);
                w.WriteNumber("new_size", f.NewSize);
                w.WriteBoolean("nop", f.NewSymbol == null);
                w.WriteBoolean("expectation", f.Expect.Enabled);
                w.WriteEndObject();
            }
            w.WriteEndArray();
            w.WriteStartObject("depends");
            w.WriteString("of", r.Depends.Of);
            w.WriteString("build_id", Convert.ToHexStringLower(r.Depends.BuildId.Span));
            w.WriteEndObject();
            if (signature == null) w.WriteNull("signature"); else w.WriteString("signature", signature);
            w.WriteStartArray("notes");
            foreach (string note in r.Notes)
                w.WriteStringValue(note);
            w.WriteEndArray();
            w.WriteEndObject();
        }
        return Encoding.UTF8.GetString(ms.ToArray()) + "\n";
    }

    private static string Summary(string output, OfflineTarget target, LivepatchProfile profile, PayloadBuildResult r)
    {
        var sb = new StringBuilder();
        var c = CultureInfo.InvariantCulture;
        sb.Append(c, $"{output}: {r.Data.Length} bytes, build-id {Convert.ToHexStringLower(r.BuildId)}, for {target.Description} ({profile.Name})\n");
        foreach (var f in r.Functions)
        {
            string what = f.NewSymbol == null ? $"NOP over {f.NewSize} bytes" : $"replaced by {f.NewSymbol} ({f.NewSize} bytes)";
            string where = f.OldAddressStored ? $"at 0x{f.OldAddress:x}" : $"(0x{f.OldAddress:x}, resolved by name at load)";
            string expect = f.Expect.Enabled ? $", expects {f.Expect.Length} bytes" : "";
            sb.Append(c, $"  {f.Name} {where}, {f.OldSize} bytes: {what}{expect}\n");
        }
        sb.Append(c, $"  depends on {r.Depends.Of} ({Convert.ToHexStringLower(r.Depends.BuildId.Span)})\n");
        foreach (string note in r.Notes)
            sb.Append(c, $"  note: {note}\n");
        return sb.ToString();
    }
}
