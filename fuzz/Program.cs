using SharpFuzz;
using XenLivepatch.Fuzz;

// xlp-fuzz TARGET                 under afl-fuzz: the forkserver, one process running input after input (fuzz/run.sh)
// xlp-fuzz TARGET FILE|DIR...     each file once, in process: what failed and why (replaying a corpus or a crash)
// xlp-fuzz seeds DIR              records the wire and client seeds (fuzz/Seeds.cs)
// xlp-fuzz instrument DIR         instruments our assemblies in DIR for afl (SharpFuzz), in place
// xlp-fuzz --list                 the targets
if (args.Length == 0 || args[0] is "--help" or "-h")
{
    Console.Error.Write("""
        Usage: xlp-fuzz TARGET [FILE|DIR...] | xlp-fuzz instrument DIR | xlp-fuzz --list
        Coverage-guided fuzzing harnesses. Without files, TARGET runs under afl-fuzz (fuzz/run.sh starts it); with
        files or directories, each file is run once and any broken contract is printed (exit 1).

        """);
    return args.Length == 0 ? 64 : 0;
}
if (args[0] == "--list")
{
    foreach (var t in Targets.All)
        Console.WriteLine($"{t.Name,-10} {t.What}");
    return 0;
}
if (args[0] == "instrument")
    return Instrumenting.Run(args[1..]);
if (args[0] == "seeds")
    return Seeds.Run(args[1..]);
var target = Targets.Named(args[0]);
if (target == null)
{
    Console.Error.WriteLine($"xlp-fuzz: no target '{args[0]}'; xlp-fuzz --list names them");
    return 64;
}
if (args.Length == 1)
{
    Fuzzer.Run(stream =>
    {
        using var copy = new MemoryStream();
        stream.CopyTo(copy);
        target.Run(copy.ToArray());
    });
    return 0;
}
return Replay.Run(target, args[1..]);
