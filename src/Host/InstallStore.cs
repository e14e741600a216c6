using System.Diagnostics.CodeAnalysis;
using System.Globalization;
using System.Text.Json;

namespace XenLivepatch.Host;

/// <summary>One payload of the install store, as its index records it.</summary>
/// <param name="Name">The name it is uploaded under.</param>
/// <param name="File">Its file in the store's directory.</param>
/// <param name="Sha256">SHA-256 of the file (lowercase hex).</param>
/// <param name="Size">The file's size in bytes.</param>
/// <param name="Order">Its place: payloads are applied in dependency order, ties by this order (install order).</param>
/// <param name="Replace">Applied with REPLACE: it takes the place of every payload applied before it.</param>
/// <param name="NoDeps">Applied with NODEPS even when what it depends on is not applied.</param>
/// <param name="BuildId">Its own build-id (hex).</param>
/// <param name="Depends">The build-id it applies on top of (hex).</param>
public sealed record InstalledPayload(string Name, string File, string Sha256, long Size, int Order, bool Replace, bool NoDeps, string BuildId, string Depends)
{
    /// <summary>Writes the members as the index keeps them (the CLI's --json shows the same names).</summary>
    public void WriteMembers(Utf8JsonWriter w)
    {
        ArgumentNullException.ThrowIfNull(w);
        w.WriteString("name", Name);
        w.WriteString("file", File);
        w.WriteString("sha256", Sha256);
        w.WriteNumber("size", Size);
        w.WriteNumber("order", Order);
        w.WriteBoolean("replace", Replace);
        w.WriteBoolean("nodeps", NoDeps);
        w.WriteString("build_id", BuildId);
        w.WriteString("depends", Depends);
    }
}

/// <summary>An installed payload checked against its file: null <see cref="Problem"/> when the file is whole.</summary>
/// <param name="Entry">The index entry.</param>
/// <param name="Payload">The file, read and checked (null when it has a problem).</param>
/// <param name="Problem">What is wrong with the file (missing, truncated, changed, unreadable), and what to do.</param>
public sealed record StoredPayload(InstalledPayload Entry, PayloadFile? Payload, string? Problem);

/// <summary>
/// The install store (kpatch's <c>/var/lib/kpatch/&lt;kernel&gt;</c>, for Xen): the payloads an operator installed for
/// one hypervisor, under <c>ROOT/&lt;build-id&gt;/</c> (ROOT is <c>/var/lib/xen-livepatch</c>, or <c>--store DIR</c>,
/// or <c>$XEN_LIVEPATCH_STORE</c>), applied again at every boot of that hypervisor (<c>apply-installed</c>). The
/// directory holds one file per payload, named by its name and checksum, and an index (<see cref="IndexName"/>)
/// naming each payload with its checksum, size, order and flags. Every change writes the new files first, then
/// the index, each atomically and durably (<see cref="DurableFiles"/>), then removes what the index no longer
/// names: a crash or a full disk at any point leaves the old index or the new one, each naming whole files.
/// </summary>
public sealed class InstallStore
{
    /// <summary>Where stores live unless told otherwise.</summary>
    public const string DefaultRoot = "/var/lib/xen-livepatch";

    /// <summary>The environment variable naming another root.</summary>
    public const string EnvironmentVariable = "XEN_LIVEPATCH_STORE";

    /// <summary>The index file's name.</summary>
    public const string IndexName = "installed.json";

    /// <summary>The index format's version.</summary>
    public const int Schema = 1;

    private const string LockName = ".lock";

    /// <summary>A store for hypervisor <paramref name="buildId"/> (hex) under <paramref name="root"/>.</summary>
    public InstallStore(string root, string buildId)
    {
        ArgumentNullException.ThrowIfNull(root);
        ArgumentNullException.ThrowIfNull(buildId);
        Root = root;
        BuildId = buildId.ToLowerInvariant();
        Directory = Path.Combine(root, BuildId);
    }

    /// <summary>The root: <paramref name="explicitRoot"/>, else $XEN_LIVEPATCH_STORE, else <see cref="DefaultRoot"/>.</summary>
    public static string RootFrom(string? explicitRoot = null) =>
        explicitRoot is { Length: > 0 } ? explicitRoot
        : Environment.GetEnvironmentVariable(EnvironmentVariable) is { Length: > 0 } env ? env
        : DefaultRoot;

    /// <summary>The root.</summary>
    public string Root { get; }

    /// <summary>The hypervisor build-id (lowercase hex) this store is for.</summary>
    public string BuildId { get; }

