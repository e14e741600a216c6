namespace XenLivepatch.TestKit;

/// <summary>Waiting for something another thread or process does, without spinning a core.</summary>
public static class Poll
{
    /// <summary>Checks <paramref name="condition"/> every <paramref name="intervalMs"/> ms until it holds (true) or the time is up (false).</summary>
    public static bool Until(Func<bool> condition, int milliseconds = 5000, int intervalMs = 1)
    {
        ArgumentNullException.ThrowIfNull(condition);
        var until = DateTime.UtcNow.AddMilliseconds(milliseconds);
        while (DateTime.UtcNow < until)
        {
            if (condition())
                return true;
            Thread.Sleep(intervalMs);
        }
        return condition();
    }
}
