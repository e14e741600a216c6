using System.Diagnostics;
using System.Globalization;
using System.Text.RegularExpressions;
using XenLivepatch.Elf;
using XenLivepatch.Hypervisor;
using XenLivepatch.Tooling.Diffing;
using XenLivepatch.Tooling.Sources;

namespace XenLivepatch.Tooling;

/// <summary>Everything <c>xen-livepatch build-source</c> is told.</summary>
public sealed class SourceBuildRequest
{
    /// <summary>The source tree: a Xen tree (<c>xen/</c> with its <c>.config</c>) or one with a Makefile that makes <c>xen-syms</c> (the sandbox's).</summary>
    public required string Tree { get; init; }

    /// <summary>The source patches, applied in order.</summary>
    public required IReadOnlyList<string> Patches { get; init; }

    /// <summary>The payload to write.</summary>
    public required string Output { get; init; }

    /// <summary>The payload's name (default: the first patch's file name, as livepatch-build names it).</summary>
    public string? Name { get; init; }

    /// <summary>An already built copy of the tree whose <c>xen-syms</c> is the running hypervisor (otherwise the tree is built first).</summary>
    public string? BaseBuild { get; init; }

    /// <summary>The payload this one is stacked on.</summary>
    public StackedPayload? DependsOn { get; init; }

    /// <summary>A build-id the payload depends on instead of the hypervisor's.</summary>
    public ReadOnlyMemory<byte>? Depends { get; init; }

    /// <summary>A payload meant for REPLACE (it depends on the hypervisor itself, never on another payload).</summary>
    public bool Replace { get; init; }

    /// <summary><c>.modinfo</c> strings.</summary>
    public IReadOnlyList<string> Metadata { get; init; } = [];

    /// <summary>Parallel jobs for make.</summary>
    public int Jobs { get; init; } = Environment.ProcessorCount;

    /// <summary>Where to keep the trees, logs and intermediate objects (otherwise a temporary folder, removed at the end).</summary>
    public string? Keep { get; init; }

    /// <summary>
    /// The build-id of the hypervisor that runs here, when one answers: the base build's <c>xen-syms</c> must have
    /// it (issue 16: build-source defaults to the running target), or the payload would be refused there.
    /// </summary>
    public ReadOnlyMemory<byte>? RunningBuildId { get; init; }

    /// <summary>What answered with <see cref="RunningBuildId"/> ("the sandbox at …", "Xen through /dev/xen/privcmd").</summary>
    public string? RunningDescription { get; init; }

    /// <summary>Applied to the linked payload before it is written (the CLI signs it here, as <c>build --sign-key</c> does).</summary>
    public PayloadSeal? Seal { get; init; }
}

/// <summary>Turns a linked payload into the bytes to write (a signed payload); false with the reason when it cannot.</summary>
public delegate bool PayloadSeal(byte[] payload, out byte[] written, out string? problem);

/// <summary>How build-source ended.</summary>
public enum SourceBuildOutcome
{
    /// <summary>The payload was written.</summary>
    Built,
    /// <summary>A patch does not apply to the tree (nothing was changed).</summary>
    PatchDoesNotApply,
    /// <summary>The original or the patched tree does not build.</summary>
    TreeDoesNotBuild,
    /// <summary>Objects that cannot be compared (other compiler, flags), or a base build of other sources.</summary>
    Mismatched,
    /// <summary>The patches change no function.</summary>
    NothingToPatch,
    /// <summary>A change cannot be live-patched, or the payload cannot be made (build's refusals).</summary>
    Refused,
    /// <summary>An input cannot be read or the tree is not one the tool knows.</summary>
    BadInput,
    /// <summary>The payload cannot be written.</summary>
    CannotWrite,
}

/// <summary>One object the patched build rebuilt, and what the diff found in it.</summary>
/// <param name="Path">Its path in the tree (relative).</param>
/// <param name="Diff">The diff's result (null when the object came out byte-identical).</param>
public sealed record SourceObject(string Path, DiffResult? Diff);

