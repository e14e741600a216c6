using XenLivepatch.Hypervisor;

namespace XenLivepatch.Sandbox;

/// <summary>How code is made writable for patching.</summary>
public enum PatchingMode
{
    /// <summary>
    /// A read+write view of the patched pages is mapped before the rendezvous and unmapped after it; the
    /// vCPUs serialise themselves on release. No system call while they are stopped (the default).
    /// </summary>
    DualMapping,

    /// <summary>
    /// The naive way, kept as the benchmark's baseline: inside the pause, mprotect the page writable, write,
    /// mprotect it back to read+execute, and membarrier(SYNC_CORE) every thread of the process.
    /// </summary>
    MprotectMembarrier,
}

/// <summary>One way of writing code the vCPUs run (<see cref="PatchingMode"/>), chosen when the sandbox starts.</summary>
internal interface ITextPatching
{
    /// <summary>
    /// Readies the writes of one action to <paramref name="pages"/> (sorted, page aligned, inside the sandbox's
    /// memory), before the CPUs stop: <see cref="IHypervisorMemory.PreparePatching"/>.
    /// </summary>
    IPreparedPatching Prepare(IReadOnlyList<ulong> pages, IReadOnlyList<TextWrite> writes);

    /// <summary>Writes code in the pause: <see cref="IHypervisorMemory.WriteText"/>.</summary>
    bool WriteText(ulong address, ReadOnlySpan<byte> bytes);
}
