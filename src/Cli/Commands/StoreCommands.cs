using System.Globalization;
using System.Text;
using System.Text.Json;
using XenLivepatch.Control;
using XenLivepatch.Host;

namespace XenLivepatch.Cli;

/// <summary>
/// The install store's commands (kpatch's install, uninstall, list and load --all, for Xen): <c>install</c>,
/// <c>uninstall</c>, <c>list --installed</c> and <c>apply-installed</c>, the one the boot unit runs.
/// </summary>
internal static class StoreCommands
{
    /// <summary>The kernel command line option that turns boot-time apply off, as kpatch's <c>kpatch.enable=0</c>.</summary>
    public const string EnableOption = "xen-livepatch.enable";

    private const string StoreOptions =
        "  --store <dir>          the stores' root (default $XEN_LIVEPATCH_STORE, else /var/lib/xen-livepatch)\n" +
        "  --build-id <hex>       the hypervisor's build-id (default: the running one's, from XENVER_build_id)\n";

    public static readonly string InstallHelp = $"""
        Usage: xen-livepatch [--xen | --sandbox PATH] install [options] <payload>...
        Keeps payloads in the install store of the hypervisor they were made for, <root>/<build-id>/, to be applied
        again at every boot of it ('xen-livepatch apply-installed', run by xen-livepatch.service). A payload whose
        .livepatch.xen_depends is not that build-id is refused; all the payloads are installed, or none. Each is
        written to a temporary file, flushed to the disk and renamed, then the store's index likewise: a crash or a
        full disk leaves the store as it was before or after, never half-written. Installing a name again replaces it.
        A payload the signature policy refuses is not installed, nor any other given with it.
        {StoreOptions}{SignatureOptions.HostHelp}  --name <name>          the payload's name (one payload; default: its file name up to the last dot)
          --replace              apply it with REPLACE: at boot, it takes the place of every payload installed before it
          --nodeps               apply it with NODEPS whatever is below it
          --json                 one JSON object: store, build_id, installed
        Exit status: 0 installed; 1 the store could not be changed (nothing was); 64 a wrong command line;
        65 a payload for another hypervisor, or one the signature policy refuses; 66 a payload cannot be read.

        """;

    public static readonly string UninstallHelp = $"""
        Usage: xen-livepatch [--xen | --sandbox PATH] uninstall [options] <name>...
        Removes payloads from the install store (the index first, then the file). The hypervisor is not touched:
        'xen-livepatch revert' and 'unload' take a payload off it.
        {StoreOptions}  --json                 one JSON object: store, build_id, uninstalled
        Exit status: 0 removed; 1 a name is not installed, or the store could not be changed; 64 a wrong command line.

        """;

    public static readonly string ListInstalledHelp = $"""
        Usage: xen-livepatch [--xen | --sandbox PATH] list --installed [options]
        Lists the install store: each payload's order, name, flags, size and checksum, and whether its file is
        whole (present, the size and SHA-256 installed, made for that hypervisor). Without --installed, 'list' is
        Xen's: the payloads the hypervisor has loaded.
        {StoreOptions}  --all                  every build-id's store under the root
          --json                 one JSON object: stores, each with build_id, directory, payloads, problems
        Exit status: 0 every file is whole; 1 a file or the index has a problem (printed); 64 a wrong command line.

        """;

    public static readonly string ApplyInstalledHelp = $"""
        Usage: xen-livepatch [--xen | --sandbox PATH] apply-installed [options]
        Applies the payloads installed for the running hypervisor (what xen-livepatch.service runs at boot, before
        guests start). Idempotent: payloads already applied are left alone; the others are uploaded and applied in
        dependency order (ties in install order), from the last one installed with --replace on. A failure is
        reported and the payloads that do not depend on the failed one are still applied; nothing else is
        reverted or unloaded. Skipped, with exit status 0, when the kernel command line has {EnableOption}=0
        (as kpatch.enable=0).
          --store <dir>          the stores' root (default $XEN_LIVEPATCH_STORE, else /var/lib/xen-livepatch)
          --dry-run              print the plan, change nothing
          --json                 one JSON object (converge's, schema 1, with the store and its problems)
          --timeout <ms>         each action's deadline for stopping the CPUs (default 30)
          --cmdline <file>       the kernel command line to read (default /proc/cmdline)
        {SignatureOptions.HostHelp}A payload the signature policy refuses is reported and left out, with what depends on it, like a damaged file.
        Exit status: 0 every installed payload is applied (or skipped by the command line); 1 one is not (why is
        printed); 64 a wrong command line.

        """;

