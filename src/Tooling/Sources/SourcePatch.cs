using System.Diagnostics.CodeAnalysis;
using System.Globalization;
using System.Text;

namespace XenLivepatch.Tooling.Sources;

/// <summary>One hunk of a unified diff: where it applies and its lines (' ' context, '-' removed, '+' added).</summary>
public sealed class PatchHunk
{
    /// <summary>The <c>@@ -a,b +c,d @@</c> line as written.</summary>
    public required string Header { get; init; }
    /// <summary>First line of the old side (1-based; 0 for an empty old side).</summary>
    public required int OldStart { get; init; }
    /// <summary>Lines of the old side.</summary>
    public required int OldCount { get; init; }
    /// <summary>First line of the new side.</summary>
    public required int NewStart { get; init; }
    /// <summary>Lines of the new side.</summary>
    public required int NewCount { get; init; }
    /// <summary>The body: each line with its marker first.</summary>
    public List<string> Lines { get; } = [];
    /// <summary>Hunk number within its file (1-based, as GNU patch counts).</summary>
    public int Number { get; init; }
    /// <summary>The old side has no newline at its end ("\ No newline at end of file" after its last line).</summary>
    public bool OldNoNewline { get; set; }
    /// <summary>The same for the new side.</summary>
    public bool NewNoNewline { get; set; }
}

/// <summary>The changes of a unified diff to one file.</summary>
public sealed class FilePatch
{
    /// <summary>The file's path before (without the a/ prefix), or null for a new file.</summary>
    public string? OldPath { get; init; }
    /// <summary>The path after (without b/), or null when the file is deleted.</summary>
    public string? NewPath { get; init; }
    /// <summary>The hunks, in order.</summary>
    public List<PatchHunk> Hunks { get; } = [];
    /// <summary>The path the change is about (the new one, else the old one).</summary>
    public string Path => NewPath ?? OldPath!;

    /// <summary>
    /// The line an old line has after the patch, or null when the patch removed or replaced it: lines outside
    /// the hunks move by the lines the hunks before them add or remove, context lines map one to one.
    /// </summary>
    public int? MapLine(int oldLine)
    {
        int delta = 0;
        foreach (var h in Hunks)
        {
            int oldFirst = h.OldCount == 0 ? h.OldStart + 1 : h.OldStart;
            if (oldLine < oldFirst)
                break;
            if (oldLine >= oldFirst + h.OldCount)
            {
                delta = h.NewStart + h.NewCount - (oldFirst + h.OldCount) + (h.NewCount == 0 ? 1 : 0);
                continue;
            }
            int o = oldFirst, n = h.NewCount == 0 ? h.NewStart + 1 : h.NewStart;
            foreach (string l in h.Lines)
            {
                char m = l.Length == 0 ? ' ' : l[0];
                if (m == ' ')
                {
                    if (o == oldLine)
                        return n;
                    o++;
                    n++;
                }
                else if (m == '-')
                {
                    if (o == oldLine)
                        return null;
                    o++;
                }
                else if (m == '+')
                {
                    n++;
                }
            }
            return null;
        }
        return oldLine + delta;
    }
}

/// <summary>Why a patch does not apply: the file and the hunk, and what was found.</summary>
/// <param name="Patch">The patch file's name.</param>
/// <param name="File">The file in the tree.</param>
/// <param name="Hunk">The hunk's number in that file (1-based), 0 when the file itself is the problem.</param>
/// <param name="Header">The hunk's @@ line.</param>
/// <param name="Reason">What went wrong.</param>
public sealed record PatchFailure(string Patch, string File, int Hunk, string? Header, string Reason)
{
    /// <summary>"fix.patch: xen/common/foo.c hunk #2 (@@ -10,6 +10,7 @@): ..."</summary>
    public override string ToString() => Hunk > 0 ? $"{Patch}: {File}, hunk #{Hunk} ({Header}): {Reason}" : $"{Patch}: {File}: {Reason}";
}

/// <summary>
/// A unified diff (<c>diff -u</c>, <c>git diff</c>, <c>git format-patch</c>), parsed: the files it changes with
/// their hunks. It applies as GNU <c>patch -p1 --fuzz=0</c> does: every hunk's context and removed lines must be
/// found exactly, at the line the hunk names or displaced by an offset; nothing is written until every hunk of
/// every file has been placed. It also maps old line numbers to new ones, so that a diff can tell a moved
/// <c>__LINE__</c> from a changed constant.
/// </summary>
public sealed class SourcePatch
{
    private SourcePatch(string name) => Name = name;

    /// <summary>The patch's name (its file name), for messages.</summary>
    public string Name { get; }

    /// <summary>The files it changes.</summary>
    public List<FilePatch> Files { get; } = [];

    /// <summary>True when it changes nothing (no hunk, no new or deleted file).</summary>
    public bool IsEmpty => Files.All(f => f.Hunks.Count == 0 && f.OldPath != null && f.NewPath != null);

