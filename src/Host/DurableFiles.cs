using System.Runtime.InteropServices;

namespace XenLivepatch.Host;

/// <summary>
/// Writes that survive a crash or a full disk whole or not at all: the bytes go to a temporary file in the same
/// directory, which is flushed to the disk (fsync) and renamed over the final name, and then the directory itself
/// is flushed so that the rename is on the disk too. A failure at any step removes the temporary file and leaves
/// the final name as it was.
/// </summary>
internal static partial class DurableFiles
{
    /// <summary>The prefix of temporary files: a store ignores (and cleans up) files that start with it.</summary>
    public const string TemporaryPrefix = ".tmp-";

    /// <summary>Writes <paramref name="data"/> to <paramref name="path"/> atomically and durably.</summary>
    /// <exception cref="IOException">The write failed (the message names the file and the cause); nothing changed.</exception>
    public static void Write(string path, ReadOnlySpan<byte> data)
    {
        string directory = Path.GetDirectoryName(Path.GetFullPath(path))!;
        string temporary = Path.Combine(directory, $"{TemporaryPrefix}{Environment.ProcessId}-{Guid.NewGuid():N}-{Path.GetFileName(path)}");
        try
        {
            using (var stream = new FileStream(temporary, FileMode.CreateNew, FileAccess.Write, FileShare.None))
            {
                stream.Write(data);
                // FileStream.Flush(true) is fsync(2).
                stream.Flush(flushToDisk: true);
            }
            File.Move(temporary, path, overwrite: true);
        }
        catch
        {
            TryDelete(temporary);
            throw;
        }
        SyncDirectory(directory);
    }

    /// <summary>Removes <paramref name="path"/> and flushes its directory; a file already gone is no error.</summary>
    public static void Delete(string path)
    {
        if (!File.Exists(path))
            return;
        File.Delete(path);
        SyncDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
    }

    /// <summary>fsync(2) on a directory: makes its entries (a rename, a new or removed file) durable.</summary>
    public static void SyncDirectory(string directory)
    {
        int fd = Open(directory, ORdOnly | OCloexec);
        if (fd < 0)
            throw new IOException($"cannot open {directory} to flush it: {Marshal.GetPInvokeErrorMessage(Marshal.GetLastPInvokeError())}");
        try
        {
            // Some file systems cannot flush a directory (EINVAL, ENOTSUP): their renames are as durable as they get.
            if (Fsync(fd) != 0 && Marshal.GetLastPInvokeError() is not (22 or 95))
                throw new IOException($"cannot flush {directory} to the disk: {Marshal.GetPInvokeErrorMessage(Marshal.GetLastPInvokeError())}");
        }
        finally
        {
            _ = Close(fd);
        }
    }

    /// <summary>Deletes a file, ignoring failures (cleanup after a failed write).</summary>
    public static void TryDelete(string path)
    {
        try
        {
            File.Delete(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
        }
    }

    // Linux values (the same on x86-64 and arm64); a directory opens read-only for fsync.
    private const int ORdOnly = 0;
    private const int OCloexec = 0x80000;

    [LibraryImport("libc", EntryPoint = "open", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int Open(string path, int flags);

    [LibraryImport("libc", EntryPoint = "fsync", SetLastError = true)]
    private static partial int Fsync(int fd);

    [LibraryImport("libc", EntryPoint = "close", SetLastError = true)]
    private static partial int Close(int fd);
}
