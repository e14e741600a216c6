namespace XenLivepatch.Cli;

/// <summary>Our own commands' exit codes where they are not an errno.</summary>
internal static class OwnExitCodes
{
    /// <summary>EX_USAGE: the command line is wrong.</summary>
    public const int Usage = 64;
    /// <summary>EX_DATAERR: the inputs were read, but what they ask for cannot be made (a payload Xen would refuse).</summary>
    public const int DataError = 65;
    /// <summary>EX_NOINPUT: an input file cannot be read.</summary>
    public const int NoInput = 66;
    /// <summary>EX_CANTCREAT: the output file cannot be written.</summary>
    public const int CantCreate = 73;
    /// <summary>build-source: a patch does not apply to the tree (the tree is left as it was).</summary>
    public const int PatchDoesNotApply = 80;
    /// <summary>build-source: the tree (original or patched) does not build.</summary>
    public const int TreeDoesNotBuild = 81;
    /// <summary>diff, build-source: the objects were built by different compilers or flags, or cannot be compared.</summary>
    public const int Mismatched = 82;
    /// <summary>diff, build-source: the patch changes no function (an empty patch, comments, line numbers only).</summary>
    public const int NothingToPatch = 83;
}

/// <summary>
/// A small option reader for our own commands: <c>--name value</c>, <c>--flag</c>, repeated options, and
/// positional arguments, with errors that say what is wrong.
/// </summary>
internal sealed class ArgReader
{
    private readonly List<string> _positional = [];
    private readonly Dictionary<string, List<string>> _values = new(StringComparer.Ordinal);
    private readonly HashSet<string> _flags = new(StringComparer.Ordinal);

    private ArgReader() { }

    public IReadOnlyList<string> Positional => _positional;

    /// <summary>Parses <paramref name="args"/>: options in <paramref name="withValue"/> take the next argument (or, for
    /// <paramref name="multi"/>, every argument up to the next option); those in <paramref name="flags"/> take none.
    /// <paramref name="aliases"/> maps short forms to options (<c>-o</c> to <c>--output</c>).</summary>
    public static ArgReader? Parse(string[] args, string[] withValue, string[] flags, string[] multi, out string? error,
        IReadOnlyDictionary<string, string>? aliases = null)
    {
        var r = new ArgReader();
        for (int i = 0; i < args.Length; i++)
        {
            string a = aliases != null && aliases.TryGetValue(args[i], out string? full) ? full : args[i];
            if (a.StartsWith("--", StringComparison.Ordinal) && a.Length > 2)
            {
                string name = a;
                string? inline = null;
                int eq = a.IndexOf('=', StringComparison.Ordinal);
                if (eq > 0)
                {
                    name = a[..eq];
                    inline = a[(eq + 1)..];
                }
                if (flags.Contains(name))
                {
                    r._flags.Add(name);
                    continue;
                }
                if (!withValue.Contains(name) && !multi.Contains(name))
                {
                    error = $"unknown option {name}";
                    return null;
                }
                if (!r._values.TryGetValue(name, out var list))
                    r._values[name] = list = [];
                if (inline != null)
                {
                    list.Add(inline);
                    continue;
                }
                if (i + 1 >= args.Length)
                {
                    error = $"{name} needs a value";
                    return null;
                }
                list.Add(args[++i]);
                if (multi.Contains(name))
                {
                    while (i + 1 < args.Length && !args[i + 1].StartsWith("--", StringComparison.Ordinal))
                        list.Add(args[++i]);
                }
                continue;
            }
            r._positional.Add(a);
        }
        error = null;
        return r;
    }

    public bool Flag(string name) => _flags.Contains(name);

    public string? Value(string name) => _values.TryGetValue(name, out var l) ? l[^1] : null;

    public IReadOnlyList<string> Values(string name) => _values.TryGetValue(name, out var l) ? l : [];
}
