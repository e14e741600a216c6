namespace XenLivepatch.Cli;

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
