using XenLivepatch.Abi;

namespace XenLivepatch.Cli;

/// <summary>
/// Exit codes of Xen's commands, as Xen's tool has them: 0 for success, 2 when the operation should be retried
/// (EAGAIN, EBUSY: a timeout or another operation in progress), 1 for every other failure. Every exit code of
/// the tool is in this file and OwnExitCodes.cs: Xen's here, our own commands' in <c>OwnExitCodes</c>.
/// </summary>
internal static class ExitCodes
{
    public const int Success = 0;
    public const int Failure = 1;
    public const int Retry = 2;

    /// <summary>Maps a command's result (0, an errno, or -1) as Xen's <c>main</c> does.</summary>
    public static int FromResult(int result) => result switch
    {
        0 => Success,
        (int)XenErrno.EAGAIN or (int)XenErrno.EBUSY => Retry,
        _ => Failure,
    };
}
