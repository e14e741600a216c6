namespace XenLivepatch.Cli;

/// <summary>
/// Exit codes of Xen's tool: 0 for success, 2 when the operation should be retried (EAGAIN, EBUSY: a
/// timeout or another operation in progress), 1 for every other failure.
/// </summary>
internal static class ExitCodes
{
    public const int Success = 0;
    public const int Failure = 1;
    public const int Retry = 2;

    private const int EAGAIN = 11;
    private const int EBUSY = 16;

    /// <summary>Maps a command's result (0, an errno, or -1) as Xen's <c>main</c> does.</summary>
    public static int FromResult(int result) => result switch
    {
        0 => Success,
        EAGAIN or EBUSY => Retry,
        _ => Failure,
    };
}
