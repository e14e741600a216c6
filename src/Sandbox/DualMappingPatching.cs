using XenLivepatch.Hypervisor;

namespace XenLivepatch.Sandbox;

/// <summary>
/// <see cref="PatchingMode.DualMapping"/>: code is written through read+write views of its pages, mapped before the
/// rendezvous and unmapped after it, while the vCPUs execute the read+execute mapping. W^X holds, and the pause makes
/// no system call; each vCPU serialises its own instruction stream on release.
/// </summary>
internal sealed unsafe class DualMappingPatching(SandboxMapping memory) : ITextPatching
{
    private readonly Lock _lock = new();
    // The action being prepared or run: the views WriteText goes through.
    private Prepared? _current;

    /// <inheritdoc/>
    public IPreparedPatching Prepare(IReadOnlyList<ulong> pages, IReadOnlyList<TextWrite> writes)
    {
        var views = new WritableViews(memory, pages);
        var prepared = new Prepared(this, views, new PauseWriteTable(writes, views));
        lock (_lock)
            _current = prepared;
        return prepared;
    }

    /// <inheritdoc/>
    public bool WriteText(ulong address, ReadOnlySpan<byte> bytes)
    {
        // Runs while the CPUs are stopped: no lock, no allocation, no system call.
        byte* destination = _current is { } current ? current.Views.Translate(address, bytes.Length) : null;
        if (destination == null)
            return false;
        bytes.CopyTo(new Span<byte>(destination, bytes.Length));
        return true;
    }

    private sealed class Prepared(DualMappingPatching owner, WritableViews views, PauseWriteTable table) : IPreparedPatching
    {
        private bool _disposed;

        public WritableViews Views { get; } = views;

        public void Warm() => table.Warm();

        public bool WriteAll() => table.WriteAll();

        public void Dispose()
        {
            lock (owner._lock)
            {
                if (_disposed)
                    return;
                _disposed = true;
                if (ReferenceEquals(owner._current, this))
                    owner._current = null;
            }
            Views.Dispose();
            table.Dispose();
        }
    }
}
