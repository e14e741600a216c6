using System.Diagnostics.CodeAnalysis;
using System.Text.Json;

namespace XenLivepatch.Host;

/// <summary>One payload of a desired set: the file, and how it is applied.</summary>
/// <param name="File">The payload (its name is the name it is uploaded under).</param>
/// <param name="Replace">Applied with REPLACE: every payload applied before it is reverted in the same pause.</param>
/// <param name="NoDeps">Applied with NODEPS even when what it depends on is not below it.</param>
public sealed record DesiredPayload(PayloadFile File, bool Replace = false, bool NoDeps = false)
{
    /// <summary>The payload's name.</summary>
    public string Name => File.Name;
}

/// <summary>
/// The payloads a host should have loaded and applied, bottom of the applied stack first: every payload of a
/// directory (in dependency order, ties by file name), a manifest's list (in its order, with its REPLACE and
/// NODEPS marks), or the install store's (from the last REPLACE on, in dependency order, ties by install order).
/// </summary>
/// <remarks>
/// The manifest, text (one payload per line) or JSON:
/// <code>
/// # FILE [name=NAME] [replace] [nodeps]        paths relative to the manifest
/// xen_replace_world.livepatch replace
/// xen_nop.livepatch
/// {"schema": 1, "payloads": [{"file": "xen_replace_world.livepatch", "replace": true}, {"file": "xen_nop.livepatch", "name": "nop"}]}
/// </code>
/// </remarks>
public sealed class DesiredSet
{
    /// <summary>The JSON manifest's schema.</summary>
    public const int ManifestSchema = 1;

    /// <summary>What a payload file's name ends with in a directory.</summary>
    public const string PayloadExtension = ".livepatch";

    private DesiredSet(string source, IReadOnlyList<DesiredPayload> payloads)
    {
        Source = source;
        Payloads = payloads;
    }

    /// <summary>Where it came from, for messages ("the directory /srv/patches").</summary>
    public string Source { get; }

    /// <summary>The payloads, bottom of the stack first.</summary>
    public IReadOnlyList<DesiredPayload> Payloads { get; }

    /// <summary>A set in the order given (for callers that build one themselves).</summary>
    public static DesiredSet Of(string source, IReadOnlyList<DesiredPayload> payloads) => new(source, payloads);

    /// <summary>A directory or a manifest file, whichever <paramref name="path"/> is.</summary>
    public static bool TryLoad(string path, [NotNullWhen(true)] out DesiredSet? set, out IReadOnlyList<string> problems)
    {
        ArgumentNullException.ThrowIfNull(path);
        if (System.IO.Directory.Exists(path))
            return TryFromDirectory(path, out set, out problems);
        if (File.Exists(path))
            return TryFromManifest(path, out set, out problems);
        set = null;
        problems = [$"{path} is neither a directory of payloads nor a manifest file"];
        return false;
    }

    /// <summary>Every <c>*.livepatch</c> file of <paramref name="directory"/>, each under its file name, in dependency order.</summary>
    public static bool TryFromDirectory(string directory, [NotNullWhen(true)] out DesiredSet? set, out IReadOnlyList<string> problems)
    {
        set = null;
        var errors = new List<string>();
        var files = new List<PayloadFile>();
        IEnumerable<string> paths;
        try
        {
            paths = System.IO.Directory.GetFiles(directory, "*" + PayloadExtension).Order(StringComparer.Ordinal).ToList();
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            problems = [$"cannot list {directory}: {e.Message}"];
            return false;
        }
        foreach (string path in paths)
        {
            if (PayloadFile.TryRead(path, null, out var f, out string? error))
                files.Add(f);
            else
                errors.Add(error);
        }
        problems = errors;
        if (errors.Count > 0)
            return false;
        var ordered = DependencyOrder(files, (a, b) => string.CompareOrdinal(a.Name, b.Name));
        set = new DesiredSet($"the directory {directory}", [.. ordered.Select(f => new DesiredPayload(f))]);
        return true;
    }

