using System.Text;
using XenLivepatch.Cli;

// Xen's tool writes stdout unbuffered (setvbuf _IONBF): "Applying x... " is out before the 60 ms wait. A writer
// that flushes every write does the same, without the console's terminal set-up.
var encoding = new UTF8Encoding(encoderShouldEmitUTF8Identifier: false);
using var stdout = new StreamWriter(Console.OpenStandardOutput(), encoding, 256) { AutoFlush = true };
using var stderr = new StreamWriter(Console.OpenStandardError(), encoding, 256) { AutoFlush = true };
return await XenLivepatchTool.RunAsync(args, stdout, stderr, ToolHost.Default).ConfigureAwait(false);
