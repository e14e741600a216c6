using System.Text;
using Microsoft.Win32.SafeHandles;
using XenLivepatch.Cli;

// Xen's tool writes stdout unbuffered (setvbuf _IONBF): "Applying x... " is out before the 60 ms wait. A writer
// that flushes every write does the same. The standard descriptors are written directly (no Console): the
// console's terminal and signal set-up would cost start-up time for nothing.
var encoding = new UTF8Encoding(encoderShouldEmitUTF8Identifier: false);
using var stdout = new StreamWriter(new FileStream(new SafeFileHandle(1, ownsHandle: false), FileAccess.Write, 1), encoding, 256) { AutoFlush = true };
using var stderr = new StreamWriter(new FileStream(new SafeFileHandle(2, ownsHandle: false), FileAccess.Write, 1), encoding, 256) { AutoFlush = true };
return await XenLivepatchTool.RunAsync(args, stdout, stderr, ToolHost.Default).ConfigureAwait(false);
