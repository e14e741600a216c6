namespace XenLivepatch.Hypervisor;

/// <summary>
/// The hypervisor's symbol table and build-id (DESIGN.md "symbols"): what <c>symbols_lookup_by_name</c> and
/// <c>xen_build_id</c> give the livepatch core.
/// </summary>
public interface IHypervisorSymbols
{
    /// <summary>The hypervisor's build-id; empty when it has none (the core then answers -ENODATA).</summary>
    ReadOnlyMemory<byte> BuildId { get; }

    /// <summary>Start of the hypervisor's text.</summary>
    ulong TextStart { get; }

    /// <summary>End of the hypervisor's text.</summary>
    ulong TextEnd { get; }

    /// <summary>
    /// <c>symbols_lookup_by_name</c>: a symbol's address by name. Global symbols go by their name, local ones
    /// by <c>file#name</c>. A symbol at address 0 counts as unknown, as in Xen.
    /// </summary>
    bool TryLookup(string name, out ulong address);
}

/// <summary>What a read of hypervisor memory found.</summary>
public enum MemoryReadStatus
{
    /// <summary>The bytes were read.</summary>
    Ok,
    /// <summary>Nothing is mapped there (Xen would fault).</summary>
    Unmapped,
    /// <summary>Something may be mapped there but the target has no bytes for it (a symbols-only target).</summary>
    Unknown,
}

/// <summary>
/// Hypervisor memory as the core sees it (DESIGN.md "memory"): reads of the hypervisor and of loaded
/// payloads, and the allocation of payload memory within reach of the hypervisor's text.
/// </summary>
public interface IHypervisorMemory
{
    /// <summary>Reads <paramref name="destination"/>.Length bytes at <paramref name="address"/>.</summary>
    MemoryReadStatus Read(ulong address, Span<byte> destination);

    /// <summary>
    /// <c>vmalloc_xen</c> as <c>move_payload</c> uses it: one block of <paramref name="pages"/> pages laid out as
    /// [text][rw][ro], placed where every byte is within the architecture's branch range of the hypervisor's
    /// text. Returns null when there is no room (the core answers -ENOMEM).
    /// </summary>
    PayloadAllocation? Allocate(string payload, ulong textSize, ulong rwSize, ulong roSize, ulong pages);

    /// <summary>Returns a payload's memory (upload failure or unload).</summary>
    void Free(PayloadAllocation allocation);

    /// <summary><c>secure_payload</c>: text read+execute, rw read+write, ro read-only.</summary>
    void Secure(PayloadAllocation allocation);

    /// <summary>
    /// Prepares to patch code in <paramref name="ranges"/> (old functions): what makes that text writable is
    /// done here, before the CPUs are stopped (a sandbox maps a read+write view of those pages), and undone
    /// when the returned object is disposed, after they run again. No system call happens in between.
    /// <paramref name="writes"/> are the writes the pause will make when they are known now (an apply or a
    /// revert without hooks): <see cref="IPreparedPatching.WriteAll"/> makes them in the pause; other writes
    /// go through <see cref="WriteText"/>.
    /// </summary>
    IPreparedPatching PreparePatching(IReadOnlyList<(ulong Address, int Length)> ranges, IReadOnlyList<TextWrite> writes);

    /// <summary>
    /// Writes code bytes (a patch or its undo) at <paramref name="address"/>, in the hypervisor's text or a
    /// payload's, inside a range given to <see cref="PreparePatching"/>. Called only while every CPU is
    /// quiesced. Returns false when the address cannot be written.
    /// </summary>
    bool WriteText(ulong address, ReadOnlySpan<byte> bytes);
}

/// <summary>A write of code bytes that the pause will make, known before the CPUs stop.</summary>
/// <param name="Address">Where, in the hypervisor's text or a payload's.</param>
/// <param name="Bytes">What (at most <see cref="Abi.Livepatch.OpaqueSize"/> bytes).</param>
public readonly record struct TextWrite(ulong Address, ReadOnlyMemory<byte> Bytes);

/// <summary>Text made writable for one action (<see cref="IHypervisorMemory.PreparePatching"/>), until disposed.</summary>
public interface IPreparedPatching : IDisposable
{
    /// <summary>
    /// Reads what <see cref="WriteAll"/> will touch (its table, the bytes it will overwrite), on the CPU that
    /// will write, just before the others are stopped: the pause then takes no cache or TLB miss it can avoid.
    /// </summary>
    void Warm();

    /// <summary>
    /// Makes the writes given to <see cref="IHypervisorMemory.PreparePatching"/>, in order. Called only while
    /// every CPU is quiesced: no lock, no allocation, no system call. False when one could not be made.
    /// </summary>
    bool WriteAll();
}

/// <summary>
/// Prepared writes made one by one through <see cref="IHypervisorMemory.WriteText"/>, for memories with
/// nothing to prepare (offline targets) or that patch the naive way.
/// </summary>
public sealed class SequentialWrites(IHypervisorMemory memory, IReadOnlyList<TextWrite> writes, IDisposable? cleanup = null) : IPreparedPatching
{
    private readonly TextWrite[] _writes = [.. writes];

