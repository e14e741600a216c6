using XenLivepatch.Interop;

namespace XenLivepatch.Host;

/// <summary>
/// Writes that survive a crash or a full disk whole or not at all: the bytes go to a temporary file in the same
/// directory, which is flushed to the disk (fsync) and renamed over the final name, and then the directory itself
/// is flushed so that the rename is on the disk too. A failure at any step removes the temporary file and leaves
/// the final name as it was.
/// </summary>
internal static class DurableFiles
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
        using var fd = SafeFileDescriptor.Open(directory, LibC.O_RDONLY | LibC.O_CLOEXEC);
        if (fd.IsInvalid)
            throw new IOException($"cannot open {directory} to flush it: {LibC.LastError()}");
        // Some file systems cannot flush a directory (EINVAL, ENOTSUP): their renames are as durable as they get.
        if (LibC.fsync(fd) != 0 && LibC.Errno is not (LibC.EINVAL or LibC.ENOTSUP))
            throw new IOException($"cannot flush {directory} to the disk: {LibC.LastError()}");
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
}
