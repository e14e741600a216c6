namespace XenLivepatch.Sandbox;

/// <summary>
/// Where the program the user ran lives, to find what is installed beside it (the sandbox image). That is this
/// process's own folder, unless the front (xen-livepatch) started it: the front names itself in
/// <c>XEN_LIVEPATCH_PROGRAM</c>, because the whole tool it runs may be a copy it carries inside itself, run from
/// memory, whose own path says nothing of where the tool is installed.
/// </summary>
public static class ProgramLocation
{
    /// <summary>The variable the front sets to its own path before it runs the whole tool.</summary>
    public const string Variable = "XEN_LIVEPATCH_PROGRAM";

    /// <summary>The folder of the program the user ran, with a trailing separator as <see cref="AppContext.BaseDirectory"/> has it.</summary>
    public static string Directory
    {
        get
        {
            string? program = Environment.GetEnvironmentVariable(Variable);
            string? dir = string.IsNullOrEmpty(program) ? null : Path.GetDirectoryName(Path.GetFullPath(program));
            return dir == null ? AppContext.BaseDirectory : dir.TrimEnd('/') + "/";
        }
    }
}