    private static string Hex(string s) => s.Length > 16 ? s[..16] : s;

    // The store for --build-id, or for the running hypervisor's build-id through the session's client.
    private static async Task<(InstallStore? Store, int Code)> StoreAsync(Session s, string command, ArgReader a, bool needRunning = false)
    {
        string root = InstallStore.RootFrom(a.Value("--store"));
        if (a.Value("--build-id") is { } hex && !needRunning)
        {
            if (!CommandInput.TryHex(hex, out byte[] id) || id.Length == 0)
                return (null, CommandInput.Usage(command, s.Stderr, $"--build-id '{hex}' is not a hexadecimal build-id"));
            return (new InstallStore(root, Convert.ToHexStringLower(id)), 0);
        }
        var client = await s.ClientAsync().ConfigureAwait(false);
        if (client == null)
        {
            if (!s.Json)
                s.Stderr.Write($"xen-livepatch {command}: the store is chosen by the running hypervisor's build-id; without one, give --build-id HEX\n");
            return (null, ExitCodes.Failure);
        }
        var r = await client.GetBuildIdAsync(s.CancellationToken).ConfigureAwait(false);
        if (!r.Result.Succeeded)
        {
            s.Err($"xen-livepatch {command}: {client.Transport.Description} did not give its build-id ({XenErrors.Name(r.Result.Errno)}: {XenErrors.Message(r.Result.Errno)}); give --build-id HEX\n");
            return (null, ExitCodes.Failure);
        }
        return (new InstallStore(root, r.Hex), 0);
    }

    public static async Task<int> InstallAsync(string[] args, ToolOptions options, TextWriter stdout, TextWriter stderr, ToolHost host, CancellationToken cancellationToken)
    {
        var a = ArgReader.Parse(args, ["--store", "--build-id", "--name", .. SignatureOptions.Options], ["--replace", "--nodeps", "--json"], [], out string? argError);
        if (a == null || a.Positional.Count == 0)
            return CommandInput.Usage("install", stderr, argError ?? "install what? give payload files");
        if (!SignatureOptions.TryHostTrust("install", a, stderr, out var trust, out int trustCode))
            return trustCode;
        if (a.Value("--name") != null && a.Positional.Count != 1)
            return CommandInput.Usage("install", stderr, "--name names one payload; give one file with it");
        if (a.Flag("--replace") && a.Positional.Count != 1)
            return CommandInput.Usage("install", stderr, "--replace takes one payload (it takes the place of every payload installed before it)");
        var files = new List<Host.PayloadFile>();
        foreach (string path in a.Positional)
        {
            if (!Host.PayloadFile.TryRead(path, a.Value("--name"), out var f, out string? error))
            {
                stderr.Write($"xen-livepatch install: {error}\n");
                return OwnExitCodes.NoInput;
            }
            files.Add(f);
        }
        bool json = options.Json || a.Flag("--json");
        await using var s = new Session("install", options with { Json = json }, stdout, stderr, host, cancellationToken);
        var refused = PayloadFileTrust.Refusals(files, trust);
        if (refused.Count > 0)
        {
            // Checked before the store is chosen: nothing is written, and no hypervisor is needed to say so.
            foreach (string r in refused)
                s.Err($"xen-livepatch install: {r}; nothing was installed (sign it with 'xen-livepatch sign', or see --signature-policy)\n");
            return Finish(s, OwnExitCodes.DataError, null, "installed", []);
        }
        var (store, code) = await StoreAsync(s, "install", a).ConfigureAwait(false);
        if (store == null)
            return Finish(s, code, null, "installed", []);
        var foreign = files.FirstOrDefault(f => f.XenDepends != store.BuildId);
        if (!store.TryInstall(files, a.Flag("--replace"), a.Flag("--nodeps"), out var installed, out string? problem))
        {
            s.Err($"xen-livepatch install: {problem}\n");
            return Finish(s, foreign != null ? OwnExitCodes.DataError : ExitCodes.Failure, store, "installed", []);
        }
        var c = CultureInfo.InvariantCulture;
        foreach (var e in installed)
        {
            string flags = (e.Replace ? ", replace" : "") + (e.NoDeps ? ", nodeps" : "");
            s.Out(string.Create(c, $"installed {e.Name} ({e.Size} bytes, sha256 {Hex(e.Sha256)}…{flags}) as #{e.Order} in {store.Directory}\n"));
        }
        return Finish(s, 0, store, "installed", installed);
    }

