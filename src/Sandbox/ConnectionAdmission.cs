namespace XenLivepatch.Sandbox;

/// <summary>
/// Who of the connected peers the socket server serves (<see cref="SocketServerLimits.ConnectionsPerUser"/>,
/// <see cref="SocketServerLimits.RootReserve"/>): no uid but root may hold more than its share of the
/// connections, and a few are kept for root, so whoever opens connections and idles on them, the operator gets in.
/// </summary>
internal sealed class ConnectionAdmission(SocketServerLimits limits, TextWriter? log)
{
    // Connections served now, per uid other than root, and all of theirs together.
    private readonly Dictionary<uint, int> _perUser = [];
    private int _notRoot;

    /// <summary>The connections of peers other than root served right now.</summary>
    public int OthersConnections
    {
        get
        {
            lock (_perUser)
                return _notRoot;
        }
    }

    /// <summary>
    /// Whether a peer may be served now (logged when not): root always (a slot is its own, RootReserve of them kept
    /// for it); any other uid while it holds fewer than ConnectionsPerUser and all but root fewer than
    /// Connections - RootReserve.
    /// </summary>
    public bool TryAdmit(in PeerCredentials peer)
    {
        if (peer.Uid == 0)
            return true;
        lock (_perUser)
        {
            int mine = _perUser.GetValueOrDefault(peer.Uid);
            if (mine < limits.ConnectionsPerUser && _notRoot < limits.Connections - limits.RootReserve)
            {
                _perUser[peer.Uid] = mine + 1;
                _notRoot++;
                return true;
            }
        }
        log?.WriteLine($"sysctl: pid {peer.Pid} uid {peer.Uid}: too many connections (uid {peer.Uid} may hold {limits.ConnectionsPerUser}, all but root {limits.Connections - limits.RootReserve}); closing");
        return false;
    }

    /// <summary>Gives back the slot <see cref="TryAdmit"/> gave <paramref name="peer"/>.</summary>
    public void Leave(in PeerCredentials peer)
    {
        if (peer.Uid == 0)
            return;
        lock (_perUser)
        {
            if (--_perUser[peer.Uid] == 0)
                _perUser.Remove(peer.Uid);
            _notRoot--;
        }
    }
}
