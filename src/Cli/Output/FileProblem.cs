using XenLivepatch.Interop;

namespace XenLivepatch.Cli;

/// <summary>
/// Says in words why a file could not be read or written, and what to do about it. The runtime's own messages say
/// what failed ("Could not find file"), never what to do next, and a directory opened for reading fails there as
/// "access denied": the reason is read again from the file system.
/// </summary>
internal static class FileProblem
{
    /// <summary>"cannot read PATH: REASON" plus what to do, for a read that threw <paramref name="e"/>.</summary>
    public static string Reading(string path, Exception? e) => $"cannot read {path}: {ReadReason(path, e)}";

    /// <summary>"cannot write PATH: REASON" plus what to do, for a write that threw <paramref name="e"/>.</summary>
    public static string Writing(string path, Exception? e) => $"cannot write {path}: {WriteReason(path, e)}";

    /// <summary>Why <paramref name="path"/> cannot be read, and what to do.</summary>
    public static string ReadReason(string path, Exception? e)
    {
        if (path.Length == 0)
            return "the path is empty: give a file";
        if (Directory.Exists(path))
            return "it is a directory, not a file: give a file in it";
        if (!File.Exists(path) && e is not UnauthorizedAccessException)
        {
            string? folder = Folder(path);
            if (folder != null && !Directory.Exists(folder))
                return $"no such file (the directory {folder} does not exist): check the path";
            return "no such file: check the path";
        }
        return Common(e) ?? "it cannot be read";
    }

    /// <summary>Why <paramref name="path"/> cannot be written, and what to do.</summary>
    public static string WriteReason(string path, Exception? e)
    {
        if (path.Length == 0)
            return "the path is empty: give a file name";
        if (Directory.Exists(path))
            return "it is a directory: give a file name (for example " + Path.Combine(path, "out.livepatch") + ")";
        string? folder = Folder(path);
        if (folder != null && !Directory.Exists(folder))
            return File.Exists(folder)
                ? $"{folder} is a file, not a directory: check the path"
                : $"the directory {folder} does not exist: create it or write elsewhere";
        return Common(e) ?? "it cannot be written: check that its directory is writable";
    }

    // The folder a path names its file in (null for a bare file name: the working directory, which exists).
    private static string? Folder(string path)
    {
        string? d = Path.GetDirectoryName(path);
        return string.IsNullOrEmpty(d) ? null : d;
    }

    private static string? Common(Exception? e) => e switch
    {
        UnauthorizedAccessException => Environment.UserName == "root"
            ? "permission denied (even to root: a read-only file system or an immutable file)"
            : $"permission denied for user {Environment.UserName}: run as root or change its permissions",
        PathTooLongException => "the path is too long",
        // On Linux the runtime's IOException carries the errno as its HResult when it has no better type.
        IOException io when io.HResult is > 0 and < 4096 => LibC.StrError(io.HResult),
        null => null,
        _ => null,
    };
}
