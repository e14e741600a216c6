using System.Diagnostics;
using System.Text;
using XenLivepatch.Control;
using XenLivepatch.TestKit;

namespace XenLivepatch.Cli.Tests;

/// <summary>
/// A payload's name is any bytes but NUL (Xen takes them from a raw upload) and Xen's tool passes the command
/// line's bytes as they are: ours manages a name that is not UTF-8 too, and prints it as its bytes. A name with a
/// newline does not forge a hypervisor line in the sandbox's log.
/// </summary>
[Collection("sandbox")]
public class RawNameTests
{
    [Fact]
    public void Bytes_that_are_not_UTF8_survive_the_round_trip()
    {
        byte[] raw = [(byte)'a', 0xff, (byte)'b', 0xc3, (byte)'(', 0xe2, 0x82, 0xac, 0xed, 0xa0, 0x80, 0xf0, 0x9f, 0x98, 0x80];
        string text = RawText.Decode(raw);
        Assert.Equal(raw, RawText.Encode(text));
        Assert.True(RawText.HasRawBytes(text));
        Assert.Equal("a\\xffb\\xc3(€\\xed\\xa0\\x80😀", RawText.Printable(text));
        Assert.False(RawText.HasRawBytes("plain ascii and €"));
        Assert.Equal(Encoding.UTF8.GetBytes("€😀"), RawText.Encode("€😀"));
    }

    [Fact]
    public void The_tool_manages_a_payload_whose_name_is_not_UTF8_and_a_newline_forges_no_log_line()
    {
        string dir = SandboxProcess.ShortDirectory();
        Directory.CreateDirectory(dir);
        string socket = Path.Combine(dir, "s.sock");
        string dll = Path.Combine(AppContext.BaseDirectory, "xen-livepatch-full.dll");
        using var server = SandboxProcess.Start(socket, "--vcpus", "1");
        try
        {
            Assert.True(server.WaitUntilServing(), server.Output());
            // The names reach the tool as bytes through the shell, as an operator's would.
            const string Script = """
                set -u
                raw=$(printf 'ab\377cd')
                forged=$(printf 'x\n(XEN) livepatch: forged')
                run() { dotnet "$DLL" "$@"; echo "exit $?"; }
                run upload "$raw" "$PAYLOAD"
                run apply "$raw"
                run list > "$DIR/list"
                run revert "$raw"
                run unload "$raw"
                run upload "$forged" "$PAYLOAD"
                run apply "$forged"
                run revert "$forged"
                run unload "$forged"
                """;
            var env = new Dictionary<string, string>
            {
                ["DLL"] = dll, ["DIR"] = dir, ["XEN_LIVEPATCH_SANDBOX"] = socket,
                ["PAYLOAD"] = Path.Combine(SandboxBuild.Directory, "payloads", "xen_hello_world.livepatch"),
            };
            var bash = new ProcessStartInfo("bash") { RedirectStandardOutput = true, RedirectStandardError = true };
            bash.ArgumentList.Add("-c");
            bash.ArgumentList.Add(Script);
            foreach (var (k, v) in env)
                bash.Environment[k] = v;
            using var p = Process.Start(bash)!;
            string stdout = p.StandardOutput.ReadToEnd();
            string stderr = p.StandardError.ReadToEnd();
            p.WaitForExit();
            Assert.True(stdout.Split('\n').Count(l => l == "exit 0") == 8, stdout + stderr);
            // list prints the name's bytes, as the C tool's printf does.
            byte[] list = File.ReadAllBytes(Path.Combine(dir, "list"));
            byte[] name = [(byte)'a', (byte)'b', 0xff, (byte)'c', (byte)'d', (byte)' '];
            Assert.True(list.AsSpan().IndexOf(name) >= 0, Encoding.Latin1.GetString(list));
            Assert.Contains("APPLIED", Encoding.Latin1.GetString(list), StringComparison.Ordinal);
        }
        finally
        {
            server.Interrupt();
            Directory.Delete(dir, recursive: true);
        }
        string log = server.Output();
        Assert.DoesNotContain(log.Split('\n'), l => l.StartsWith("(XEN) livepatch: forged", StringComparison.Ordinal));
        Assert.Contains("x\\x0a(XEN) livepatch: forged", log, StringComparison.Ordinal);
    }
}
