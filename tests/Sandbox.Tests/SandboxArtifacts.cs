using XenLivepatch.TestKit;

namespace XenLivepatch.Sandbox.Tests;

/// <summary>
/// The sandbox image and sample payloads, built once per test process by src/Sandbox/build-artifacts.sh, which
/// makes the payloads with our CLI's <c>build</c> (the copy beside this assembly).
/// </summary>
internal static class SandboxArtifacts
{
    private static readonly Lazy<string> s_dir = new(() =>
    {
        string dir = Repo.TempDirectory("sandbox-artifacts");
        LivepatchCli.RunScript(Repo.Path("src", "Sandbox", "build-artifacts.sh"), dir).EnsureSuccess();
        return dir;
    });

    public static string Image => Path.Combine(s_dir.Value, "xen-syms");

    public static string Folder => s_dir.Value;

    public static byte[] Payload(string name) => File.ReadAllBytes(Path.Combine(s_dir.Value, "payloads", name + ".livepatch"));

    public static string PayloadPath(string name) => Path.Combine(s_dir.Value, "payloads", name + ".livepatch");

    // The vCPUs run in every test; tests that boot a sandbox do not run in parallel (collection below).
    public static SandboxHost Boot(int vcpus = 2, TextWriter? log = null) =>
        SandboxHost.Start(new SandboxOptions { ImagePath = Image, Vcpus = vcpus, Log = log });
}

[CollectionDefinition("sandbox", DisableParallelization = true)]
public sealed class SandboxCollection;