    /// <summary>Reads and parses a patch file (as bytes: Latin-1 keeps every byte, whatever the files' encoding).</summary>
    public static bool TryRead(string path, [NotNullWhen(true)] out SourcePatch? patch, [NotNullWhen(false)] out string? error)
    {
        patch = null;
        string text;
        try
        {
            text = File.ReadAllText(path, Encoding.Latin1);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            error = $"cannot read {path}: {e.Message}";
            return false;
        }
        return TryParse(System.IO.Path.GetFileName(path), text, out patch, out error);
    }

    /// <summary>
    /// Parses a patch (text decoded as Latin-1, as <see cref="TryRead"/> does, so that it compares byte for byte
    /// with the files it patches); fails on a malformed one (a hunk whose line counts do not match its header,
    /// a binary patch).
    /// </summary>
    public static bool TryParse(string name, string text, [NotNullWhen(true)] out SourcePatch? patch, [NotNullWhen(false)] out string? error)
    {
        patch = null;
        var p = new SourcePatch(name);
        var lines = text.Replace("\r\n", "\n", StringComparison.Ordinal).Split('\n');
        FilePatch? current = null;
        string? pendingOld = null;
        int i = 0;
        while (i < lines.Length)
        {
            string l = lines[i];
            if (l.StartsWith("GIT binary patch", StringComparison.Ordinal) || l.StartsWith("Binary files ", StringComparison.Ordinal))
            {
                error = $"{name}: line {i + 1}: a binary patch; only text changes can be applied";
                return false;
            }
            if (l.StartsWith("--- ", StringComparison.Ordinal) && i + 1 < lines.Length && lines[i + 1].StartsWith("+++ ", StringComparison.Ordinal))
            {
                pendingOld = PathOf(l[4..]);
                string? newPath = PathOf(lines[i + 1][4..]);
                if (pendingOld == null && newPath == null)
                {
                    error = $"{name}: line {i + 1}: both sides are /dev/null";
                    return false;
                }
                current = new FilePatch { OldPath = pendingOld, NewPath = newPath };
                p.Files.Add(current);
                i += 2;
                continue;
            }
            if (l.StartsWith("@@ ", StringComparison.Ordinal))
            {
                if (current == null)
                {
                    error = $"{name}: line {i + 1}: a hunk before any '--- / +++' file header";
                    return false;
                }
                if (!TryHunkHeader(l, out int os, out int oc, out int ns, out int nc))
                {
                    error = $"{name}: line {i + 1}: malformed hunk header '{l}'";
                    return false;
                }
                var h = new PatchHunk { Header = l.Length > 60 ? l[..60] : l, OldStart = os, OldCount = oc, NewStart = ns, NewCount = nc, Number = current.Hunks.Count + 1 };
                i++;
                int oldSeen = 0, newSeen = 0;
                char last = ' ';
                while (i < lines.Length && (oldSeen < oc || newSeen < nc || (i < lines.Length && lines[i].StartsWith('\\'))))
                {
                    string body = lines[i];
                    if (body.StartsWith('\\'))
                    {
                        if (last is ' ' or '-')
                            h.OldNoNewline = true;
                        if (last is ' ' or '+')
                            h.NewNoNewline = true;
                        i++;
                        continue;
                    }
                    if (oldSeen >= oc && newSeen >= nc)
                        break;
                    char m = body.Length == 0 ? ' ' : body[0];
                    switch (m)
                    {
                        case ' ': oldSeen++; newSeen++; break;
                        case '-': oldSeen++; break;
                        case '+': newSeen++; break;
                        default:
                            error = $"{name}: line {i + 1}: hunk {h.Header} ends early: expected {oc} old and {nc} new lines, found {oldSeen} and {newSeen}";
                            return false;
                    }
                    h.Lines.Add(body.Length == 0 ? " " : body);
                    last = m;
                    i++;
                }
                if (oldSeen != oc || newSeen != nc)
                {
                    error = $"{name}: hunk {h.Header} of {current.Path} is truncated: expected {oc} old and {nc} new lines, found {oldSeen} and {newSeen}";
                    return false;
                }
                current.Hunks.Add(h);
                continue;
            }
            i++;
        }
        patch = p;
        error = null;
        return true;
    }

    // "a/xen/common/foo.c\t2024-01-01 ..." -> "xen/common/foo.c" (-p1); /dev/null -> null.
    private static string? PathOf(string field)
    {
        string f = field;
        int tab = f.IndexOf('\t', StringComparison.Ordinal);
        if (tab >= 0)
            f = f[..tab];
        f = f.TrimEnd();
        if (f == "/dev/null")
            return null;
        int slash = f.IndexOf('/', StringComparison.Ordinal);
        return slash >= 0 ? f[(slash + 1)..] : f;
    }

    private static bool TryHunkHeader(string l, out int os, out int oc, out int ns, out int nc)
    {
        os = oc = ns = nc = 0;
        // @@ -os[,oc] +ns[,nc] @@ ...
        var parts = l.Split(' ', 4);
        return parts.Length >= 3 && parts[1].StartsWith('-') && parts[2].StartsWith('+') &&
            TryRange(parts[1][1..], out os, out oc) && TryRange(parts[2][1..], out ns, out nc);
    }