    public static async Task<int> UninstallAsync(string[] args, ToolOptions options, TextWriter stdout, TextWriter stderr, ToolHost host, CancellationToken cancellationToken)
    {
        var a = ArgReader.Parse(args, ["--store", "--build-id"], ["--json"], [], out string? argError);
        if (a == null || a.Positional.Count == 0)
            return CommandInput.Usage("uninstall", stderr, argError ?? "uninstall what? give payload names (see 'xen-livepatch list --installed')");
        bool json = options.Json || a.Flag("--json");
        await using var s = new Session("uninstall", options with { Json = json }, stdout, stderr, host, cancellationToken);
        var (store, code) = await StoreAsync(s, "uninstall", a).ConfigureAwait(false);
        if (store == null)
            return Finish(s, code, null, "uninstalled", []);
        var removed = new List<InstalledPayload>();
        int exit = 0;
        foreach (string name in a.Positional)
        {
            if (store.TryUninstall(name, out var r, out string? problem))
            {
                removed.Add(r!);
                s.Out($"uninstalled {name} from {store.Directory}\n");
            }
            else
            {
                s.Err($"xen-livepatch uninstall: {problem}\n");
                exit = ExitCodes.Failure;
            }
        }
        return Finish(s, exit, store, "uninstalled", removed);
    }

    private static int Finish(Session s, int exit, InstallStore? store, string member, IReadOnlyList<InstalledPayload> entries)
    {
        if (!s.Json)
            return exit;
        s.Write(HostCommands.Json(w =>
        {
            JsonReport.Header(w, s.Command, exit, s);
            if (store != null)
            {
                w.WriteString("store", store.Directory);
                w.WriteString("build_id", store.BuildId);
            }
            w.WriteStartArray(member);
            foreach (var e in entries)
                Entry(w, e, null);
            w.WriteEndArray();
            HostCommands.Messages(w, s);
            w.WriteEndObject();
        }));
        return exit;
    }

    private static void Entry(Utf8JsonWriter w, InstalledPayload e, string? problem)
    {
        w.WriteStartObject();
        e.WriteMembers(w);
        HostCommands.NullableString(w, "problem", problem);
        w.WriteEndObject();
    }

