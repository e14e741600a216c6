namespace XenLivepatch.Sandbox;

/// <summary>What one vCPU has done and seen.</summary>
public sealed class VcpuStats
{
    internal long IterationCount;
    internal readonly Dictionary<string, long> Extra = new(StringComparer.Ordinal);
    internal readonly Dictionary<int, long> Minor = [];
    internal volatile string LastValue = "";
    internal volatile int LastMinorValue;

    /// <summary>The vCPU's number.</summary>
    public int Index { get; init; }

    /// <summary>The XENVER_extraversion value it read last.</summary>
    public string Last => LastValue;

    /// <summary>The minor version it read last.</summary>
    public int LastMinor => LastMinorValue;

    /// <summary>Guest entries (loop iterations) so far.</summary>
    public long Iterations => Interlocked.Read(ref IterationCount);

    /// <summary>How often each XENVER_extraversion value was read (a snapshot).</summary>
    public IReadOnlyDictionary<string, long> ExtraVersions
    {
        get { lock (Extra) return new Dictionary<string, long>(Extra); }
    }

    /// <summary>How often each minor version was read (a snapshot).</summary>
    public IReadOnlyDictionary<int, long> MinorVersions
    {
        get { lock (Extra) return new Dictionary<int, long>(Minor); }
    }
}
