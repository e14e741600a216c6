using System.Text;
using XenLivepatch.Control;
using XenLivepatch.Interop;

namespace XenLivepatch.Cli;

/// <summary>
/// A text writer straight onto a file descriptor: each write is one <c>write(2)</c> of its UTF-8 bytes, as the C
/// tool's unbuffered stdout does, and nothing of the console or file-stream machinery runs at start-up.
/// </summary>
internal sealed class FdWriter : TextWriter
{
    private readonly int _fd;

    public FdWriter(int fd) => _fd = fd;

    public override Encoding Encoding => Encoding.UTF8;

    public override void Write(char value) => Write(new ReadOnlySpan<char>(in value));

    public override void Write(string? value) => Write(value.AsSpan());

    public override void Write(char[] buffer, int index, int count) => Write(buffer.AsSpan(index, count));

    public override unsafe void Write(ReadOnlySpan<char> buffer)
    {
        if (buffer.IsEmpty)
            return;
        if (RawText.HasRawBytes(buffer))
        {
            // A name that is not UTF-8 is printed as its bytes, as the C tool prints it.
            byte[] raw = RawText.Encode(buffer);
            fixed (byte* r = raw)
                WriteAll(r, raw.Length);
            return;
        }
        int max = Encoding.UTF8.GetMaxByteCount(buffer.Length);
        byte[]? rented = max > 1024 ? new byte[max] : null;
        Span<byte> bytes = rented ?? stackalloc byte[1024];
        int n = Encoding.UTF8.GetBytes(buffer, bytes);
        fixed (byte* p = bytes)
            WriteAll(p, n);
    }

    private unsafe void WriteAll(byte* p, int n)
    {
        int done = 0;
        while (done < n)
        {
            nint w = LibC.write(_fd, p + done, (nuint)(n - done));
            if (w < 0)
            {
                if (LibC.Errno == LibC.EINTR)
                    continue;
                return; // a closed pipe: nothing useful to do, as printf would not either
            }
            done += (int)w;
        }
    }
}
