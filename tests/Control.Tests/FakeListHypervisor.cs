using System.Buffers.Binary;
using System.Text;
using XenLivepatch.Abi;

namespace XenLivepatch.Control.Tests;

/// <summary>One LIST request as the fake saw it.</summary>
internal sealed record ListRequest(uint Idx, uint Nr, uint NameTotalSize, uint MetadataTotalSize);

/// <summary>
/// A hypervisor that only answers LIST, with Xen's semantics (reference §1.4: upload order, names and metadata
/// packed from offset 0 of each buffer, arrays indexed by the count copied in this call, OUT totals are the bytes
/// copied, <c>nr</c> out is what remains), plus the knobs the retry rules react to: a batch limit answered with
/// -E2BIG, a preemption limit (entries per call), a hook that runs before every call (to change the list), and
/// Xen 4.21's -ENOBUFS when the sizes are inputs.
/// </summary>
internal sealed class FakeListHypervisor : ISysctlTransport
{
    public sealed record Entry(string Name, uint State, int Rc, string Metadata);

    public List<Entry> Payloads { get; } = [];
    public uint Version { get; set; } = 1;
    public uint E2bigAbove { get; set; } = Livepatch.ListMaxBatch;
    public int PerCall { get; set; } = int.MaxValue;
    public Action<int>? BeforeList { get; set; }
    public List<ListRequest> Requests { get; } = [];
    public List<int> Answers { get; } = [];
    public int? AnswerCountOverride { get; set; }

    public FakeListHypervisor(LivepatchAbi? abi = null) => Abi = abi ?? LivepatchAbi.Xen417;

    public string Description => "a fake LIST";
    public LivepatchAbi Abi { get; }

    public void Add(string name, uint state = 1, int rc = 0, string metadata = "")
    {
        Payloads.Add(new Entry(name, state, rc, metadata));
        Version++;
    }

    public ValueTask DisposeAsync() => ValueTask.CompletedTask;

    public ValueTask<int> CallAsync(byte[] sysctl, IReadOnlyList<WireBuffer> buffers, CancellationToken cancellationToken = default)
    {
        var op = XenSysctl.ReadLivepatch(sysctl, Abi.Layout);
        Assert.Equal(LivepatchSubOp.List, op.Cmd);
        var l = op.List;
        BeforeList?.Invoke(Requests.Count);
        Requests.Add(new ListRequest(l.Idx, l.Nr, l.NameTotalSize, l.MetadataTotalSize));
        if (l.Nr > E2bigAbove)
            return Answer(-(int)XenErrno.E2BIG);
        int count = Payloads.Count;
        if (l.Idx >= count && count != 0)
            return Answer(-(int)XenErrno.EINVAL);
        uint nameTotal = 0, metaTotal = 0;
        int copied = 0, visited = 0, rc = 0;
        if (l.Nr == 0)
        {
            foreach (var p in Payloads)
            {
                nameTotal += (uint)Encoding.UTF8.GetByteCount(p.Name) + 1;
                metaTotal += (uint)Encoding.UTF8.GetByteCount(p.Metadata);
            }
        }
        else
        {
            foreach (var p in Payloads)
            {
                if (l.Idx > visited++)
                    continue;
                byte[] name = Encoding.UTF8.GetBytes(p.Name + "\0");
                byte[] meta = Encoding.UTF8.GetBytes(p.Metadata);
                if (Abi.ListSizesAreInputs && (nameTotal + name.Length > l.NameTotalSize || metaTotal + meta.Length > l.MetadataTotalSize))
                {
                    rc = -(int)XenErrno.ENOBUFS;
                    break;
                }
                var word = new byte[8];
                new XenLivepatchStatus(p.State, p.Rc).Write(word);
                var len = new byte[4];
                var metaLen = new byte[4];
                BinaryPrimitives.WriteUInt32LittleEndian(len, (uint)name.Length);
                BinaryPrimitives.WriteUInt32LittleEndian(metaLen, (uint)meta.Length);
                if (!Write(buffers, l.Name + nameTotal, name) || !Write(buffers, l.Metadata + metaTotal, meta) ||
                    !Write(buffers, l.Status + (ulong)copied * 8, word) || !Write(buffers, l.Len + (ulong)copied * 4, len) ||
                    !Write(buffers, l.MetadataLen + (ulong)copied * 4, metaLen))
                {
                    rc = -(int)XenErrno.EFAULT;
                    break;
                }
                nameTotal += (uint)name.Length;
                metaTotal += (uint)meta.Length;
                copied++;
                if (copied >= l.Nr || copied >= PerCall)
                    break;
            }
        }
        var reply = l with { Nr = (uint)(count - visited), Version = Version, NameTotalSize = nameTotal, MetadataTotalSize = metaTotal };
        (op with { List = reply }).Write(sysctl.AsSpan(XenSysctl.UnionOffset), Abi.Layout);
        return Answer(rc != 0 ? rc : l.Nr != 0 && AnswerCountOverride is int forced ? forced : copied);
    }

    private ValueTask<int> Answer(int rc)
    {
        Answers.Add(rc);
        return ValueTask.FromResult(rc);
    }

    // Like copy_to_guest: the bytes must fall inside one buffer the caller marked writable, else -EFAULT.
    private static bool Write(IReadOnlyList<WireBuffer> buffers, ulong address, ReadOnlySpan<byte> data)
    {
        if (data.IsEmpty)
            return true;
        ulong length = (ulong)data.Length;
        foreach (var b in buffers)
        {
            if (b.Out && address >= b.Address && address - b.Address + length <= (ulong)b.Data.Length)
            {
                data.CopyTo(b.Data.AsSpan((int)(address - b.Address)));
                return true;
            }
        }
        return false;
    }
}
