using System.Buffers.Binary;
using System.Net.Sockets;

namespace XenLivepatch.Sandbox;

/// <summary>Who is on the other end of a connection (SO_PEERCRED, plus the peer's supplementary groups).</summary>
public readonly record struct PeerCredentials(int Pid, uint Uid, uint Gid, IReadOnlyList<uint> Groups)
{
    /// <summary>The credentials of the peer connected to <paramref name="socket"/>.</summary>
    public static PeerCredentials Of(Socket socket)
    {
        Span<byte> ucred = stackalloc byte[12];
        int n = socket.GetRawSocketOption(1 /* SOL_SOCKET */, 17 /* SO_PEERCRED */, ucred);
        if (n < 12)
            throw new IOException("SO_PEERCRED returned too little");
        int pid = BinaryPrimitives.ReadInt32LittleEndian(ucred);
        uint uid = BinaryPrimitives.ReadUInt32LittleEndian(ucred[4..]);
        uint gid = BinaryPrimitives.ReadUInt32LittleEndian(ucred[8..]);
        var groups = new List<uint>();
        try
        {
            foreach (string line in File.ReadLines($"/proc/{pid}/status"))
            {
                if (!line.StartsWith("Groups:", StringComparison.Ordinal))
                    continue;
                foreach (string g in line["Groups:".Length..].Split(' ', '\t', StringSplitOptions.RemoveEmptyEntries))
                {
                    if (uint.TryParse(g, out uint v))
                        groups.Add(v);
                }
            }
        }
        catch (IOException)
        {
            // The peer went away: its primary group is all we know.
        }
        return new PeerCredentials(pid, uid, gid, groups);
    }
}
