using System.Text.Json;
using XenLivepatch.Abi;
using XenLivepatch.Control;
using XenLivepatch.TestKit;

namespace XenLivepatch.Cli.Tests;

/// <summary>
/// <c>list</c> while other tools upload and unload: a list that changed between the size probe and the read is
/// read again; one that keeps changing fails with EBUSY and exit 2 ("retry"), in text and in JSON alike. Xen's
/// tool printed "Failed to list N/M. Error 0: Success" and exited 0.
/// </summary>
public class ListChurnTests
{
    /// <summary>Before each of the first <paramref name="changes"/> LIST reads (not the probes), uploads "churn", or unloads it when it is there.</summary>
    private static ToolHost Churning(OfflineXen xen, int changes)
    {
        byte[] payload = File.ReadAllBytes(Payloads.Nop);
        int changed = 0;
        int Entry(Span<byte> sysctl, IReadOnlyList<WireBuffer> buffers)
        {
            var op = XenSysctl.ReadLivepatch(sysctl, xen.Core.Profile.Abi.Layout);
            if (op.Cmd == LivepatchSubOp.List && op.List.Nr != 0 && changed++ < changes)
            {
                if (xen.Core.Find("churn") == null)
                    Assert.Null(xen.Core.Upload("churn", payload));
                else
                    Assert.Equal(0, xen.Core.Action("churn", LivepatchAction.Unload));
            }
            return xen.Sysctl(sysctl, buffers);
        }
        return new ToolHost
        {
            OpenTransport = (_, _, _) => Task.FromResult(TransportOpenResult.Opened(InProcessTransport.Create(Entry, xen.Core.Profile.Abi))),
            Delay = (_, _) => Task.CompletedTask,
        };
    }

    [Fact]
    public void A_list_that_changed_once_is_read_again_and_printed_whole()
    {
        var xen = OfflineXen.Create();
        CliRun.With(xen, "upload", "xen_hello_world", Payloads.Hello);
        var r = CliRun.With(Churning(xen, 1), "list");
        Assert.Equal((0, ""), (r.ExitCode, r.Stderr));
        Assert.Contains("xen_hello_world ", r.Stdout, StringComparison.Ordinal);
        Assert.Contains("churn ", r.Stdout, StringComparison.Ordinal);
    }

    [Fact]
    public void A_list_that_keeps_changing_fails_with_EBUSY_and_exit_2()
    {
        var xen = OfflineXen.Create();
        CliRun.With(xen, "upload", "xen_hello_world", Payloads.Hello);
        var r = CliRun.With(Churning(xen, int.MaxValue), "list");
        Assert.Equal(2, r.ExitCode);
        Assert.Matches(@"^Failed to list \d+/\d+\.\nError 16: Device or resource busy\n$", r.Stderr);

        var json = CliRun.With(Churning(xen, int.MaxValue), "--json", "list");
        Assert.Equal(2, json.ExitCode);
        using var doc = JsonDocument.Parse(json.Stdout);
        var root = doc.RootElement;
        Assert.Equal(2, root.GetProperty("exit_code").GetInt32());
        var step = root.GetProperty("steps")[0];
        Assert.Equal(("failed", 16), (step.GetProperty("outcome").GetString(), step.GetProperty("errno").GetInt32()));
    }
}
