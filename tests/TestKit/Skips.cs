using Xunit;

namespace XenLivepatch.TestKit;

/// <summary>Debian's C <c>xen-livepatch</c> 4.17, the tests' oracle, as ./build.sh fetches it (tools/oracle/fetch-xen-tools.sh).</summary>
public static class XenOracle
{
    /// <summary>Where it is.</summary>
    public static string Path => Repo.Path("artifacts", "oracle", "xen-4.17", "xen-livepatch");

    /// <summary>Why a test that runs it is skipped: null when it is there.</summary>
    public static string? Missing =>
        File.Exists(Path) ? null : $"Debian's xen-livepatch is missing at {Path}: run ./build.sh, or tools/oracle/fetch-xen-tools.sh";
}

/// <summary>A fact that runs Debian's C tool (<see cref="XenOracle"/>): skipped, saying how to get it, where it is missing.</summary>
public sealed class XenOracleFactAttribute : FactAttribute
{
    /// <summary>Skips when the oracle is missing.</summary>
    public XenOracleFactAttribute() => Skip = XenOracle.Missing;
}

/// <summary>A theory that runs Debian's C tool (<see cref="XenOracle"/>): skipped, saying how to get it, where it is missing.</summary>
public sealed class XenOracleTheoryAttribute : TheoryAttribute
{
    /// <summary>Skips when the oracle is missing.</summary>
    public XenOracleTheoryAttribute() => Skip = XenOracle.Missing;
}

/// <summary>A fact about a machine that is not a Xen domain: skipped where <c>/dev/xen/privcmd</c> exists.</summary>
public sealed class OutsideXenFactAttribute : FactAttribute
{
    /// <summary>The privcmd device whose absence the test needs.</summary>
    public const string PrivcmdPath = "/dev/xen/privcmd";

    /// <summary>Skips in a Xen domain.</summary>
    public OutsideXenFactAttribute()
    {
        if (File.Exists(PrivcmdPath))
            Skip = $"this machine is a Xen domain ({PrivcmdPath} exists); the test is about one that is not";
    }
}

/// <summary>A fact that needs root (mount(2): a read-only bind mount, a tiny tmpfs): skipped, saying so, for others.</summary>
public sealed class RootFactAttribute : FactAttribute
{
    /// <summary>Skips when the tests do not run as root.</summary>
    public RootFactAttribute()
    {
        if (Environment.UserName != "root")
            Skip = "needs root: it mounts a read-only or a full file system under the store";
    }
}
