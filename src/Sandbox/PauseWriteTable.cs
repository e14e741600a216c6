using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using XenLivepatch.Hypervisor;

namespace XenLivepatch.Sandbox;

/// <summary>
/// One action's known writes, laid out for the pause: a table of 16-byte entries, each with its destination already
/// translated into a writable view and its bytes inline when they fit (a jump is 5), else in a blob after the
/// table. The pause then makes one pass over it, touching one cache line per 4 writes besides the lines written,
/// instead of looking each destination up among the views and copying from the core's per-function objects: on the
/// CPU that runs the pause, which has not seen that data, each of those reads is a cache miss.
/// </summary>
internal sealed unsafe class PauseWriteTable : IDisposable
{
    private readonly Entry* _table;
    private readonly int _count;
    // Every write landed in a view (WriteAll reports the others as not written).
    private readonly bool _complete = true;
    // Where Warm leaves what it read, so that the reads are made.
    private ulong _warmed;

    private struct Entry
    {
        public byte* Destination;
        // Byte 0: the length when the bytes are inline (1..7), in bytes 1..7; 0 when they are in the blob,
        // at offset (Bytes >> 8) & 0xffffffff, (Bytes >> 40) bytes long.
        public ulong Bytes;
    }

    /// <summary>Lays <paramref name="writes"/> out, each translated into <paramref name="views"/>.</summary>
    public PauseWriteTable(IReadOnlyList<TextWrite> writes, WritableViews views)
    {
        int blob = 0;
        foreach (var w in writes)
            blob += w.Bytes.Length > 7 ? w.Bytes.Length : 0;
        nuint size = (nuint)(writes.Count * sizeof(Entry) + blob);
        _table = (Entry*)NativeMemory.AlignedAlloc(size == 0 ? 64 : size, 64);
        byte* blobStart = (byte*)(_table + writes.Count);
        int used = 0;
        foreach (var w in writes)
        {
            var bytes = w.Bytes.Span;
            if (bytes.IsEmpty)
                continue;
            byte* destination = views.Translate(w.Address, bytes.Length);
            if (destination == null)
            {
                _complete = false;
                continue;
            }
            ref var e = ref _table[_count++];
            e.Destination = destination;
            if (bytes.Length <= 7)
            {
                ulong inline = (ulong)bytes.Length;
                for (int i = 0; i < bytes.Length; i++)
                    inline |= (ulong)bytes[i] << (8 * (i + 1));
                e.Bytes = inline;
            }
            else
            {
                int offset = (int)(blobStart - (byte*)_table) + used;
                bytes.CopyTo(new Span<byte>(blobStart + used, bytes.Length));
                used += bytes.Length;
                e.Bytes = ((ulong)(uint)offset << 8) | ((ulong)bytes.Length << 40);
            }
        }
    }

    /// <summary>
    /// Reads the table and every line the writes land on, through the writable views: the pause then finds them
    /// in this CPU's caches and their pages in its TLB.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public void Warm()
    {
        ulong sum = 0;
        for (Entry* e = _table, end = _table + _count; e < end; e++)
            sum += e->Bytes + Volatile.Read(ref *e->Destination);
        _warmed = sum;
    }

    /// <summary>Makes the writes, in order; false when one had no view to go through.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public bool WriteAll()
    {
        Entry* e = _table, end = _table + _count;
        for (; e < end; e++)
        {
            ulong b = e->Bytes;
            int n = (int)(b & 0xff);
            byte* d = e->Destination;
            if (n != 0)
            {
                // At most two stores (overlapping ones write the same bytes twice): a jump is 4 + 4.
                ulong bytes = b >> 8;
                if (n >= 4)
                {
                    Unsafe.WriteUnaligned(d, (uint)bytes);
                    Unsafe.WriteUnaligned(d + n - 4, (uint)(bytes >> (8 * (n - 4))));
                }
                else if (n >= 2)
                {
                    Unsafe.WriteUnaligned(d, (ushort)bytes);
                    Unsafe.WriteUnaligned(d + n - 2, (ushort)(bytes >> (8 * (n - 2))));
                }
                else
                {
                    *d = (byte)bytes;
                }
            }
            else
            {
                byte* source = (byte*)_table + ((b >> 8) & 0xffffffff);
                int length = (int)(b >> 40);
                for (int i = 0; i < length; i++)
                    d[i] = source[i];
            }
        }
        return _complete;
    }

    /// <inheritdoc/>
    public void Dispose() => NativeMemory.AlignedFree(_table);
}
