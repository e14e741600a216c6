using XenLivepatch.Cli;

// Xen's tool writes stdout unbuffered (setvbuf _IONBF): "Applying x... " is out before the 60 ms wait. Every
// write here is one write(2) on the descriptor; no console set-up runs (start-up time is part of parity).
using var stdout = new FdWriter(1);
using var stderr = new FdWriter(2);
return XenLivepatchTool.RunAsync(args, stdout, stderr, ToolHost.Default).GetAwaiter().GetResult();
