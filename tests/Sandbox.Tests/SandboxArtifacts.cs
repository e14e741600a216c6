using XenLivepatch.TestKit;

namespace XenLivepatch.Sandbox.Tests;

/// <summary>
/// The sandbox image and sample payloads, built once per test process by src/Sandbox/build-artifacts.sh, which
/// makes the payloads with our CLI's <c>build</c> (the copy beside this assembly).
/// </summary>
internal static class SandboxArtifacts
{
    public static string Image => SandboxBuild.Image;

    public static string Folder => SandboxBuild.Directory;

    public static byte[] Payload(string name) => File.ReadAllBytes(SandboxBuild.PayloadPath(name));

    public static string PayloadPath(string name) => SandboxBuild.PayloadPath(name);

    // The vCPUs run in every test; tests that boot a sandbox do not run in parallel (collection below).
    public static SandboxHost Boot(int vcpus = 2, TextWriter? log = null) =>
        SandboxHost.Start(new SandboxOptions { ImagePath = Image, Vcpus = vcpus, Log = log });
}

[CollectionDefinition("sandbox", DisableParallelization = true)]
public sealed class SandboxCollection;
