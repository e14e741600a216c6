using XenLivepatch.Cli;

// Xen's tool writes stdout unbuffered (setvbuf _IONBF): "Applying x... " is out before the 60 ms wait. Every
// write here is one write(2) on the descriptor; no console set-up runs (start-up time is part of parity).
using var stdout = new FdWriter(1);
using var stderr = new FdWriter(2);
return XenLivepatchTool.RunAsync(RawArgs(args), stdout, stderr, ToolHost.Default).GetAwaiter().GetResult();

// .NET decodes the command line as UTF-8 and loses what is not (U+FFFD). Xen's tool passes the bytes as they are
// (a payload name may be any bytes): read them again from /proc, kept as RawText.
static string[] RawArgs(string[] args)
{
    if (!args.Any(a => a.Contains('\uFFFD', StringComparison.Ordinal)))
        return args;
    try
    {
        byte[] cmdline = File.ReadAllBytes("/proc/self/cmdline");
        var all = new List<string>();
        int start = 0;
        for (int i = 0; i < cmdline.Length; i++)
        {
            if (cmdline[i] != 0)
                continue;
            all.Add(XenLivepatch.Control.RawText.Decode(cmdline.AsSpan(start, i - start)));
            start = i + 1;
        }
        return all.Count >= args.Length ? [.. all[^args.Length..]] : args;
    }
    catch (IOException)
    {
        return args;
    }
}
