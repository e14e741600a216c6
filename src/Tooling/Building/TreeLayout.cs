using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Text.RegularExpressions;

namespace XenLivepatch.Tooling;

/// <summary>
/// How build-source drives a tree: where make runs and where the image and objects are (a Xen tree, or the
/// sandbox hypervisor's tree), the build stamps that make two builds of one tree identical, and which objects
/// a rebuild changed.
/// </summary>
internal sealed partial record TreeLayout(string MakeDirectory, string ObjectRoot, string Image, bool IsXen)
{
    // What Xen stamps into include/xen/compile.h, and the values this tool builds with (fixed, so two builds of
    // the same tree are identical; a given base build's own values are read back from its compile.h).
    private static readonly (string Variable, string Macro, string Value)[] s_stamps =
    [
        ("XEN_BUILD_DATE", "XEN_COMPILE_DATE", "Mon Jan  1 00:00:00 UTC 2024"),
        ("XEN_BUILD_TIME", "XEN_COMPILE_TIME", "00:00:00"),
        ("XEN_WHOAMI", "XEN_COMPILE_BY", "xen-livepatch"),
        ("XEN_DOMAIN", "XEN_COMPILE_DOMAIN", "build"),
        ("XEN_BUILD_HOST", "XEN_COMPILE_HOST", "xen-livepatch"),
    ];

    /// <summary>The stamps this tool builds with.</summary>
    public static List<(string Variable, string Value)> FixedStamps() => s_stamps.Select(s => (s.Variable, s.Value)).ToList();

    /// <summary>The layout of <paramref name="tree"/>, or null when it is neither a Xen tree nor a tree with a Makefile.</summary>
    public static TreeLayout? Of(string tree)
    {
        string xen = Path.Combine(tree, "xen");
        if (File.Exists(Path.Combine(xen, "Makefile")) && Directory.Exists(Path.Combine(xen, "common")))
            return new TreeLayout("xen", "xen", Path.Combine("xen", "xen-syms"), true);
        if (File.Exists(Path.Combine(tree, "Makefile")))
            return new TreeLayout(".", ".", "xen-syms", false);
        return null;
    }

    /// <summary>compile.h's stamps of a base build, so that the patched build writes the same compile.h (and version.o).</summary>
    public static List<(string Variable, string Value)>? ReadStamps(string compileH)
    {
        if (!File.Exists(compileH))
            return null;
        var values = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (string line in File.ReadLines(compileH))
        {
            var m = CompileMacro().Match(line);
            if (m.Success)
                values[m.Groups[1].Value] = m.Groups[2].Value;
        }
        var result = new List<(string Variable, string Value)>();
        foreach (var (variable, macro, _) in s_stamps)
        {
            if (!values.TryGetValue(macro, out string? v))
                return null;
            result.Add((variable, v));
        }
        return result;
    }

    [GeneratedRegex("^#define\\s+(XEN_COMPILE_\\w+)\\s+\"(.*)\"\\s*$")]
    private static partial Regex CompileMacro();

    /// <summary>
    /// Runs make in <paramref name="tree"/> with the build stamps and <paramref name="cross"/>'s variables (Xen trees),
    /// its output to <paramref name="log"/>; the exit code.
    /// </summary>
    public int Make(string tree, List<(string Variable, string Value)> stamps, IReadOnlyList<(string Variable, string Value)> cross, string log, int jobs)
    {
        var psi = new ProcessStartInfo("make") { RedirectStandardError = true, RedirectStandardOutput = true, UseShellExecute = false, WorkingDirectory = tree };
        foreach (string a in (string[])["-C", MakeDirectory, $"-j{Math.Max(1, jobs)}"])
            psi.ArgumentList.Add(a);
        foreach (string v in (string[])["MAKEFLAGS", "MFLAGS", "MAKELEVEL", "MAKEOVERRIDES"])
            psi.Environment.Remove(v);
        psi.Environment["LC_ALL"] = "C";
        if (IsXen)
        {
            foreach (var (variable, value) in stamps)
                psi.Environment[variable] = value;
            foreach (var (variable, value) in cross)
                psi.Environment[variable] = value;
        }
        using var output = new StreamWriter(log);
        using var p = new Process { StartInfo = psi };
        var gate = new object();
        void Line(string? l)
        {
            if (l == null)
                return;
            lock (gate)
                output.WriteLine(l);
        }
        p.OutputDataReceived += (_, e) => Line(e.Data);
        p.ErrorDataReceived += (_, e) => Line(e.Data);
        p.Start();
        p.BeginOutputReadLine();
        p.BeginErrorReadLine();
        p.WaitForExit();
        return p.ExitCode;
    }