    /// <summary>The store's directory: ROOT/BUILD-ID.</summary>
    public string Directory { get; }

    /// <summary>The index's path.</summary>
    public string IndexPath => Path.Combine(Directory, IndexName);

    /// <summary>The build-ids that have a store under <paramref name="root"/>.</summary>
    public static IReadOnlyList<string> BuildIds(string root)
    {
        if (!System.IO.Directory.Exists(root))
            return [];
        return [.. System.IO.Directory.EnumerateDirectories(root).Select(Path.GetFileName).OfType<string>()
            .Where(d => d.Length > 0 && d.All(Uri.IsHexDigit)).Order(StringComparer.Ordinal)];
    }

    /// <summary>
    /// The index's entries in order; empty when nothing was ever installed. False, with what to do, when the
    /// index cannot be read or is not one this tool wrote.
    /// </summary>
    public bool TryReadIndex(out IReadOnlyList<InstalledPayload> entries, [NotNullWhen(false)] out string? problem)
    {
        entries = [];
        problem = null;
        byte[] bytes;
        try
        {
            if (!File.Exists(IndexPath))
                return true;
            bytes = File.ReadAllBytes(IndexPath);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            problem = $"cannot read the store's index {IndexPath}: {e.Message}";
            return false;
        }
        if (!TryParseIndex(bytes, out var parsed, out string? why))
        {
            problem = $"the store's index {IndexPath} is damaged ({why}); restore it from a backup, or remove it and install the payloads again";
            return false;
        }
        entries = parsed;
        return true;
    }

    private bool TryParseIndex(byte[] bytes, out List<InstalledPayload> entries, [NotNullWhen(false)] out string? why)
    {
        entries = [];
        try
        {
            using var doc = JsonDocument.Parse(bytes);
            var root = doc.RootElement;
            if (root.ValueKind != JsonValueKind.Object || !root.TryGetProperty("schema", out var schema) || schema.ValueKind != JsonValueKind.Number)
            {
                why = "no schema";
                return false;
            }
            if (schema.GetInt32() != Schema)
            {
                why = $"schema {schema.GetInt32()}, this tool reads {Schema}";
                return false;
            }
            if (!root.TryGetProperty("build_id", out var id) || id.ValueKind != JsonValueKind.String || id.GetString() != BuildId)
            {
                why = $"it is not the index of build-id {BuildId}";
                return false;
            }
            if (!root.TryGetProperty("payloads", out var payloads) || payloads.ValueKind != JsonValueKind.Array)
            {
                why = "no payloads array";
                return false;
            }
            foreach (var p in payloads.EnumerateArray())
            {
                string name = Str(p, "name"), file = Str(p, "file");
                if (!PayloadFile.IsValidName(name, out string? bad) || file.Contains('/', StringComparison.Ordinal) || file.Length == 0 || file.StartsWith('.'))
                {
                    why = bad ?? $"the entry of '{name}' names the file '{file}'";
                    return false;
                }
                entries.Add(new InstalledPayload(name, file, Str(p, "sha256"), p.GetProperty("size").GetInt64(), p.GetProperty("order").GetInt32(),
                    p.GetProperty("replace").GetBoolean(), p.GetProperty("nodeps").GetBoolean(), Str(p, "build_id"), Str(p, "depends")));
            }
        }
        catch (Exception e) when (e is JsonException or InvalidOperationException or KeyNotFoundException or FormatException)
        {
            why = e.Message;
            return false;
        }
        if (entries.Select(e => e.Name).Distinct(StringComparer.Ordinal).Count() != entries.Count)
        {
            why = "a name appears twice";
            return false;
        }
        entries.Sort((a, b) => a.Order.CompareTo(b.Order));
        why = null;
        return true;
    }

    private static string Str(JsonElement e, string name) =>
        e.GetProperty(name).GetString() ?? throw new FormatException($"{name} is null");

    private byte[] IndexBytes(IReadOnlyList<InstalledPayload> entries)
    {
        using var ms = new MemoryStream();
        using (var w = new Utf8JsonWriter(ms, new JsonWriterOptions { Indented = true }))
        {
            w.WriteStartObject();
            w.WriteNumber("schema", Schema);
            w.WriteString("build_id", BuildId);
            w.WriteStartArray("payloads");
            foreach (var e in entries.OrderBy(e => e.Order))
            {
                w.WriteStartObject();
                e.WriteMembers(w);
                w.WriteEndObject();
            }
            w.WriteEndArray();
            w.WriteEndObject();
        }
        ms.WriteByte((byte)'\n');
        return ms.ToArray();
    }

