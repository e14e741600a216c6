using System.Buffers.Binary;
using System.Diagnostics;
using System.Net.Sockets;
using System.Text;
using XenLivepatch.Abi;
using XenLivepatch.TestKit;

namespace XenLivepatch.Cli.Tests;

/// <summary>Tests that boot the sandbox (one at a time: it maps its image at a fixed address).</summary>
[CollectionDefinition("sandbox", DisableParallelization = true)]
public sealed class SandboxCollection;

/// <summary><c>xen-livepatch demo</c> and <c>xen-livepatch sandbox</c>.</summary>
[Collection("sandbox")]
public sealed class SandboxCommandTests
{
    [Fact]
    public void The_demo_shows_the_running_vcpus_read_the_new_value_then_the_old_one()
    {
        var r = CliRun.Ours("demo", "--image", SandboxBuild.Image);
        Assert.True(r.ExitCode == 0, r.Stdout + r.Stderr);
        Assert.Contains("the vCPUs read \"-sandbox\"", r.Stdout, StringComparison.Ordinal);
        Assert.Contains("Applying xen_hello_world while the vCPUs run ... completed (APPLIED)", r.Stdout, StringComparison.Ordinal);
        Assert.Contains("the vCPUs now read \"Hello World\"", r.Stdout, StringComparison.Ordinal);
        Assert.Contains("the vCPUs read \"-sandbox\" again", r.Stdout, StringComparison.Ordinal);
        Assert.Contains("Unloading xen_hello_world ... completed", r.Stdout, StringComparison.Ordinal);
        Assert.Contains("nothing but the old and the new value", r.Stdout, StringComparison.Ordinal);
        Assert.Matches(@"APPLY +[0-9.]+ µs", r.Stdout);
        Assert.Matches(@"REVERT +[0-9.]+ µs", r.Stdout);
    }

    [Fact]
    public void The_demo_from_source_builds_the_payload_from_a_source_patch_then_applies_it()
    {
        // The image's own build (beside it) is the base: the payload depends on the running image's build-id.
        var r = CliRun.Ours("demo", "--image", SandboxBuild.Image, "--from-source");
        Assert.True(r.ExitCode == 0, r.Stdout + r.Stderr);
        Assert.Contains("[1/7] Building a live patch from extra-version.patch", r.Stdout, StringComparison.Ordinal);
        Assert.Contains("version.o: 1 changed function (xen_extra_version)", r.Stdout, StringComparison.Ordinal);
        Assert.Contains("the vCPUs read \"-sandbox\"", r.Stdout, StringComparison.Ordinal);
        Assert.Contains("[4/7] Applying extra-version while the vCPUs run ... completed (APPLIED)", r.Stdout, StringComparison.Ordinal);
        Assert.Contains("the vCPUs now read \"-patched\"", r.Stdout, StringComparison.Ordinal);
        Assert.Contains("the vCPUs read \"-sandbox\" again", r.Stdout, StringComparison.Ordinal);
        Assert.Contains("nothing but the old and the new value", r.Stdout, StringComparison.Ordinal);

        var refused = CliRun.Ours("demo", "--image", SandboxBuild.Image, "--from-source", "--patch", Repo.Path("src", "Sandbox", "patches", "init-code.patch"));
        Assert.Equal(1, refused.ExitCode);
        Assert.Contains("changed __init code", refused.Stderr, StringComparison.Ordinal);
    }