    /// <summary>
    /// What Xen's make needs to build an arm64 tree on another machine, as Xen's own cross build takes it
    /// (<c>XEN_TARGET_ARCH=arm64 CROSS_COMPILE=aarch64-linux-gnu-</c>, Debian's cross compiler): only when the tree's
    /// .config is arm64's, this machine is not, and the caller's environment does not say otherwise already.
    /// </summary>
    public List<(string Variable, string Value)> CrossCompile(string tree)
    {
        var env = new List<(string, string)>();
        string config = Path.Combine(tree, MakeDirectory, ".config");
        if (RuntimeInformation.OSArchitecture == Architecture.Arm64 || !File.Exists(config)
            || !File.ReadLines(config).Contains("CONFIG_ARM_64=y", StringComparer.Ordinal))
            return env;
        if (string.IsNullOrEmpty(Environment.GetEnvironmentVariable("XEN_TARGET_ARCH")))
            env.Add(("XEN_TARGET_ARCH", "arm64"));
        if (Environment.GetEnvironmentVariable("CROSS_COMPILE") == null)
            env.Add(("CROSS_COMPILE", "aarch64-linux-gnu-"));
        return env;
    }

    /// <summary>
    /// The compiled objects the patched build changed (or added), relative to the tree: not the aggregates
    /// (built_in.o, prelink.o), not host tools, and for an object Xen turns into __init (foo.init.o) that one.
    /// </summary>
    public List<string> ChangedObjects(string baseTree, string patchedTree)
    {
        string root = Path.Combine(patchedTree, ObjectRoot);
        var result = new List<string>();
        // Not through symbolic links: Xen's tree links xen/source to itself.
        var walk = new EnumerationOptions { RecurseSubdirectories = true, AttributesToSkip = FileAttributes.ReparsePoint, ReturnSpecialDirectories = false };
        foreach (string path in Directory.EnumerateFiles(root, "*.o", walk))
        {
            string rel = Path.GetRelativePath(patchedTree, path);
            string file = Path.GetFileName(path);
            string fromRoot = Path.GetRelativePath(root, path);
            if (file.StartsWith('.') || file is "built_in.o" or "built_in_bin.o" or "prelink.o" or "prelink-efi.o" ||
                fromRoot.StartsWith("tools/", StringComparison.Ordinal) || fromRoot.StartsWith("scripts/", StringComparison.Ordinal) ||
                rel.Split('/').Contains(".git"))
            {
                continue;
            }
            if (!file.EndsWith(".init.o", StringComparison.Ordinal) && File.Exists(Path.ChangeExtension(path, ".init.o")))
                continue;
            if (!TreeFiles.SameFile(Path.Combine(baseTree, rel), path))
                result.Add(rel);
        }
        result.Sort(StringComparer.Ordinal);
        return result;
    }
}

/// <summary>The file operations build-source needs on whole trees.</summary>
internal static class TreeFiles
{
    /// <summary>Copies a tree keeping modification times (make decides what to rebuild by them).</summary>
    public static bool Copy(string from, string to, out string? error)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(to)!);
        var psi = new ProcessStartInfo("cp") { RedirectStandardError = true, RedirectStandardOutput = true, UseShellExecute = false };
        foreach (string a in (string[])["-a", "--", from, to])
            psi.ArgumentList.Add(a);
        using var p = Process.Start(psi)!;
        string err = p.StandardError.ReadToEnd();
        p.StandardOutput.ReadToEnd();
        p.WaitForExit();
        error = p.ExitCode == 0 ? null : err.Trim();
        return p.ExitCode == 0;
    }

    /// <summary>Whether two files exist and hold the same bytes.</summary>
    public static bool SameFile(string a, string b)
    {
        if (!File.Exists(a) || !File.Exists(b))
            return false;
        var fa = new FileInfo(a);
        var fb = new FileInfo(b);
        if (fa.Length != fb.Length)
            return false;
        return File.ReadAllBytes(a).AsSpan().SequenceEqual(File.ReadAllBytes(b));
    }

    /// <summary>The lines of a make log that say what failed (or its last lines), indented for a message.</summary>
    public static string Tail(string log)
    {
        var lines = File.ReadAllLines(log);
        var interesting = lines.Where(l => l.Contains("error", StringComparison.OrdinalIgnoreCase) || l.Contains("Error ", StringComparison.Ordinal)).TakeLast(6).ToList();
        var tail = interesting.Count > 0 ? interesting : lines.TakeLast(8).ToList();
        return string.Join("\n", tail.Select(l => "    " + (l.Length > 200 ? l[..200] + "..." : l)));
    }
}