    /// <summary>Every installed payload, each read and checked against its index entry (size, checksum, build-ids).</summary>
    public bool TryReadAll(out IReadOnlyList<StoredPayload> payloads, [NotNullWhen(false)] out string? problem)
    {
        payloads = [];
        if (!TryReadIndex(out var entries, out problem))
            return false;
        payloads = [.. entries.Select(Load)];
        return true;
    }

    /// <summary>One entry's file, read and checked.</summary>
    public StoredPayload Load(InstalledPayload entry)
    {
        ArgumentNullException.ThrowIfNull(entry);
        string path = Path.Combine(Directory, entry.File);
        string reinstall = $"install it again ('xen-livepatch install FILE'), or 'xen-livepatch uninstall {entry.Name}'";
        byte[] data;
        try
        {
            if (!File.Exists(path))
                return new StoredPayload(entry, null, $"its file {path} is missing; {reinstall}");
            data = File.ReadAllBytes(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return new StoredPayload(entry, null, $"its file {path} cannot be read: {e.Message}");
        }
        if (data.LongLength != entry.Size)
            return new StoredPayload(entry, null, $"its file {path} is {data.Length} bytes, not the {entry.Size} installed (truncated or changed); {reinstall}");
        if (!PayloadFile.TryCreate(path, entry.Name, data, out var file, out string? error))
            return new StoredPayload(entry, null, $"{error}; {reinstall}");
        if (file.Sha256 != entry.Sha256)
            return new StoredPayload(entry, null, $"its file {path} has changed since it was installed (SHA-256 {file.Sha256[..16]}…, installed {entry.Sha256[..Math.Min(16, entry.Sha256.Length)]}…); {reinstall}");
        if (file.XenDepends != BuildId)
            return new StoredPayload(entry, null, $"its file {path} is for hypervisor {Show(file.XenDepends)}, not {BuildId}; {reinstall}");
        return new StoredPayload(entry, file, null);
    }

    private static string Show(string hex) => hex.Length == 0 ? "(none: no .livepatch.xen_depends)" : hex;

    /// <summary>
    /// Installs <paramref name="files"/> (each under its name; one already installed is replaced in its place):
    /// all of them or none. A payload made for another hypervisor than this store's build-id is refused. Answers
    /// what it did, or false with the problem and nothing changed.
    /// </summary>
    public bool TryInstall(IReadOnlyList<PayloadFile> files, bool replace, bool noDeps, out IReadOnlyList<InstalledPayload> installed, [NotNullWhen(false)] out string? problem)
    {
        ArgumentNullException.ThrowIfNull(files);
        installed = [];
        foreach (var f in files)
        {
            if (f.XenDepends != BuildId)
            {
                problem = $"{f.Name} ({f.Path}) was made for hypervisor build-id {Show(f.XenDepends)}, not {BuildId}: " +
                    "Xen would refuse it (EINVAL); build it for this hypervisor ('xen-livepatch build' without --target uses the running one), " +
                    "or install it with --build-id for the hypervisor it was made for";
                return false;
            }
        }
        var dup = files.GroupBy(f => f.Name, StringComparer.Ordinal).FirstOrDefault(g => g.Count() > 1);
        if (dup != null)
        {
            problem = $"two payloads are named {dup.Key} ({string.Join(", ", dup.Select(f => f.Path))}); rename one";
            return false;
        }
        if (replace && files.Count != 1)
        {
            problem = "--replace takes one payload (it takes the place of every payload applied before it)";
            return false;
        }
        return TryChange(entries =>
        {
            int next = entries.Count == 0 ? 1 : entries.Max(e => e.Order) + 1;
            var done = new List<InstalledPayload>();
            foreach (var f in files)
            {
                int at = entries.FindIndex(e => e.Name == f.Name);
                // A payload installed again keeps its place, unless it now replaces the others (it goes last).
                int order = at >= 0 && !replace ? entries[at].Order : next++;
                var entry = new InstalledPayload(f.Name, FileName(f), f.Sha256, f.Data.LongLength, order, replace, noDeps, f.BuildId, f.Depends);
                string path = Path.Combine(Directory, entry.File);
                // A file already there with these bytes is kept; a damaged one is written again.
                if (!File.Exists(path) || !File.ReadAllBytes(path).AsSpan().SequenceEqual(f.Data))
                    DurableFiles.Write(path, f.Data);
                if (at >= 0)
                    entries[at] = entry;
                else
                    entries.Add(entry);
                done.Add(entry);
            }
            return done;
        }, out installed, out problem);
    }

    /// <summary>Uninstalls <paramref name="name"/>; false (nothing changed) when it is not installed.</summary>
    public bool TryUninstall(string name, out InstalledPayload? removed, [NotNullWhen(false)] out string? problem)
    {
        ArgumentNullException.ThrowIfNull(name);
        removed = null;
        bool ok = TryChange(entries =>
        {
            int at = entries.FindIndex(e => e.Name == name);
            if (at < 0)
            {
                string names = entries.Count == 0 ? "nothing is installed" : "installed: " + string.Join(", ", entries.Select(e => e.Name));
                throw new StoreRefusal($"{name} is not installed for hypervisor {BuildId} ({names})");
            }
            var r = entries[at];
            entries.RemoveAt(at);
            return new List<InstalledPayload> { r };
        }, out var changed, out problem);
        if (ok)
            removed = changed[0];
        return ok;
    }

    // The payload's file in the store: its name and the start of its checksum (a new version never overwrites the
    // file an older index names).
    private static string FileName(PayloadFile f) => $"{f.Name}.{f.Sha256[..16]}.livepatch";

    private sealed class StoreRefusal(string message) : Exception(message);

    // Runs one change under the store's lock: reads the index, lets change edit the entries (writing payload files
    // durably), writes the index durably, then removes the files the index no longer names.
    private bool TryChange(Func<List<InstalledPayload>, List<InstalledPayload>> change, out IReadOnlyList<InstalledPayload> changed, [NotNullWhen(false)] out string? problem)
    {
        changed = [];
        IReadOnlyList<InstalledPayload>? before = null;
        FileStream? storeLock = null;
        try
        {
            System.IO.Directory.CreateDirectory(Directory);
            storeLock = Lock();
            if (!TryReadIndex(out before, out problem))
                return false;
            var entries = before.ToList();
            changed = change(entries);
            DurableFiles.Write(IndexPath, IndexBytes(entries));
            CollectGarbage(entries);
            problem = null;
            return true;
        }
        catch (StoreRefusal e)
        {
            problem = e.Message;
            return false;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // The index still names what it named: files written for this change are not named by it.
            if (before != null)
                TryCollectGarbage(before);
            problem = $"cannot change the store {Directory}: {Reason(e)}; nothing was changed. " +
                "Run as root, free some space, or give another store with --store DIR (or XEN_LIVEPATCH_STORE)";
            return false;
        }
        finally
        {
            storeLock?.Dispose();
        }
    }

    private void TryCollectGarbage(IReadOnlyList<InstalledPayload> entries)
    {
        try
        {
            CollectGarbage(entries);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
        }
    }

    private static string Reason(Exception e) => e switch
    {
        UnauthorizedAccessException => $"permission denied ({e.Message})",
        IOException { HResult: var h } when (h & 0xffff) == 28 => $"no space left on the device ({e.Message})",
        _ => e.Message,
    };

    // Files the index does not name (older versions, a crashed write's temporary files) are removed; a failure to
    // remove one is harmless (the next change tries again).
    private void CollectGarbage(IReadOnlyList<InstalledPayload> entries)
    {
        var named = entries.Select(e => e.File).ToHashSet(StringComparer.Ordinal);
        foreach (string path in System.IO.Directory.EnumerateFiles(Directory))
        {
            string name = Path.GetFileName(path);
            bool ours = name.EndsWith(".livepatch", StringComparison.Ordinal) || name.StartsWith(DurableFiles.TemporaryPrefix, StringComparison.Ordinal);
            if (ours && !named.Contains(name))
                DurableFiles.TryDelete(path);
        }
    }

    // One change at a time: an exclusive lock on ROOT/BUILD-ID/.lock (flock, released when the process ends).
    private FileStream Lock()
    {
        string path = Path.Combine(Directory, LockName);
        for (int attempt = 0; ; attempt++)
        {
            try
            {
                return new FileStream(path, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None);
            }
            catch (IOException) when (attempt < 100 && File.Exists(path))
            {
                // Held by another xen-livepatch: wait up to ten seconds.
                Thread.Sleep(100);
            }
        }
    }

    /// <summary>A short description for messages: "the store /var/lib/xen-livepatch/&lt;id&gt; (3 payloads)".</summary>
    public override string ToString() => string.Create(CultureInfo.InvariantCulture, $"the store {Directory}");
}