    /// <inheritdoc/>
    public bool WriteAll()
    {
        bool ok = true;
        foreach (var w in _writes)
            ok &= memory.WriteText(w.Address, w.Bytes.Span);
        return ok;
    }

    /// <inheritdoc/>
    public void Warm() { }

    /// <inheritdoc/>
    public void Dispose() => cleanup?.Dispose();
}

/// <summary>Runs a payload's hooks: native code in the payload's text.</summary>
public interface IHookRunner
{
    /// <summary>Calls an <c>int (*)(livepatch_payload_t *)</c> hook (pre-apply, pre-revert, apply, revert).</summary>
    int CallInt(ulong function, Payload payload);

    /// <summary>Calls a <c>void (*)(void)</c> (load/unload) or <c>void (*)(livepatch_payload_t *)</c> (post) hook.</summary>
    void CallVoid(ulong function, Payload? payload);
}

/// <summary>A hook runner for targets that cannot execute payload code (offline checks): hooks are not run and succeed.</summary>
public sealed class NoHookRunner : IHookRunner
{
    /// <summary>The instance.</summary>
    public static NoHookRunner Instance { get; } = new();

    /// <inheritdoc/>
    public int CallInt(ulong function, Payload payload) => 0;

    /// <inheritdoc/>
    public void CallVoid(ulong function, Payload? payload) { }
}

/// <summary>
/// The CPUs (DESIGN.md "cpus"): the rendezvous that runs patching work while every other CPU is parked at
/// a safe point, as Xen's <c>check_for_livepatch_work</c> does from the idle loop.
/// </summary>
public interface ILivepatchCpus
{
    /// <summary>
    /// Runs <paramref name="work"/> once every CPU is quiesced, within <paramref name="timeoutNs"/> for
    /// both phases; then <paramref name="completed"/> with 0, or with -EBUSY (and without running the work)
    /// when a CPU missed the deadline. May return before the work has run (the hypercall does not wait).
    /// <paramref name="prepare"/>, when given, runs on the CPU that will run the work, before it stops the
    /// others (it brings what the work touches into that CPU's caches).
    /// </summary>
    void Schedule(Action work, ulong timeoutNs, Action<int> completed, Action? prepare = null);
}

/// <summary>CPUs of an offline target: the work runs at once on the caller's thread.</summary>
public sealed class ImmediateCpus : ILivepatchCpus
{
    /// <summary>The instance.</summary>
    public static ImmediateCpus Instance { get; } = new();

    /// <inheritdoc/>
    public void Schedule(Action work, ulong timeoutNs, Action<int> completed, Action? prepare = null)
    {
        work();
        completed(0);
    }
}

/// <summary>A payload's memory: [text][rw][ro], each region page aligned but the last.</summary>
public sealed class PayloadAllocation
{
    /// <summary>Creates an allocation description.</summary>
    public PayloadAllocation(ulong baseAddress, Memory<byte> bytes, ulong textSize, ulong rwSize, ulong roSize)
    {
        BaseAddress = baseAddress;
        Bytes = bytes;
        TextSize = textSize;
        RwSize = rwSize;
        RoSize = roSize;
        RwAddress = baseAddress + PageAlign(textSize);
        RoAddress = RwAddress + PageAlign(rwSize);
    }

    /// <summary>The x86-64 and arm64 page size.</summary>
    public const ulong PageSize = 4096;

    /// <summary><c>PAGE_ALIGN</c>.</summary>
    public static ulong PageAlign(ulong value) => (value + PageSize - 1) & ~(PageSize - 1);

    /// <summary>First byte (the text region).</summary>
    public ulong BaseAddress { get; }

    /// <summary>Start of the text region.</summary>
    public ulong TextAddress => BaseAddress;

    /// <summary>Start of the rw region.</summary>
    public ulong RwAddress { get; }

    /// <summary>Start of the ro region.</summary>
    public ulong RoAddress { get; }

    /// <summary>Bytes of text.</summary>
    public ulong TextSize { get; }

    /// <summary>Bytes of rw data.</summary>
    public ulong RwSize { get; }

    /// <summary>Bytes of ro data.</summary>
    public ulong RoSize { get; }

    /// <summary>The whole block, writable while the payload is loaded (before <c>secure_payload</c>).</summary>
    public Memory<byte> Bytes { get; }

    /// <summary>True when [address, address+length) lies inside the block.</summary>
    public bool Contains(ulong address, ulong length) =>
        address >= BaseAddress && length <= (ulong)Bytes.Length && address - BaseAddress <= (ulong)Bytes.Length - length;

    /// <summary>The bytes at an address inside the block.</summary>
    public Span<byte> Slice(ulong address, int length) => Bytes.Span.Slice((int)(address - BaseAddress), length);
}