/// <summary>What build-source did.</summary>
public sealed class SourceBuildResult
{
    /// <summary>How it ended.</summary>
    public required SourceBuildOutcome Outcome { get; init; }

    /// <summary>The payload's name.</summary>
    public required string Name { get; init; }

    /// <summary>Why it did not build (message and what to do next).</summary>
    public ToolingProblem? Problem { get; init; }

    /// <summary>The failing hunk, when a patch does not apply.</summary>
    public PatchFailure? PatchFailure { get; init; }

    /// <summary>The objects the patched build rebuilt, with the diff of each that changed.</summary>
    public IReadOnlyList<SourceObject> Objects { get; init; } = [];

    /// <summary>The payload, when built.</summary>
    public PayloadBuildResult? Payload { get; init; }

    /// <summary>The bytes written: the payload's, or with <see cref="SourceBuildRequest.Seal"/> what it made of them.</summary>
    public byte[]? Written { get; init; }

    /// <summary>The running hypervisor it was built for (the base build's xen-syms).</summary>
    public string? BaseImage { get; init; }

    /// <summary>Seconds spent per step ("base build", "patched build", "diff", "link").</summary>
    public IReadOnlyList<(string Step, double Seconds)> Timings { get; init; } = [];

    /// <summary>Where the work was kept (--keep), if anywhere.</summary>
    public string? KeptIn { get; init; }
}

/// <summary>
/// <c>xen-livepatch build-source</c>: livepatch-build's job. Builds the tree as it runs (or takes that build),
/// copies it, applies the patches to the copy, rebuilds what they change with the same configuration and the
/// same build stamps (so that unchanged objects come out byte-identical), diffs every object that changed
/// (<see cref="ObjectDiff"/>), and links the payload against the original <c>xen-syms</c> with
/// <see cref="PayloadBuilder"/>. The source tree is only read; nothing is written but the payload (whole, or not at all).
/// </summary>
public sealed partial class SourceBuild
{
    private readonly SourceBuildRequest _r;
    private readonly TextWriter _progress;
    private readonly List<(string, double)> _timings = [];
    private readonly Stopwatch _clock = Stopwatch.StartNew();
    private string _name = "";
    private int _step;
    private bool _crossNoted;
    private int Steps => _r.Seal == null ? 6 : 7;

    private SourceBuild(SourceBuildRequest request, TextWriter progress)
    {
        _r = request;
        _progress = progress;
    }

    /// <summary>Runs build-source; progress lines go to <paramref name="progress"/> (stderr).</summary>
    public static SourceBuildResult Run(SourceBuildRequest request, TextWriter progress)
    {
        ArgumentNullException.ThrowIfNull(request);
        ArgumentNullException.ThrowIfNull(progress);
        return new SourceBuild(request, progress).Run();
    }

    /// <summary>livepatch-build's name for a patch: its file name without .patch/.diff, only [A-Za-z0-9_-], at most 48 characters.</summary>
    public static string NameFromPatch(string path)
    {
        string n = Path.GetFileName(path);
        if (n.EndsWith(".patch", StringComparison.Ordinal) || n.EndsWith(".diff", StringComparison.Ordinal))
            n = n[..n.LastIndexOf('.')];
        n = NameCharacters().Replace(n, "-");
        return n.Length > 48 ? n[..48] : n.Length == 0 ? "livepatch" : n;
    }

    [GeneratedRegex("[^A-Za-z0-9_-]")]
    private static partial Regex NameCharacters();

    private SourceBuildResult Fail(SourceBuildOutcome outcome, string message, string advice, IReadOnlyList<SourceObject>? objects = null, PatchFailure? patch = null) => new()
    {
        Outcome = outcome, Name = _name, Problem = new ToolingProblem(message, advice), Objects = objects ?? [], PatchFailure = patch, Timings = _timings, KeptIn = _r.Keep,
    };

    private void Step(string what) => _progress.Write($"[{++_step}/{Steps}] {what}\n");

    private void Note(string what) => _progress.Write($"      {what}\n");

    private double Lap(string step, Stopwatch since)
    {
        double s = since.Elapsed.TotalSeconds;
        _timings.Add((step, s));
        return s;
    }

