using XenLivepatch.Hypervisor;

namespace XenLivepatch.Cli;

/// <summary>
/// Our own commands' exit codes: 0 and 1 as Xen's (so 2 keeps meaning "retry" and no errno is mistaken for one),
/// sysexits.h's for a wrong command line and for inputs and outputs. The README's table lists them all.
/// </summary>
internal static class OwnExitCodes
{
    /// <summary>Done (and for <c>check</c>: accepted).</summary>
    public const int Success = 0;
    /// <summary><c>check</c>: the payload would be refused (the errno Xen would return is in the message and the JSON).</summary>
    public const int Refused = 1;
    /// <summary>EX_USAGE: the command line is wrong.</summary>
    public const int Usage = 64;
    /// <summary>EX_DATAERR: the inputs were read, but what they ask for cannot be made (a payload Xen would refuse).</summary>
    public const int DataError = 65;
    /// <summary>EX_NOINPUT: an input file cannot be read.</summary>
    public const int NoInput = 66;
    /// <summary>EX_CANTCREAT: the output file cannot be written.</summary>
    public const int CantCreate = 73;
    /// <summary>build-source: a patch does not apply to the tree (the tree is left as it was).</summary>
    public const int PatchDoesNotApply = 80;
    /// <summary>build-source: the tree (original or patched) does not build.</summary>
    public const int TreeDoesNotBuild = 81;
    /// <summary>diff, build-source: the objects were built by different compilers or flags, or cannot be compared.</summary>
    public const int Mismatched = 82;
    /// <summary>diff, build-source: the patch changes no function (an empty patch, comments, line numbers only).</summary>
    public const int NothingToPatch = 83;

    /// <summary><c>check</c>'s exit code: 0 when accepted, 1 when refused.</summary>
    public static int FromCheck(LivepatchError? refusal) => refusal == null ? Success : Refused;
}
