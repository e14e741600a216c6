namespace XenLivepatch.TestKit;

/// <summary>
/// Our <c>xen-livepatch</c> as a program, for scripts that run it (src/Sandbox/build-artifacts.sh): the app host
/// beside the test assembly (a test project that references src/Cli gets it), else the one ./build.sh publishes.
/// </summary>
public static class LivepatchCli
{
    /// <summary>The program's path.</summary>
    public static string Path
    {
        get
        {
            string beside = System.IO.Path.Combine(AppContext.BaseDirectory, "xen-livepatch");
            return File.Exists(beside) ? beside : Repo.Path("artifacts", "publish", "xen-livepatch", "xen-livepatch");
        }
    }

    /// <summary>Runs a script with <c>XEN_LIVEPATCH</c> naming the program.</summary>
    public static ToolResult RunScript(string script, params string[] args) =>
        Tool.Run("env", ["XEN_LIVEPATCH=" + Path, "bash", script, .. args]);
}