    private static string Seconds(double s) => s.ToString(s < 10 ? "0.0" : "0", CultureInfo.InvariantCulture) + " s";

    private SourceBuildResult Run()
    {
        _name = _r.Name ?? NameFromPatch(_r.Patches.Count > 0 ? _r.Patches[0] : "livepatch");
        string tree = Path.GetFullPath(_r.Tree);
        if (!Directory.Exists(tree))
            return Fail(SourceBuildOutcome.BadInput, $"{_r.Tree}: no such directory", "give the source tree with --src");
        var layout = TreeLayout.Of(tree);
        if (layout == null)
            return Fail(SourceBuildOutcome.BadInput, $"{_r.Tree} is neither a Xen tree (xen/Makefile) nor a tree with a Makefile",
                "give the top of Xen's source tree (the folder holding xen/), or the sandbox hypervisor's source (src/Sandbox/image)");
        if (layout.IsXen && !File.Exists(Path.Combine(tree, "xen", ".config")) && _r.BaseBuild == null)
            return Fail(SourceBuildOutcome.BadInput, $"{_r.Tree}/xen has no .config: the configuration of the running hypervisor is needed",
                "copy the running build's .config into xen/ (or 'make -C xen defconfig' for the default one), or give --base-build");

        // The patches first: a malformed or empty one stops everything before any build.
        var patches = new List<SourcePatch>();
        foreach (string p in _r.Patches)
        {
            if (!SourcePatch.TryRead(p, out var sp, out string? error))
                return Fail(SourceBuildOutcome.BadInput, error, "give a unified diff (diff -u, git diff, git format-patch)");
            patches.Add(sp);
        }
        if (patches.Count == 0 || patches.All(p => p.IsEmpty))
            return Fail(SourceBuildOutcome.NothingToPatch, $"{_name}: nothing to patch: {(patches.Count == 0 ? "no patch was given" : "the patch changes no file")}",
                "give the advisory's source patch (a unified diff with hunks)");

        string work = _r.Keep != null ? Path.GetFullPath(_r.Keep) : Path.Combine(Path.GetTempPath(), $"xen-livepatch-build-{Environment.ProcessId}-{Guid.NewGuid():N}");
        if (_r.Keep != null && Directory.Exists(work) && Directory.EnumerateFileSystemEntries(work).Any())
            return Fail(SourceBuildOutcome.BadInput, $"--keep {_r.Keep} is not empty", "give a new or empty folder to keep the work in");
        Directory.CreateDirectory(work);
        try
        {
            return Build(tree, layout, patches, work);
        }
        finally
        {
            if (_r.Keep == null)
            {
                try { Directory.Delete(work, recursive: true); }
                catch (Exception e) when (e is IOException or UnauthorizedAccessException) { _progress.Write($"      note: could not remove {work}: {e.Message}\n"); }
            }
        }
    }

