using System.Globalization;
using XenLivepatch.Abi;

namespace XenLivepatch.Hypervisor;

/// <summary>
/// A refusal, as Xen gives it: which check refused (a stable id of tools/Gen/Tables/livepatch-checks.tbl),
/// the errno the hypercall returns (negated), and a message that names the payload and says what failed,
/// like Xen's log line ("xen_hello_world: .livepatch.xen_depends is missing"). Errors are values on the
/// hypervisor side; exceptions mean a bug in our own code. Made by the generated <c>Refuse</c> factories.
/// </summary>
/// <param name="Check">The check that refused.</param>
/// <param name="Errno">The errno (the check's, or a hook's result where it varies).</param>
/// <param name="Payload">The payload refused.</param>
/// <param name="Detail">What failed, without the payload's name.</param>
public sealed record LivepatchError(LivepatchCheck Check, XenErrno Errno, string Payload, string Detail)
{
    /// <summary>"<c>payload: detail</c>": what the core logs and the tools print.</summary>
    public string Message => $"{Payload}: {Detail}";

    /// <summary>The value Xen stores in <c>rc</c> and returns from the hypercall: <c>-errno</c>.</summary>
    public int Rc => -(int)Errno;

    /// <summary>The errno's name (EINVAL).</summary>
    public string Name => Errno.ToString();

    /// <inheritdoc/>
    public override string ToString() => string.Create(CultureInfo.InvariantCulture, $"error {(int)Errno} ({Name}): {Message}");
}

/// <summary>How ACTION reports a refusal (the check table's <c>outcome</c>).</summary>
public enum CheckOutcome
{
    /// <summary>As the hypercall's result.</summary>
    Returned,
    /// <summary>Only in the payload's rc; the hypercall returns 0.</summary>
    Rc,
    /// <summary>As the hypercall's result and in the payload's rc.</summary>
    Both,
}
