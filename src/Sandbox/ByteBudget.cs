namespace XenLivepatch.Sandbox;

/// <summary>
/// Bytes the socket server may hold for its peers at once. A request that would take it over waits for others to
/// give theirs back (backpressure), and gives up after a while: no number of peers makes the server hold more.
/// </summary>
internal sealed class ByteBudget(long capacity)
{
    private static readonly TimeSpan s_poll = TimeSpan.FromMilliseconds(20);
    private readonly Lock _lock = new();
    private long _held;

    /// <summary>What is held now.</summary>
    public long Held
    {
        get
        {
            lock (_lock)
                return _held;
        }
    }

    /// <summary>Takes <paramref name="bytes"/>, waiting up to <paramref name="wait"/>; false when it could not.</summary>
    public async ValueTask<bool> TakeAsync(long bytes, TimeSpan wait, CancellationToken cancellationToken)
    {
        if (bytes > capacity)
            return false;
        long giveUp = Environment.TickCount64 + (long)wait.TotalMilliseconds;
        while (true)
        {
            lock (_lock)
            {
                if (_held + bytes <= capacity)
                {
                    _held += bytes;
                    return true;
                }
            }
            if (Environment.TickCount64 >= giveUp)
                return false;
            await Task.Delay(s_poll, cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>Gives back what <see cref="TakeAsync"/> took.</summary>
    public void Give(long bytes)
    {
        lock (_lock)
            _held -= bytes;
    }
}