    /// <summary>A manifest (text or JSON; see the remarks), its paths relative to its own directory.</summary>
    public static bool TryFromManifest(string path, [NotNullWhen(true)] out DesiredSet? set, out IReadOnlyList<string> problems)
    {
        set = null;
        string text;
        try
        {
            text = File.ReadAllText(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            problems = [$"cannot read the manifest {path}: {e.Message}"];
            return false;
        }
        string baseDir = Path.GetDirectoryName(Path.GetFullPath(path))!;
        var entries = new List<(string File, string? Name, bool Replace, bool NoDeps, string Where)>();
        var errors = new List<string>();
        if (text.TrimStart().StartsWith('{'))
            ParseJson(path, text, entries, errors);
        else
            ParseText(path, text, entries, errors);
        var payloads = new List<DesiredPayload>();
        foreach (var (file, name, replace, nodeps, where) in entries)
        {
            string full = Path.IsPathRooted(file) ? file : Path.Combine(baseDir, file);
            if (PayloadFile.TryRead(full, name, out var f, out string? error))
                payloads.Add(new DesiredPayload(f, replace, nodeps));
            else
                errors.Add($"{where}: {error}");
        }
        problems = errors;
        if (errors.Count > 0)
            return false;
        set = new DesiredSet($"the manifest {path}", payloads);
        return true;
    }

    private static void ParseText(string path, string text, List<(string, string?, bool, bool, string)> entries, List<string> errors)
    {
        string[] lines = text.Split('\n');
        for (int i = 0; i < lines.Length; i++)
        {
            string line = lines[i].Trim();
            if (line.Length == 0 || line.StartsWith('#'))
                continue;
            string where = $"{path}:{i + 1}";
            string[] words = line.Split((char[])[' ', '\t'], StringSplitOptions.RemoveEmptyEntries);
            string? name = null;
            bool replace = false, nodeps = false, ok = true;
            foreach (string w in words.AsSpan(1))
            {
                if (w == "replace")
                    replace = true;
                else if (w == "nodeps")
                    nodeps = true;
                else if (w.StartsWith("name=", StringComparison.Ordinal))
                    name = w["name=".Length..];
                else
                {
                    errors.Add($"{where}: unknown word '{w}' (a line is: FILE [name=NAME] [replace] [nodeps])");
                    ok = false;
                }
            }
            if (ok)
                entries.Add((words[0], name, replace, nodeps, where));
        }
    }

    private static void ParseJson(string path, string text, List<(string, string?, bool, bool, string)> entries, List<string> errors)
    {
        try
        {
            using var doc = JsonDocument.Parse(text);
            var root = doc.RootElement;
            if (!root.TryGetProperty("schema", out var schema) || schema.ValueKind != JsonValueKind.Number || schema.GetInt32() != ManifestSchema)
            {
                errors.Add($"{path}: \"schema\" must be {ManifestSchema}");
                return;
            }
            if (!root.TryGetProperty("payloads", out var payloads) || payloads.ValueKind != JsonValueKind.Array)
            {
                errors.Add($"{path}: \"payloads\" must be an array");
                return;
            }
            int i = 0;
            foreach (var p in payloads.EnumerateArray())
            {
                string where = $"{path}: payloads[{i++}]";
                if (p.ValueKind != JsonValueKind.Object || !p.TryGetProperty("file", out var file) || file.ValueKind != JsonValueKind.String)
                {
                    errors.Add($"{where}: needs \"file\"");
                    continue;
                }
                foreach (var prop in p.EnumerateObject())
                {
                    if (prop.Name is not ("file" or "name" or "replace" or "nodeps"))
                        errors.Add($"{where}: unknown member \"{prop.Name}\" (file, name, replace, nodeps)");
                }
                string? name = p.TryGetProperty("name", out var n) && n.ValueKind == JsonValueKind.String ? n.GetString() : null;
                entries.Add((file.GetString()!, name, Flag(p, "replace"), Flag(p, "nodeps"), where));
            }
        }
        catch (JsonException e)
        {
            errors.Add($"{path}: not valid JSON: {e.Message}");
        }
    }

    private static bool Flag(JsonElement e, string name) => e.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.True;

    /// <summary>
    /// The install store's set: from the last payload installed with REPLACE on (the ones before it are superseded),
    /// in dependency order, ties by install order. Payloads whose file has a problem are left out (the caller
    /// reports them).
    /// </summary>
    public static DesiredSet FromStore(InstallStore store, IReadOnlyList<StoredPayload> stored, out IReadOnlyList<InstalledPayload> superseded)
    {
        ArgumentNullException.ThrowIfNull(store);
        ArgumentNullException.ThrowIfNull(stored);
        var ordered = stored.OrderBy(s => s.Entry.Order).ToList();
        int from = ordered.FindLastIndex(s => s.Entry.Replace);
        superseded = from <= 0 ? [] : [.. ordered.Take(from).Select(s => s.Entry)];
        var live = ordered.Skip(Math.Max(from, 0)).Where(s => s.Payload != null).ToList();
        var order = live.ToDictionary(s => s.Payload!, s => s.Entry.Order);
        var byFile = live.ToDictionary(s => s.Payload!, s => s.Entry);
        var sorted = DependencyOrder([.. live.Select(s => s.Payload!)], (a, b) =>
            byFile[a].Replace != byFile[b].Replace ? (byFile[a].Replace ? -1 : 1) : order[a].CompareTo(order[b]));
        return new DesiredSet(store.ToString(), [.. sorted.Select(f => new DesiredPayload(f, byFile[f].Replace, byFile[f].NoDeps))]);
    }

    /// <summary>
    /// Orders payloads so that each comes after the one whose build-id it depends on (when that one is in the
    /// list), choosing among those ready by <paramref name="tie"/>.
    /// </summary>
    public static IReadOnlyList<PayloadFile> DependencyOrder(IReadOnlyList<PayloadFile> files, Comparison<PayloadFile> tie)
    {
        ArgumentNullException.ThrowIfNull(files);
        var byId = new Dictionary<string, PayloadFile>(StringComparer.Ordinal);
        foreach (var f in files)
            byId.TryAdd(f.BuildId, f);
        var done = new HashSet<PayloadFile>();
        var result = new List<PayloadFile>();
        var pending = files.ToList();
        while (pending.Count > 0)
        {
            var ready = pending.Where(f => !byId.TryGetValue(f.Depends, out var parent) || parent == f || done.Contains(parent)).ToList();
            // A cycle (two payloads naming each other's build-id) cannot be ordered: take them as they are.
            if (ready.Count == 0)
                ready = pending;
            ready.Sort(tie);
            var next = ready[0];
            result.Add(next);
            done.Add(next);
            pending.Remove(next);
        }
        return result;
    }

    /// <summary>
    /// What stops this set from being applied as it is on hypervisor <paramref name="xenBuildId"/> (null when
    /// unknown): a payload for another hypervisor, two payloads with one name or one build-id, a REPLACE that is
    /// not first or that REPLACE refuses, a payload whose dependency is neither the hypervisor nor below it (and
    /// not marked nodeps), a payload before the one it depends on. Empty when it can be applied.
    /// </summary>
    public IReadOnlyList<string> Check(string? xenBuildId)
    {
        var problems = new List<string>();
        foreach (var g in Payloads.GroupBy(p => p.Name, StringComparer.Ordinal).Where(g => g.Count() > 1))
            problems.Add($"{g.Key} is named twice ({string.Join(", ", g.Select(p => p.File.Path))})");
        foreach (var g in Payloads.GroupBy(p => p.File.BuildId, StringComparer.Ordinal).Where(g => g.Count() > 1))
            problems.Add($"{string.Join(" and ", g.Select(p => p.Name))} are the same payload (build-id {g.Key}); Xen loads a build-id once");
        var below = new HashSet<string>(StringComparer.Ordinal);
        if (xenBuildId != null)
            below.Add(xenBuildId);
        for (int i = 0; i < Payloads.Count; i++)
        {
            var p = Payloads[i];
            var f = p.File;
            if (xenBuildId != null && f.XenDepends != xenBuildId)
                problems.Add($"{p.Name} ({f.Path}) was made for hypervisor {(f.XenDepends.Length == 0 ? "(none)" : f.XenDepends)}, not the running {xenBuildId}: Xen refuses it (EINVAL)");
            if (p.Replace)
            {
                if (i != 0)
                    problems.Add($"{p.Name} is marked replace but is not first: REPLACE reverts every payload applied before it, so it must be the bottom of the set");
                if (f.HasVetoingHooks)
                    problems.Add($"{p.Name} has pre/post apply or revert hooks: Xen's REPLACE refuses such a payload (EOPNOTSUPP); drop 'replace'");
                if (xenBuildId != null && f.Depends != xenBuildId)
                    problems.Add($"{p.Name} is marked replace but depends on {f.Depends}, not on the hypervisor: REPLACE refuses it (EINVAL)");
            }
            else if (Payloads.Skip(i + 1).FirstOrDefault(q => q.File.BuildId == f.Depends) is { } later)
            {
                // Even with NODEPS: Xen does not report the applied order, which is read back from the dependencies.
                problems.Add($"{p.Name} depends on {later.Name}, which comes after it in the set: put {later.Name} first");
            }
            else if (!p.NoDeps && !below.Contains(f.Depends) && (xenBuildId != null || Payloads.Any(q => q.File.BuildId == f.Depends)))
            {
                problems.Add($"{p.Name} depends on build-id {f.Depends}, which neither the hypervisor nor a payload before it has: " +
                    "put the payload it was built on before it, or mark it nodeps");
            }
            below.Add(f.BuildId);
        }
        return problems;
    }
}
