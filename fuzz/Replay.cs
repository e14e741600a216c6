using SharpFuzz;

namespace XenLivepatch.Fuzz;

/// <summary>Runs files through a target once each, in process: a corpus replayed, a crash reproduced.</summary>
public static class Replay
{
    /// <summary>The files under <paramref name="paths"/> (files, or directories read recursively), sorted.</summary>
    public static IReadOnlyList<string> Files(IEnumerable<string> paths) =>
        [.. paths.SelectMany(p => Directory.Exists(p) ? Directory.EnumerateFiles(p, "*", SearchOption.AllDirectories) : [p])
            .Where(f => !Path.GetFileName(f).StartsWith('.') && !f.EndsWith("README.txt", StringComparison.Ordinal))
            .Order(StringComparer.Ordinal)];

    /// <summary>Runs <paramref name="target"/> on one input; the broken contract's text, or null.</summary>
    public static string? Check(FuzzTarget target, byte[] input)
    {
        ArgumentNullException.ThrowIfNull(target);
        try
        {
            target.Run(input);
            return null;
        }
#pragma warning disable CA1031 // every exception that escapes a target is what the fuzzer reports
        catch (Exception e)
#pragma warning restore CA1031
        {
            return e.ToString();
        }
    }

    internal static int Run(FuzzTarget target, string[] paths)
    {
        int failed = 0;
        var files = Files(paths);
        foreach (string file in files)
        {
            if (Check(target, File.ReadAllBytes(file)) is { } problem)
            {
                failed++;
                Console.Error.WriteLine($"{file}: {problem}");
            }
        }
        Console.Error.WriteLine($"xlp-fuzz {target.Name}: {files.Count} inputs, {failed} broke the contract");
        return failed == 0 ? 0 : 1;
    }
}

/// <summary>SharpFuzz's instrumentation of our assemblies (not the harness, not the runtime's or third parties').</summary>
internal static class Instrumenting
{
    public static int Run(string[] args)
    {
        if (args.Length != 1 || !Directory.Exists(args[0]))
        {
            Console.Error.WriteLine("xlp-fuzz instrument: give the directory of a copy of the harness's build output");
            return 64;
        }
        // The libraries, and the CLI's own assembly (xen-livepatch-full.dll: the info and build targets run its commands).
        var ours = Directory.EnumerateFiles(args[0], "XenLivepatch.*.dll").Append(Path.Combine(args[0], "xen-livepatch-full.dll"));
        foreach (string dll in ours.Order(StringComparer.Ordinal))
        {
            Fuzzer.Instrument(dll, type => type.StartsWith("XenLivepatch.", StringComparison.Ordinal), Options.Value);
            Console.Error.WriteLine($"xlp-fuzz: instrumented {Path.GetFileName(dll)}");
        }
        return 0;
    }
}
