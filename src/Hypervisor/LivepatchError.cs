using System.Globalization;
using XenLivepatch.Abi;

namespace XenLivepatch.Hypervisor;

/// <summary>
/// A refusal, as Xen gives it: the errno the hypercall returns (negated) and a message that names the
/// payload and the check, like Xen's log line ("xen_hello_world: .livepatch.xen_depends is missing").
/// Errors are values on the hypervisor side; exceptions mean a bug in our own code.
/// </summary>
public sealed record LivepatchError(XenErrno Errno, string Message)
{
    /// <summary>The value Xen stores in <c>rc</c> and returns from the hypercall: <c>-errno</c>.</summary>
    public int Rc => -(int)Errno;

    /// <summary>The errno's name (EINVAL).</summary>
    public string Name => Errno.ToString();

    /// <summary>Creates an error whose message starts with the payload's name.</summary>
    public static LivepatchError For(string payload, XenErrno errno, string message) => new(errno, $"{payload}: {message}");

    /// <inheritdoc/>
    public override string ToString() => string.Create(CultureInfo.InvariantCulture, $"error {(int)Errno} ({Name}): {Message}");
}