    private SourceBuildResult Build(string tree, TreeLayout layout, List<SourcePatch> patches, string work)
    {
        // [1] The original: the given base build, or the tree built here with fixed stamps.
        string baseTree;
        var stamps = TreeLayout.FixedStamps();
        var watch = Stopwatch.StartNew();
        if (_r.BaseBuild != null)
        {
            baseTree = Path.GetFullPath(_r.BaseBuild);
            Step($"Using the base build {_r.BaseBuild}");
            if (!File.Exists(Path.Combine(baseTree, layout.Image)))
                return Fail(SourceBuildOutcome.BadInput, $"--base-build {_r.BaseBuild} has no {layout.Image}", "give the folder of the tree the running hypervisor was built in (after its build)");
            if (layout.IsXen && TreeLayout.ReadStamps(Path.Combine(baseTree, "xen", "include", "xen", "compile.h")) is { } found)
                stamps = found;
            foreach (string f in FilesBeforePatching(patches))
            {
                if (!TreeFiles.SameFile(Path.Combine(tree, f), Path.Combine(baseTree, f)))
                    return Fail(SourceBuildOutcome.Mismatched, $"the base build {_r.BaseBuild} was not built from {_r.Tree}: {f} differs",
                        "give the build of this very tree (or build it here: leave out --base-build)");
            }
        }
        else
        {
            baseTree = Path.Combine(work, "original");
            Step($"Building the original tree (make -j{_r.Jobs}; the running hypervisor must be this build)");
            if (File.Exists(Path.Combine(tree, layout.Image)))
                Note($"note: {_r.Tree} holds a built {layout.Image}; if that is the running hypervisor, give --base-build {_r.Tree} (this build's stamps, and so its build-id, may differ)");
            if (!TreeFiles.Copy(tree, baseTree, out string? copyError))
                return Fail(SourceBuildOutcome.BadInput, $"cannot copy {_r.Tree}: {copyError}", "check the tree is readable and there is room in the temporary folder");
            int rc = Make(layout, baseTree, stamps, Path.Combine(work, "build-original.log"));
            if (rc != 0)
                return Fail(SourceBuildOutcome.TreeDoesNotBuild, $"the original tree does not build (make exited {rc}):\n{TreeFiles.Tail(Path.Combine(work, "build-original.log"))}",
                    $"fix the tree or its configuration first; the whole log is in {Path.Combine(work, "build-original.log")} with --keep");
            Note($"built in {Seconds(Lap("base build", watch))}");
        }
        string image = Path.Combine(baseTree, layout.Image);
        if (!ElfFile.TryRead(File.ReadAllBytes(image), out var imageElf, out var imageError))
            return Fail(SourceBuildOutcome.BadInput, $"{image}: {imageError}", "the base build's xen-syms must be an ELF image with symbols");
        if (!OfflineTarget.TryFromImage(Path.GetFileName(image), imageElf, out var target, out string? targetError))
            return Fail(SourceBuildOutcome.BadInput, $"{image}: {targetError}", "the base build's xen-syms must be an ELF image with symbols");
        string imageId = Convert.ToHexStringLower(target.BuildId.Span);
        if (_r.RunningBuildId is { } running)
        {
            string runningId = Convert.ToHexStringLower(running.Span);
            if (runningId != imageId)
            {
                return Fail(SourceBuildOutcome.Mismatched,
                    $"{image} has build-id {imageId}, and the running hypervisor ({_r.RunningDescription}) has build-id {runningId}: a payload for this build would be refused there (-EINVAL, its .livepatch.xen_depends)",
                    "give --base-build <the build the running hypervisor came from>, or --offline to build for this xen-syms anyway (another host)");
            }
            Note($"the running hypervisor: {image}, build-id {imageId}, as {_r.RunningDescription} runs");
        }
        else
        {
            Note($"the running hypervisor: {image}, build-id {imageId}");
        }

        // [2] The patched copy.
        watch.Restart();
        string patchedTree = Path.Combine(work, "patched");
        Step($"Applying {string.Join(", ", patches.Select(p => p.Name))} to a copy");
        if (!TreeFiles.Copy(baseTree, patchedTree, out string? error))
            return Fail(SourceBuildOutcome.BadInput, $"cannot copy the base build: {error}", "check there is room in the temporary folder");
        var touched = new List<string>();
        foreach (var p in patches)
        {
            if (!p.TryApply(patchedTree, out var written, out var failure))
            {
                return Fail(SourceBuildOutcome.PatchDoesNotApply, $"{failure}; {_r.Tree} is left as it was",
                    "rebase the patch on this tree (the tree the running hypervisor was built from), or apply the patches it depends on first", patch: failure);
            }
            touched.AddRange(written);
        }
        Note($"{touched.Distinct().Count()} file{(touched.Distinct().Count() == 1 ? "" : "s")} changed: {string.Join(", ", touched.Distinct().Take(8))}{(touched.Distinct().Count() > 8 ? ", ..." : "")}");

        // [3] Rebuild what changed.
        Step($"Building the patched tree (make -j{_r.Jobs}, same configuration and stamps)");
        string patchedLog = Path.Combine(work, "build-patched.log");
        int prc = Make(layout, patchedTree, stamps, patchedLog);
        if (prc != 0)
            return Fail(SourceBuildOutcome.TreeDoesNotBuild, $"the patched tree does not build (make exited {prc}):\n{TreeFiles.Tail(patchedLog)}",
                "fix the patch so that the tree compiles; --keep DIR keeps the log and the trees");
        var changed = layout.ChangedObjects(baseTree, patchedTree);
        Note($"rebuilt in {Seconds(Lap("patched build", watch))}; {changed.Count} object{(changed.Count == 1 ? "" : "s")} changed");

        // [4] Diff each changed object.
        watch.Restart();
        Step($"Comparing {changed.Count} object{(changed.Count == 1 ? "" : "s")}");
        var objects = new List<SourceObject>();
        var outputs = new List<LinkInput>();
        string outDir = Path.Combine(work, "output");
        foreach (string rel in changed)
        {
            var diff = DiffObject(baseTree, patchedTree, rel, patches);
            objects.Add(new SourceObject(rel, diff));
            string what = diff.Outcome switch
            {
                DiffOutcome.Changed => string.Join(", ", new[]
                {
                    diff.Changed.Count > 0 ? $"{diff.Changed.Count} changed function{(diff.Changed.Count == 1 ? "" : "s")} ({string.Join(", ", diff.Changed.Select(c => c.HypervisorName).Take(4))}{(diff.Changed.Count > 4 ? ", ..." : "")})" : null,
                    diff.New.Count(n => n.Reason == "new") is > 0 and int added ? $"{added} new function{(added == 1 ? "" : "s")}" : null,
                    diff.NewData.Count > 0 ? $"{diff.NewData.Count} new data" : null,
                }.Where(x => x != null)),
                DiffOutcome.NothingToPatch => "no function changed",
                DiffOutcome.Refused => $"refused: {string.Join("; ", diff.Refusals.Select(x => $"{x.Section}{(x.Symbol != null ? $" ({x.Symbol})" : "")}"))}",
                _ => $"not comparable: {diff.Problem?.Message}",
            };
            Note($"{rel}: {(what.Length == 0 ? "hooks" : what)}");
            if (diff.Outcome == DiffOutcome.Changed)
            {
                string path = Path.Combine(outDir, rel);
                Directory.CreateDirectory(Path.GetDirectoryName(path)!);
                File.WriteAllBytes(path, diff.Output!);
                outputs.Add(new LinkInput(rel, ElfFile.Read(diff.Output!)));
            }
        }
        Lap("diff", watch);
        if (objects.FirstOrDefault(o => o.Diff?.Outcome == DiffOutcome.Mismatched) is { } mismatch)
            return Fail(SourceBuildOutcome.Mismatched, $"{mismatch.Path}: {mismatch.Diff!.Problem}", "build the base and the patched tree with the same compiler and flags", objects);
        var refused = objects.Where(o => o.Diff?.Outcome == DiffOutcome.Refused).ToList();
        if (refused.Count > 0)
        {
            return Fail(SourceBuildOutcome.Refused,
                $"{_name}: the patch changes what a live patch cannot carry:\n" + string.Join("\n", refused.SelectMany(o => o.Diff!.Refusals).Select(x => $"  {x}")),
                "a live patch replaces functions; rework the fix so that existing data, __init code and entry code stay as they are (or reboot into the fixed build)", objects);
        }
        if (outputs.Count == 0)
        {
            return Fail(SourceBuildOutcome.NothingToPatch, $"{_name}: nothing to patch: the patch changes no function's code ({changed.Count} object{(changed.Count == 1 ? "" : "s")} rebuilt{(changed.Count > 0 ? ", none with a changed function" : "")})",
                "a patch of comments, line numbers or unused code needs no live patch", objects);
        }

        // [5] Link against the running hypervisor.
        watch.Restart();
        Step($"Linking {_name} against {Path.GetFileName(image)}");
        var request = new PayloadBuildRequest
        {
            Name = _name,
            Target = target,
            Objects = outputs,
            Depends = _r.Depends,
            DependsOn = _r.DependsOn,
            Metadata = _r.Metadata,
        };
        if (!PayloadBuilder.TryBuild(request, out var payload, out var problem))
            return Fail(SourceBuildOutcome.Refused, problem.Message, problem.Advice, objects);
        Lap("link", watch);
        foreach (var f in payload.Functions)
            Note($"{f.Name}: {f.OldSize} bytes replaced by {f.NewSize}");

        byte[] bytes = payload.Data;
        if (_r.Seal is { } seal)
        {
            Step($"Signing {_name}");
            if (!seal(payload.Data, out bytes, out string? why))
                return Fail(SourceBuildOutcome.Refused, $"cannot sign {_name}: {why}", "check the key and certificate ('xen-livepatch sign --help')", objects);
        }

        // [6] Written whole or not at all.
        Step($"Writing {_r.Output}");
        string full = Path.GetFullPath(_r.Output);
        string temporary = Path.Combine(Path.GetDirectoryName(full) ?? ".", $".{Path.GetFileName(full)}.{Environment.ProcessId}.tmp");
        try
        {
            File.WriteAllBytes(temporary, bytes);
            File.Move(temporary, full, overwrite: true);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            try { File.Delete(temporary); }
            catch (Exception d) when (d is IOException or UnauthorizedAccessException) { }
            return Fail(SourceBuildOutcome.CannotWrite, $"cannot write {_r.Output}: {e.Message}", "check that its folder exists and is writable", objects);
        }
        Note($"{bytes.Length} bytes, build-id {Convert.ToHexStringLower(payload.BuildId)}, in {Seconds(_clock.Elapsed.TotalSeconds)}");
        return new SourceBuildResult
        {
            Outcome = SourceBuildOutcome.Built, Name = _name, Objects = objects, Payload = payload, Written = bytes, BaseImage = image, Timings = _timings, KeptIn = _r.Keep,
        };
    }