    public static async Task<int> ListInstalledAsync(string[] args, ToolOptions options, TextWriter stdout, TextWriter stderr, ToolHost host, CancellationToken cancellationToken)
    {
        var a = ArgReader.Parse(args, ["--store", "--build-id"], ["--installed", "--all", "--json"], [], out string? argError);
        if (a == null || a.Positional.Count != 0)
            return CommandInput.Usage("list", stderr, argError ?? $"unexpected argument '{a!.Positional[0]}'");
        bool json = options.Json || a.Flag("--json");
        await using var s = new Session("list-installed", options with { Json = json }, stdout, stderr, host, cancellationToken);
        var stores = new List<InstallStore>();
        if (a.Flag("--all"))
        {
            string root = InstallStore.RootFrom(a.Value("--store"));
            stores.AddRange(InstallStore.BuildIds(root).Select(id => new InstallStore(root, id)));
            if (stores.Count == 0)
                s.Out($"nothing is installed under {root}\n");
        }
        else
        {
            var (store, code) = await StoreAsync(s, "list", a).ConfigureAwait(false);
            if (store == null)
                return FinishList(s, code, []);
            stores.Add(store);
        }
        int exit = 0;
        var listed = new List<(InstallStore Store, IReadOnlyList<StoredPayload> Payloads, string? Problem)>();
        var c = CultureInfo.InvariantCulture;
        foreach (var store in stores)
        {
            if (!store.TryReadAll(out var payloads, out string? problem))
            {
                s.Err($"xen-livepatch list: {problem}\n");
                listed.Add((store, [], problem));
                exit = ExitCodes.Failure;
                continue;
            }
            listed.Add((store, payloads, null));
            var text = new StringBuilder();
            text.Append(c, $"{store.Directory}: {payloads.Count} payload{(payloads.Count == 1 ? "" : "s")} installed for hypervisor {store.BuildId}\n");
            if (payloads.Count > 0)
            {
                int width = Math.Max(4, payloads.Max(p => p.Entry.Name.Length));
                text.Append(c, $"  order  {"name".PadRight(width)}  flags           bytes  sha256            file\n");
                foreach (var p in payloads)
                {
                    var e = p.Entry;
                    string flags = string.Join(",", new[] { e.Replace ? "replace" : null, e.NoDeps ? "nodeps" : null }.OfType<string>());
                    text.Append(c, $"  {e.Order,5}  {e.Name.PadRight(width)}  {(flags.Length == 0 ? "-" : flags),-14} {e.Size,6}  {Hex(e.Sha256)}  {(p.Problem == null ? "ok" : "DAMAGED")}\n");
                }
            }
            s.Out(text.ToString());
            foreach (var p in payloads.Where(p => p.Problem != null))
            {
                s.Err($"xen-livepatch list: {p.Entry.Name}: {p.Problem}\n");
                exit = ExitCodes.Failure;
            }
        }
        return FinishList(s, exit, listed);
    }

    private static int FinishList(Session s, int exit, IReadOnlyList<(InstallStore Store, IReadOnlyList<StoredPayload> Payloads, string? Problem)> listed)
    {
        if (!s.Json)
            return exit;
        s.Write(HostCommands.Json(w =>
        {
            JsonReport.Header(w, "list-installed", exit, s);
            w.WriteStartArray("stores");
            foreach (var (store, payloads, problem) in listed)
            {
                w.WriteStartObject();
                w.WriteString("build_id", store.BuildId);
                w.WriteString("directory", store.Directory);
                HostCommands.NullableString(w, "problem", problem);
                w.WriteStartArray("payloads");
                foreach (var p in payloads)
                    Entry(w, p.Entry, p.Problem);
                w.WriteEndArray();
                w.WriteEndObject();
            }
            w.WriteEndArray();
            HostCommands.Messages(w, s);
            w.WriteEndObject();
        }));
        return exit;
    }

    /// <summary>
    /// Whether the kernel command line turns boot-time apply off: its last <c>xen-livepatch.enable=</c> is 0, n, no,
    /// off or false (the kernel's own boolean spellings).
    /// </summary>
    public static bool DisabledBy(string cmdline)
    {
        ArgumentNullException.ThrowIfNull(cmdline);
        string? value = null;
        foreach (string word in cmdline.Split((char[])[' ', '\t', '\n'], StringSplitOptions.RemoveEmptyEntries))
        {
            if (word.StartsWith(EnableOption + "=", StringComparison.Ordinal))
                value = word[(EnableOption.Length + 1)..];
        }
        return value?.ToLowerInvariant() is "0" or "n" or "no" or "off" or "false";
    }

