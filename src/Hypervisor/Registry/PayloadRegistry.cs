namespace XenLivepatch.Hypervisor;

/// <summary>
/// The payloads in upload order (<c>payload_list</c>), the stack of applied ones (<c>applied_list</c>), the new
/// symbols of every loaded payload, and <c>payload_version</c>. <see cref="Lock"/> is Xen's
/// <c>payload_lock</c>: every member but <see cref="Lock"/> is called with it held, and never inside the
/// pause (what a pause changes is recorded after the CPUs are released).
/// </summary>
internal sealed class PayloadRegistry : IPayloadRegistryView
{
    private readonly List<Payload> _payloads = [];
    private readonly List<Payload> _applied = [];
    // The new symbols of every loaded payload (unique: an upload that would repeat one is refused).
    private readonly Dictionary<string, ulong> _newSymbols = new(StringComparer.Ordinal);
    // Xen walks payload_list for a name or a build-id; the same answers come from these indexes, so an upload's
    // checks against the loaded payloads cost the same with 50,000 loaded as with one.
    private readonly Dictionary<string, Payload> _byName = new(StringComparer.Ordinal);
    // Every loaded payload by its build-id (empty when it has none), in upload order: a FORCE upload may skip the
    // check, so two can share one, and the first in upload order is the one Xen's walk finds.
    private readonly Dictionary<byte[], List<Payload>> _byBuildId = new(BuildIdComparer.Instance);

    /// <summary><c>payload_lock</c>.</summary>
    public Lock Lock { get; } = new();

    /// <summary><c>payload_version</c>: starts at 1, bumped by every upload and unload.</summary>
    public uint Version { get; private set; } = 1;

    /// <summary>The payloads, in upload order.</summary>
    public IReadOnlyList<Payload> Payloads => _payloads;

    /// <summary>The applied payloads, oldest first.</summary>
    public IReadOnlyList<Payload> Applied => _applied;

    /// <summary>The payload applied last, or null.</summary>
    public Payload? Top => _applied.Count > 0 ? _applied[^1] : null;

    /// <summary>The payload with this name, or null.</summary>
    public Payload? Find(string name) => _byName.GetValueOrDefault(name);

    /// <summary>Adds an uploaded payload, CHECKED with rc 0, with its new symbols; bumps the version.</summary>
    public void Add(Payload payload)
    {
        payload.State = Abi.LivepatchState.Checked;
        payload.Rc = 0;
        _payloads.Add(payload);
        _byName.Add(payload.Name, payload);
        byte[] id = payload.BuildId.ToArray();
        if (_byBuildId.TryGetValue(id, out var same))
            same.Add(payload);
        else
            _byBuildId.Add(id, [payload]);
        foreach (var s in payload.Symbols)
        {
            if (s.IsNew)
                _newSymbols.TryAdd(s.Name, s.Value);
        }
        Version++;
    }

    /// <summary>Removes an unloaded payload and its new symbols; bumps the version.</summary>
    public void Remove(Payload payload)
    {
        _payloads.Remove(payload);
        _byName.Remove(payload.Name);
        byte[] id = payload.BuildId.ToArray();
        if (_byBuildId.TryGetValue(id, out var same) && same.Remove(payload) && same.Count == 0)
            _byBuildId.Remove(id);
        foreach (var s in payload.Symbols)
        {
            if (s.IsNew && _newSymbols.TryGetValue(s.Name, out ulong v) && v == s.Value)
                _newSymbols.Remove(s.Name);
        }
        Version++;
    }

    /// <summary>Puts an applied payload on top of the stack, APPLIED.</summary>
    public void MarkApplied(Payload payload)
    {
        _applied.Add(payload);
        payload.State = Abi.LivepatchState.Applied;
    }

    /// <summary>Takes a reverted payload off the stack, CHECKED and marked reverted.</summary>
    public void MarkReverted(Payload payload)
    {
        _applied.Remove(payload);
        payload.Reverted = true;
        payload.State = Abi.LivepatchState.Checked;
    }

    bool IPayloadRegistryView.TryLookupNewSymbol(string name, out ulong value) => _newSymbols.TryGetValue(name, out value);

    string? IPayloadRegistryView.FindBuildId(ReadOnlySpan<byte> buildId) =>
        _byBuildId.TryGetValue(buildId.ToArray(), out var same) ? same[0].Name : null;

    // Build-ids compared by their bytes.
    private sealed class BuildIdComparer : IEqualityComparer<byte[]>
    {
        public static readonly BuildIdComparer Instance = new();

        public bool Equals(byte[]? x, byte[]? y) => x.AsSpan().SequenceEqual(y);

        public int GetHashCode(byte[] obj)
        {
            var hash = new HashCode();
            hash.AddBytes(obj);
            return hash.ToHashCode();
        }
    }
}
