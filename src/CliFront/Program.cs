using XenLivepatch.Cli;

// The front binary (FrontDoor): Xen's commands here, everything else in xen-livepatch-full by exec. Each write is one
// write(2) on the descriptor, unbuffered as Xen's tool writes (see src/Cli/Program.cs).
using var stdout = new FdWriter(1);
using var stderr = new FdWriter(2);
if (FrontDoor.Runs(args, out var options, out var rest) is { } command && !HasRawBytes(args))
    return FrontDoor.RunAsync(command, rest, options, stdout, stderr, ToolHost.Default).GetAwaiter().GetResult();
return FrontDoor.Exec(stdout, stderr, Array.IndexOf(args, "--json") >= 0);

// .NET decodes the command line as UTF-8; an argument that is not (U+FFFD) goes to the whole tool, which reads its
// bytes again from /proc (a payload name may be any bytes) and keeps them as they are.
static bool HasRawBytes(string[] args) => args.Any(a => a.Contains('\uFFFD', StringComparison.Ordinal));
