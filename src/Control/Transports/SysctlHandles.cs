using XenLivepatch.Abi;

namespace XenLivepatch.Control;

/// <summary>
/// The guest handles of a sysctl (a livepatch op's name, payload and LIST arrays; readconsole's buffer;
/// debug_keys' keys), rewritten through a mapping: a transport that must place the caller buffers elsewhere
/// (privcmd: in hypercall-safe memory) moves the handles there before the call and back after it, so the caller
/// sees its own addresses.
/// </summary>
internal static class SysctlHandles
{
    /// <summary>A copy of <paramref name="sysctl"/> with every guest handle passed through <paramref name="map"/>.</summary>
    public static byte[] MapSysctl(ReadOnlySpan<byte> sysctl, SysctlLayout layout, Func<ulong, ulong> map)
    {
        var moved = sysctl.ToArray();
        var union = moved.AsSpan(XenSysctl.UnionOffset, XenSysctl.UnionSize);
        switch (XenSysctl.ReadHeader(sysctl).Cmd)
        {
            case SysctlCommands.LivepatchOp:
                Map(XenSysctl.ReadLivepatch(sysctl, layout), map).Write(union, layout);
                break;
            case SysctlCommands.ReadConsole:
            {
                var op = SysctlReadConsole.Read(union);
                (op with { Buffer = map(op.Buffer) }).Write(union);
                break;
            }
            case SysctlCommands.DebugKeys:
            {
                var op = SysctlDebugKeys.Read(union);
                (op with { Keys = map(op.Keys) }).Write(union);
                break;
            }
        }
        return moved;
    }

    /// <summary>
    /// <paramref name="returned"/> (what the hypervisor left) with the handles of <paramref name="original"/> (the
    /// caller's) put back: the hypervisor never changes a handle, and the OUT fields keep its values.
    /// </summary>
    public static byte[] RestoreSysctl(ReadOnlySpan<byte> returned, ReadOnlySpan<byte> original, SysctlLayout layout)
    {
        var handles = new Queue<ulong>();
        MapSysctl(original, layout, h =>
        {
            handles.Enqueue(h);
            return h;
        });
        return MapSysctl(returned, layout, _ => handles.Count > 0 ? handles.Dequeue() : 0);
    }

    public static SysctlLivepatchOp Map(in SysctlLivepatchOp op, Func<ulong, ulong> map) => op.Cmd switch
    {
        LivepatchSubOp.Upload => op with { Upload = op.Upload with { Name = MapName(op.Upload.Name, map), Payload = map(op.Upload.Payload) } },
        LivepatchSubOp.Get => op with { Get = op.Get with { Name = MapName(op.Get.Name, map) } },
        LivepatchSubOp.Action => op with { Action = op.Action with { Name = MapName(op.Action.Name, map) } },
        LivepatchSubOp.List => op with
        {
            List = op.List with
            {
                Status = map(op.List.Status),
                Name = map(op.List.Name),
                Len = map(op.List.Len),
                Metadata = map(op.List.Metadata),
                MetadataLen = map(op.List.MetadataLen),
            },
        },
        _ => op,
    };

    private static XenLivepatchName MapName(in XenLivepatchName name, Func<ulong, ulong> map) => name with { Name = map(name.Name) };

    /// <summary>
    /// A mapping from the caller's buffer addresses to <paramref name="placed"/> ones: an address inside (or just
    /// past) buffer i moves with it; 0 stays 0; any other address becomes 0, which the hypervisor cannot access.
    /// </summary>
    public static Func<ulong, ulong> Forward(IReadOnlyList<WireBuffer> buffers, IReadOnlyList<ulong> placed) => address =>
    {
        if (address == 0)
            return 0;
        for (int i = 0; i < buffers.Count; i++)
        {
            var b = buffers[i];
            if (address >= b.Address && address - b.Address <= (ulong)b.Data.Length)
                return placed[i] + (address - b.Address);
        }
        return 0;
    };
}