    public static async Task<int> ApplyInstalledAsync(string[] args, ToolOptions options, TextWriter stdout, TextWriter stderr, ToolHost host, CancellationToken cancellationToken)
    {
        var a = ArgReader.Parse(args, ["--store", "--timeout", "--cmdline", .. SignatureOptions.Options], ["--dry-run", "--json"], [], out string? argError);
        if (a == null || a.Positional.Count != 0)
            return CommandInput.Usage("apply-installed", stderr, argError ?? $"unexpected argument '{a!.Positional[0]}'");
        if (!SignatureOptions.TryHostTrust("apply-installed", a, stderr, out var trust, out int trustCode))
            return trustCode;
        if (!ConvergeCommand.TryTimeout("apply-installed", a, stderr, out uint timeoutNs, out int code))
            return code;
        bool json = options.Json || a.Flag("--json");
        string cmdlinePath = a.Value("--cmdline") ?? "/proc/cmdline";
        string cmdline = "";
        try
        {
            if (File.Exists(cmdlinePath))
                cmdline = await File.ReadAllTextAsync(cmdlinePath, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            stderr.Write($"xen-livepatch apply-installed: cannot read {cmdlinePath}: {e.Message}\n");
        }
        await using var s = new Session("apply-installed", options with { Json = json }, stdout, stderr, host, cancellationToken);
        if (DisabledBy(cmdline))
        {
            string why = $"{EnableOption}=0 on the kernel command line ({cmdlinePath})";
            if (json)
            {
                s.Write(HostCommands.Json(w =>
                {
                    JsonReport.Header(w, "apply-installed", 0, s);
                    w.WriteNumber("schema", ConvergeCommand.Schema);
                    w.WriteString("skipped", why);
                    w.WriteBoolean("changed", false);
                    w.WriteEndObject();
                }));
            }
            else
            {
                s.Write($"apply-installed: skipped: {why}\n");
            }
            return 0;
        }
        var (store, storeCode) = await StoreAsync(s, "apply-installed", a, needRunning: true).ConfigureAwait(false);
        if (store == null)
        {
            if (json)
                s.Write(HostCommands.Json(w => { JsonReport.Header(w, "apply-installed", storeCode, s); HostCommands.Messages(w, s); w.WriteEndObject(); }));
            return storeCode;
        }
        if (!store.TryReadAll(out var stored, out string? problem))
        {
            s.Err($"xen-livepatch apply-installed: {problem}\n");
            if (json)
                s.Write(HostCommands.Json(w => { JsonReport.Header(w, "apply-installed", 1, s); w.WriteString("store", store.Directory); HostCommands.Messages(w, s); w.WriteEndObject(); }));
            return ExitCodes.Failure;
        }
        // A file the signature policy refuses is left out as a damaged one is.
        stored = [.. stored.Select(p => p.Payload?.Refusal(trust) is { } refusal ? p with { Payload = null, Problem = refusal } : p)];
        var desired = DesiredSet.FromStore(store, stored, out var superseded);
        var live = desired.Payloads.Select(p => p.Name).ToHashSet(StringComparer.Ordinal);
        // A damaged file is reported, and what depends on it is left out too (it could not apply without it).
        var damaged = stored.Where(p => p.Problem != null && !superseded.Contains(p.Entry)).ToList();
        var missingIds = damaged.Select(p => p.Entry.BuildId).ToHashSet(StringComparer.Ordinal);
        var kept = new List<DesiredPayload>();
        var leftOut = new List<string>();
        foreach (var p in damaged)
            leftOut.Add($"{p.Entry.Name}: {p.Problem}");
        foreach (var p in desired.Payloads)
        {
            if (!p.NoDeps && missingIds.Contains(p.File.Depends))
            {
                leftOut.Add($"{p.Name}: it depends on {damaged.First(d => d.Entry.BuildId == p.File.Depends).Entry.Name}, whose file is damaged");
                missingIds.Add(p.File.BuildId);
                continue;
            }
            kept.Add(p);
        }
        foreach (string l in leftOut)
            s.Err($"xen-livepatch apply-installed: not applied: {l}\n");
        var set = DesiredSet.Of(desired.Source, kept);
        return await ConvergeCommand.RunAsync(s, set, ConvergeMode.Additive, a.Flag("--dry-run"), timeoutNs, w =>
        {
            w.WriteString("store", store.Directory);
            w.WriteStartArray("superseded");
            foreach (var e in superseded)
                w.WriteStringValue(e.Name);
            w.WriteEndArray();
            w.WriteStartArray("store_problems");
            foreach (string l in leftOut)
                w.WriteStringValue(l);
            w.WriteEndArray();
        }, leftOut, [.. superseded.Select(e => e.Name)]).ConfigureAwait(false);
    }
}