    // make in a tree, cross-compiling an arm64 Xen tree on another machine (said once).
    private int Make(TreeLayout layout, string tree, List<(string Variable, string Value)> stamps, string log)
    {
        var cross = layout.IsXen ? layout.CrossCompile(tree) : [];
        if (cross.Count > 0 && !_crossNoted)
        {
            _crossNoted = true;
            Note($"an arm64 tree: cross-compiling with {string.Join(' ', cross.Select(c => $"{c.Variable}={c.Value}"))}");
        }
        return layout.Make(tree, stamps, cross, log, _r.Jobs);
    }

    private static DiffResult DiffObject(string baseTree, string patchedTree, string rel, List<SourcePatch> patches)
    {
        string a = Path.Combine(baseTree, rel);
        string b = Path.Combine(patchedTree, rel);
        var patched = ElfFile.TryRead(File.ReadAllBytes(b), out var pf, out var pe) ? pf : null;
        if (patched == null)
            return new DiffResult { Outcome = DiffOutcome.Mismatched, Object = rel, Problem = new ToolingProblem($"{rel} is not an ELF object: {pe}", "is the tree's build broken?") };
        DiffInput? original = null;
        if (File.Exists(a))
        {
            if (!ElfFile.TryRead(File.ReadAllBytes(a), out var of, out var oe))
                return new DiffResult { Outcome = DiffOutcome.Mismatched, Object = rel, Problem = new ToolingProblem($"{rel} of the base build is not an ELF object: {oe}", "rebuild the base tree") };
            original = new DiffInput(rel, of);
        }
        return ObjectDiff.Run(original, new DiffInput(rel, patched), patches);
    }

    // The files the patches change that must be in the tree before them: not those an earlier patch creates
    // (an advisory's later commit may change a file its first one adds).
    private static List<string> FilesBeforePatching(List<SourcePatch> patches)
    {
        var created = new HashSet<string>(StringComparer.Ordinal);
        var files = new List<string>();
        foreach (var f in patches.SelectMany(p => p.Files))
        {
            if (f.OldPath == null)
            {
                if (f.NewPath != null)
                    created.Add(f.NewPath);
            }
            else if (!created.Contains(f.OldPath) && !files.Contains(f.OldPath, StringComparer.Ordinal))
            {
                files.Add(f.OldPath);
            }
        }
        return files;
    }
}
