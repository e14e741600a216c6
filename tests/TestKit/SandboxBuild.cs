namespace XenLivepatch.TestKit;

/// <summary>
/// The sandbox image and its sample payloads, built once per test process by src/Sandbox/build-artifacts.sh, which
/// makes the payloads with our CLI's <c>build</c> (<see cref="LivepatchCli"/>).
/// </summary>
public static class SandboxBuild
{
    private static readonly Lazy<string> s_dir = new(() =>
    {
        string dir = Repo.TempDirectory("sandbox-artifacts");
        LivepatchCli.RunScript(Repo.Path("src", "Sandbox", "build-artifacts.sh"), dir).EnsureSuccess();
        return dir;
    });

    /// <summary>The folder: xen-syms and payloads/.</summary>
    public static string Directory => s_dir.Value;

    /// <summary>The image.</summary>
    public static string Image => Path.Combine(s_dir.Value, "xen-syms");

    /// <summary>A sample payload's file (name without .livepatch).</summary>
    public static string PayloadPath(string name) => Path.Combine(s_dir.Value, "payloads", name + ".livepatch");
}
