using System.Globalization;
using System.Runtime.InteropServices;
using System.Text;
using System.Text.Json.Nodes;
using XenLivepatch.Abi;
using XenLivepatch.Hypervisor;

namespace XenLivepatch.Cli;

/// <summary>
/// <c>xen-livepatch --version</c>: our version and the commit it was built from (stamped at build time, see
/// XenLivepatch.Cli.csproj), the sysctl interface versions the control library speaks, and the hypervisor
/// profiles the offline tools (check, build, info, the sandbox) follow.
/// </summary>
internal static class VersionInfo
{
    /// <summary>The tool's version.</summary>
    public static string Version => ThisBuild.Version;

    /// <summary>The commit it was built from ("unknown" outside a git checkout; "-dirty" with uncommitted changes).</summary>
    public static string Commit => ThisBuild.Commit.Length == 0 ? "unknown" : ThisBuild.Commit;

    public static string Text()
    {
        var c = CultureInfo.InvariantCulture;
        var sb = new StringBuilder();
        sb.Append(c, $"xen-livepatch {Version} (commit {Commit})\n");
        sb.Append("sysctl interfaces: ");
        sb.Append(string.Join(", ", LivepatchAbi.All.Select(a => string.Create(c, $"0x{a.InterfaceVersion:x8} ({a.Name})"))));
        sb.Append("; the interface is chosen by asking the hypervisor\n");
        sb.Append(c, $"profiles: {string.Join(", ", LivepatchProfile.All.Select(p => p.Name))} (default {LivepatchProfile.Xen417.Name})\n");
        sb.Append("architectures: x86-64, arm64\n");
        sb.Append(c, $"runtime: {RuntimeInformation.FrameworkDescription}, {RuntimeInformation.RuntimeIdentifier}\n");
        return sb.ToString();
    }

    public static string Json()
    {
        var interfaces = new JsonArray();
        foreach (var a in LivepatchAbi.All)
            interfaces.Add((JsonNode)new JsonObject { ["name"] = a.Name, ["interface_version"] = a.InterfaceVersion, ["payload_version"] = a.PayloadVersion });
        var profiles = new JsonArray();
        foreach (var p in LivepatchProfile.All)
            profiles.Add((JsonNode)p.Name);
        var o = new JsonObject
        {
            ["version"] = Version,
            ["commit"] = Commit,
            ["sysctl_interfaces"] = interfaces,
            ["profiles"] = profiles,
            ["default_profile"] = LivepatchProfile.Xen417.Name,
            ["architectures"] = new JsonArray("x86-64", "arm64"),
            ["runtime"] = RuntimeInformation.FrameworkDescription,
        };
        return JsonEnvelope.Write(o);
    }
}
