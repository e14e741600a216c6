using XenLivepatch.Abi;
using XenLivepatch.Sandbox;
using XenLivepatch.TestKit;

namespace XenLivepatch.Cli.Tests;

/// <summary>
/// The sandbox hypervisor booted in the test process (two vCPUs running) and served on a Unix socket, as
/// <c>xen-livepatch sandbox</c> serves it: the tool under test reaches it with <c>--sandbox PATH</c>, over the
/// socket's real bytes.
/// </summary>
public sealed class SocketSandbox : IAsyncDisposable, IDisposable
{
    /// <summary>Each action's deadline the tests pass (ms): test processes share two cores.</summary>
    public const string TimeoutMs = "1000";

    private readonly SysctlSocketServer _server;
    private readonly string _dir;

    public SocketSandbox()
    {
        Host = SandboxHost.Start(new SandboxOptions { ImagePath = SandboxBuild.Image, Vcpus = 2 });
        // Unix socket paths are short (107 bytes): not under the test's deep temporary folder.
        _dir = Path.Combine("/tmp", "xlp-" + Guid.NewGuid().ToString("N")[..12]);
        Directory.CreateDirectory(_dir);
        Socket = Path.Combine(_dir, "sandbox.sock");
        _server = SysctlSocketServer.Start(Host.Handler, Socket);
    }

    public SandboxHost Host { get; }

    public string Socket { get; }

    /// <summary>The image's build-id, hex.</summary>
    public string BuildId => Convert.ToHexStringLower(Host.Image.BuildId);

    /// <summary>Runs our tool in-process against this sandbox (options before the command: --sandbox PATH).</summary>
    public CliRun Run(params string[] args)
    {
        var stdout = new StringWriter();
        var stderr = new StringWriter();
        int code = XenLivepatchTool.RunAsync(["--sandbox", Socket, .. args], stdout, stderr, ToolHost.Default).GetAwaiter().GetResult();
        return new CliRun(code, stdout.ToString(), stderr.ToString());
    }

    /// <summary>What the hypervisor has: "name:State" in upload order.</summary>
    public string Loaded => string.Join(",", Host.Core.Payloads.Select(p => $"{p.Name}:{p.State}"));

    /// <summary>The applied stack, bottom first.</summary>
    public string Applied => string.Join(",", Host.Core.Applied.Select(p => p.Name));

    /// <summary>A reboot, as far as the hypervisor's payloads go: every one reverted (top first) and unloaded.</summary>
    public void Reset()
    {
        var core = Host.Core;
        for (int guard = 0; core.Applied.Count > 0 && guard < 50; guard++)
        {
            core.Action(core.Applied[^1].Name, LivepatchAction.Revert, 1_000_000_000);
            Assert.True(core.WaitIdle(TimeSpan.FromSeconds(30)));
        }
        foreach (var p in core.Payloads)
            Assert.Equal(0, core.Action(p.Name, LivepatchAction.Unload));
    }

    public void Dispose() => DisposeAsync().AsTask().GetAwaiter().GetResult();

    public async ValueTask DisposeAsync()
    {
        await _server.DisposeAsync();
        Host.Dispose();
        Directory.Delete(_dir, recursive: true);
    }
}