    [Fact]
    public void The_demo_with_a_payload_that_cannot_apply_fails_and_says_why()
    {
        // xen_bye_world depends on xen_hello_world's build-id: alone, its APPLY fails with EINVAL.
        var r = CliRun.Ours("demo", "--image", SandboxBuild.Image, "--payload", SandboxBuild.PayloadPath("xen_bye_world"));
        Assert.Equal(1, r.ExitCode);
        Assert.Contains("xen-livepatch demo: failed: -22 (EINVAL)", r.Stderr, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("demo", "--vcpus", "0")]
    [InlineData("demo", "stray")]
    [InlineData("sandbox", "--vcpus", "many")]
    [InlineData("sandbox", "--group", "no-such-group-here")]
    [InlineData("sandbox", "--profile", "xen-9")]
    [InlineData("sandbox", "--action-timeout", "0")]
    [InlineData("sandbox", "--action-timeout", "30ms")]
    [InlineData("sandbox", "--socket", "/tmp/a-socket-path-that-is-far-too-long-for-a-unix-socket-address-to-hold-it-all-and-then-some-more-and-more-and-more.sock")]
    public void Bad_options_are_usage_errors(params string[] args)
    {
        var r = CliRun.Ours(args);
        Assert.Equal(64, r.ExitCode);
        Assert.Contains($"see 'xen-livepatch {args[0]} --help'", r.Stderr, StringComparison.Ordinal);
    }

    [Fact]
    public void A_missing_image_is_an_input_error_that_says_to_build()
    {
        var r = CliRun.Ours("demo", "--image", "/nonexistent/xen-syms");
        Assert.Equal(66, r.ExitCode);
        Assert.Contains("run ./build.sh", r.Stderr, StringComparison.Ordinal);
        r = CliRun.Ours("sandbox", "--image", "/nonexistent/xen-syms", "--socket", "/tmp/never.sock");
        Assert.Equal(66, r.ExitCode);
    }

    [Fact]
    public void Every_command_has_help()
    {
        foreach (string command in new[] { "demo", "sandbox" })
        {
            var r = CliRun.Ours(command, "--help");
            Assert.Equal(0, r.ExitCode);
            Assert.StartsWith($"Usage: xen-livepatch {command}", r.Stdout, StringComparison.Ordinal);
        }
    }

    [Fact]
    public void The_sandbox_serves_its_socket_until_interrupted_and_refuses_a_second_server()
    {
        string dir = SandboxProcess.ShortDirectory();
        string socket = Path.Combine(dir, "run", "sandbox.sock");
        try
        {
            Serve(socket);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public void Another_process_of_the_tool_finds_the_sandbox_by_its_variable_and_patches_the_running_vcpus()
    {
        string dir = SandboxProcess.ShortDirectory();
        string socket = Path.Combine(dir, "sandbox.sock");
        Directory.CreateDirectory(dir);
        try
        {
            using var server = SandboxProcess.Start(socket, "--vcpus", "2",
                "--action-timeout", "1000");   // the point is finding the sandbox, not a busy host's 30 ms
            try
            {
                Assert.True(server.WaitUntilServing(), server.Output());
                Assert.Contains("xen-4.17 rules, actions given no timeout wait 1000 ms", server.Output(), StringComparison.Ordinal);
                var env = new Dictionary<string, string> { ["XEN_LIVEPATCH_SANDBOX"] = socket };
                string payload = Path.Combine(SandboxBuild.Directory, "payloads", "xen_hello_world.livepatch");

                var list = Run(env, "list");
                Assert.Equal((0, "Nothing to list\n"), (list.ExitCode, list.Stdout));

                var load = Run(env, "load", payload);
                Assert.Equal(0, load.ExitCode);
                Assert.Equal("Uploading " + payload + "... completed\nApplying xen_hello_world... completed\n", load.Stdout);
                Assert.True(server.WaitFor("reads XENVER_extraversion \"Hello World\""), server.Output());

                list = Run(env, "list");
                Assert.Contains("xen_hello_world                         | APPLIED    | LIVEPATCH_RULEZ", list.Stdout, StringComparison.Ordinal);

                var revert = Run(env, "revert", "xen_hello_world");
                Assert.Equal((0, "Reverting xen_hello_world... completed\n"), (revert.ExitCode, revert.Stdout));
                Assert.True(server.WaitUntil(log => log.LastIndexOf("reads XENVER_extraversion \"-sandbox\"", StringComparison.Ordinal) >
                                                    log.IndexOf("reads XENVER_extraversion \"Hello World\"", StringComparison.Ordinal)), server.Output());

                // Unload; a second unload finds nothing (Xen's text, exit 1).
                Assert.Equal(0, Run(env, "unload", "xen_hello_world").ExitCode);
                var again = Run(env, "unload", "xen_hello_world");
                Assert.Equal(1, again.ExitCode);
                Assert.Contains("xen_hello_world", again.Stderr, StringComparison.Ordinal);

                var json = Run(env, "--json", "list");
                Assert.Equal(0, json.ExitCode);
                Assert.Contains("\"payloads\": []", json.Stdout, StringComparison.Ordinal);
            }
            finally
            {
                Assert.True(server.Interrupt());
            }
            Assert.Equal(0, server.Process.ExitCode);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    internal static CliRun Run(Dictionary<string, string> env, params string[] args)
    {
        using var p = Start(env, args);
        string stdout = p.StandardOutput.ReadToEnd();
        string stderr = p.StandardError.ReadToEnd();
        Assert.True(p.WaitForExit(60_000));
        return new CliRun(p.ExitCode, stdout, stderr);
    }

    private static void Serve(string socket)
    {
        using var server = SandboxProcess.Start(socket, "--vcpus", "1");
        if (!server.WaitUntilServing())
        {
            server.Process.Kill();
            Assert.Fail(server.Output() + server.Process.StandardError.ReadToEnd());
        }
        Assert.Equal((UnixFileMode)0b110_110_000, File.GetUnixFileMode(socket));

        // A GET for a payload that is not there: the real sysctl bytes, answered -ENOENT.
        Assert.Equal(-(int)XenErrno.ENOENT, Get(socket, "xen_hello_world"));
        Assert.True(server.WaitFor("vcpu0 reads XENVER_extraversion \"-sandbox\""), server.Output());

        // A second sandbox on the same socket is refused; the first keeps serving.
        using (var second = Start("sandbox", "--image", SandboxBuild.Image, "--socket", socket, "--vcpus", "1"))
        {
            Assert.True(second.WaitForExit(30_000));
            Assert.Equal(1, second.ExitCode);
            Assert.Contains("another sandbox is serving", second.StandardError.ReadToEnd(), StringComparison.Ordinal);
        }
        Assert.Equal(-(int)XenErrno.ENOENT, Get(socket, "xen_hello_world"));

        Assert.True(server.Interrupt());
        Assert.Equal(0, server.Process.ExitCode);
        Assert.False(File.Exists(socket), "the socket is removed on exit");
    }

    internal static Process Start(params string[] args) => Start(null, args);

    internal static Process Start(Dictionary<string, string>? env, params string[] args)
    {
        string dll = Path.Combine(AppContext.BaseDirectory, "xen-livepatch-full.dll");
        var psi = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var (k, v) in env ?? [])
            psi.Environment[k] = v;
        psi.ArgumentList.Add(dll);
        foreach (string a in args)
            psi.ArgumentList.Add(a);
        return Process.Start(psi)!;
    }

    private static int Get(string socket, string name)
    {
        var abi = LivepatchAbi.Xen417;
        ulong nameAt = 0x10000;
        byte[] bytes = Encoding.ASCII.GetBytes(name + "\0");
        var op = new SysctlLivepatchOp { Cmd = LivepatchSubOp.Get, Get = new SysctlLivepatchGet(new XenLivepatchName(nameAt, (ushort)bytes.Length), default) };
        byte[] request = SocketWire.EncodeRequest(XenSysctl.EncodeLivepatch(abi, op), [new WireBuffer(nameAt, bytes, In: true, Out: false)]);
        using var s = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        s.Connect(new UnixDomainSocketEndPoint(socket));
        var prefix = new byte[4];
        BinaryPrimitives.WriteInt32LittleEndian(prefix, request.Length);
        s.Send(prefix);
        s.Send(request);
        using var stream = new NetworkStream(s);
        stream.ReadExactly(prefix);
        var reply = new byte[BinaryPrimitives.ReadInt32LittleEndian(prefix)];
        stream.ReadExactly(reply);
        Assert.True(SocketWire.TryDecodeReply(reply, out int rc, out _, out _, out string why), why);
        return rc;
    }
}
