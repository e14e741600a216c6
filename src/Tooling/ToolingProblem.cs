namespace XenLivepatch.Tooling;

/// <summary>
/// Why a payload cannot be built: what is wrong (naming the payload, object, section or function) and what
/// to do next. The tooling's failures are values; exceptions mean a bug.
/// </summary>
/// <param name="Message">What is wrong: "xen_hello: xen_tiny is 1 byte in the hypervisor, too small to patch".</param>
/// <param name="Advice">What to do next: "patch its callers instead".</param>
public sealed record ToolingProblem(string Message, string Advice)
{
    /// <summary>The message, then the advice on its own line.</summary>
    public override string ToString() => Advice.Length == 0 ? Message : $"{Message}\n  {Advice}";
}