    private static bool TryRange(string s, out int start, out int count)
    {
        count = 1;
        int comma = s.IndexOf(',', StringComparison.Ordinal);
        if (comma >= 0)
            return int.TryParse(s[..comma], NumberStyles.None, CultureInfo.InvariantCulture, out start) &&
                int.TryParse(s[(comma + 1)..], NumberStyles.None, CultureInfo.InvariantCulture, out count);
        return int.TryParse(s, NumberStyles.None, CultureInfo.InvariantCulture, out start);
    }

    /// <summary>
    /// Applies the patch to the files under <paramref name="root"/>: first every hunk is placed in memory (any
    /// failure leaves the files as they were), then the changed files are written. Returns the files written.
    /// </summary>
    public bool TryApply(string root, out List<string> written, [NotNullWhen(false)] out PatchFailure? failure)
    {
        written = [];
        var results = new List<(string Path, string? Text)>();
        foreach (var f in Files)
        {
            if (!TryApplyFile(root, f, out string? text, out failure))
                return false;
            results.Add((f.Path, text));
            if (f.OldPath != null && f.NewPath != null && f.OldPath != f.NewPath)
                results.Add((f.OldPath, null));
        }
        foreach (var (path, text) in results)
        {
            string full = System.IO.Path.Combine(root, path);
            if (text == null)
            {
                File.Delete(full);
            }
            else
            {
                Directory.CreateDirectory(System.IO.Path.GetDirectoryName(full)!);
                File.WriteAllText(full, text, Encoding.Latin1);
            }
            written.Add(path);
        }
        failure = null;
        return true;
    }

    private bool TryApplyFile(string root, FilePatch f, out string? result, [NotNullWhen(false)] out PatchFailure? failure)
    {
        result = null;
        failure = null;
        List<string> lines;
        bool endsWithNewline = true;
        if (f.OldPath == null)
        {
            if (File.Exists(System.IO.Path.Combine(root, f.NewPath!)))
            {
                failure = new PatchFailure(Name, f.NewPath!, 0, null, "the patch creates this file, but the tree already has it");
                return false;
            }
            lines = [];
        }
        else
        {
            string full = System.IO.Path.Combine(root, f.OldPath);
            if (!File.Exists(full))
            {
                failure = new PatchFailure(Name, f.OldPath, 0, null, "the tree has no such file");
                return false;
            }
            string text = File.ReadAllText(full, Encoding.Latin1);
            endsWithNewline = text.Length == 0 || text.EndsWith('\n');
            lines = [.. text.Split('\n')];
            if (endsWithNewline)
                lines.RemoveAt(lines.Count - 1);
        }
        int offset = 0;
        int minimum = 0;
        foreach (var h in f.Hunks)
        {
            var old = h.Lines.Where(l => l[0] != '+').Select(l => l[1..]).ToList();
            var @new = h.Lines.Where(l => l[0] != '-').Select(l => l[1..]).ToList();
            int expected = (h.OldCount == 0 ? h.OldStart : h.OldStart - 1) + offset;
            int at = Find(lines, old, expected, minimum);
            if (at < 0)
            {
                string why = old.Count == 0 ? "cannot place it" : $"its {old.Count} context and removed lines are not in the file (it was expected near line {expected + 1})";
                failure = new PatchFailure(Name, f.Path, h.Number, h.Header, why);
                return false;
            }
            lines.RemoveRange(at, old.Count);
            lines.InsertRange(at, @new);
            offset += at - (expected) + @new.Count - old.Count;
            minimum = at + @new.Count;
            if (h.NewNoNewline && at + @new.Count == lines.Count)
                endsWithNewline = false;
            else if (h.OldNoNewline && at + @new.Count == lines.Count)
                endsWithNewline = true;
        }
        if (f.NewPath == null)
        {
            if (lines.Count != 0)
            {
                failure = new PatchFailure(Name, f.OldPath!, 0, null, "the patch deletes this file, but it holds more than the patch removes");
                return false;
            }
            result = null;
            return true;
        }
        var sb = new StringBuilder();
        for (int k = 0; k < lines.Count; k++)
        {
            sb.Append(lines[k]);
            if (k < lines.Count - 1 || endsWithNewline)
                sb.Append('\n');
        }
        result = sb.ToString();
        return true;
    }

    // The old lines at the expected place, or the nearest place before or after it (an offset, as GNU patch allows).
    private static int Find(List<string> lines, List<string> old, int expected, int minimum)
    {
        int max = lines.Count - old.Count;
        for (int d = 0; d <= lines.Count; d++)
        {
            int a = expected - d, b = expected + d;
            if (a >= minimum && a <= max && Matches(lines, old, a))
                return a;
            if (d > 0 && b >= minimum && b <= max && Matches(lines, old, b))
                return b;
            if (a < minimum && b > max)
                break;
        }
        return -1;
    }

    private static bool Matches(List<string> lines, List<string> old, int at)
    {
        for (int k = 0; k < old.Count; k++)
        {
            if (!string.Equals(lines[at + k], old[k], StringComparison.Ordinal))
                return false;
        }
        return true;
    }
}
