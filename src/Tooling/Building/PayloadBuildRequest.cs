using XenLivepatch.Abi;
using XenLivepatch.Hypervisor;

namespace XenLivepatch.Tooling;

/// <summary><c>--replace OLD=NEW</c>: the payload's function <paramref name="New"/> replaces the hypervisor's <paramref name="Old"/>.</summary>
public sealed record FunctionReplacement(string Old, string New);

/// <summary>
/// <c>--nop FUNC:LEN</c>: NOPs over the first <paramref name="Length"/> bytes of <paramref name="Function"/>
/// (counted from its start; on x86 Xen skips a leading ENDBR64). With <paramref name="FromEnd"/>, the length is
/// the function's size less <paramref name="Length"/> (<c>FUNC:-1</c> keeps a final one-byte <c>ret</c>).
/// </summary>
public sealed record NopRequest(string Function, int Length, bool FromEnd);

/// <summary>
/// <c>--expect FUNC=HEX</c> (these bytes) or <c>--expect FUNC:LEN</c> (the first LEN bytes of the hypervisor
/// image): what <paramref name="Function"/> must start with for APPLY to go ahead (Xen 4.14+ expectations).
/// </summary>
public sealed record ExpectRequest(string Function, byte[]? Bytes, int Length);

/// <summary>Everything <c>xen-livepatch build</c> is told.</summary>
public sealed class PayloadBuildRequest
{
    /// <summary>The payload's name (in messages and in the check; Xen names it at upload).</summary>
    public required string Name { get; init; }

    /// <summary>The hypervisor it is for.</summary>
    public required OfflineTarget Target { get; init; }

    /// <summary>The replacement objects, in command-line order.</summary>
    public IReadOnlyList<LinkInput> Objects { get; init; } = [];

    /// <summary>Whose rules: version 2 funcs and <c>.livepatch.xen_depends</c> (xen-4.17) or version 1 and none (seed-2016).</summary>
    public LivepatchProfile Profile { get; init; } = LivepatchProfile.Xen417;

    /// <summary><c>--depends HEX</c>: the build-id <c>.livepatch.depends</c> names, when not the hypervisor's.</summary>
    public ReadOnlyMemory<byte>? Depends { get; init; }

    /// <summary><c>--depends-on PAYLOAD</c>: the payload this one is stacked on (its build-id and its symbols).</summary>
    public StackedPayload? DependsOn { get; init; }

    /// <summary>Explicit replacements.</summary>
    public IReadOnlyList<FunctionReplacement> Replace { get; init; } = [];

    /// <summary>NOP patches.</summary>
    public IReadOnlyList<NopRequest> Nops { get; init; } = [];

    /// <summary>Expectations.</summary>
    public IReadOnlyList<ExpectRequest> Expect { get; init; } = [];

    /// <summary><c>--old-size FUNC=N</c>: sizes that override the hypervisor's (needed where its listing has none).</summary>
    public IReadOnlyDictionary<string, uint> OldSizes { get; init; } = new Dictionary<string, uint>();

    /// <summary><c>--metadata</c> strings for <c>.modinfo</c> (key=value by convention).</summary>
    public IReadOnlyList<string> Metadata { get; init; } = [];

    /// <summary><c>--resolve</c>: store each old function's address; otherwise old_addr is 0 and Xen resolves the name.</summary>
    public bool ResolveOldAddresses { get; init; }
}

/// <summary>One <c>livepatch_func</c> that <c>build</c> wrote.</summary>
/// <param name="Name">The old function's name, as the hypervisor's symbol table has it.</param>
/// <param name="OldAddress">Its address in the hypervisor.</param>
/// <param name="OldSize">old_size.</param>
/// <param name="NewSymbol">The replacement's symbol, or null for a NOP patch.</param>
/// <param name="NewSize">new_size.</param>
/// <param name="OldAddressStored">True when old_addr holds the address; false when it is 0 (resolved by name at load).</param>
/// <param name="Expect">The expectation.</param>
public sealed record BuiltFunction(string Name, ulong OldAddress, uint OldSize, string? NewSymbol, uint NewSize, bool OldAddressStored, LivepatchExpectation Expect);

/// <summary>What <c>build</c> made.</summary>
public sealed class PayloadBuildResult
{
    /// <summary>The payload file.</summary>
    public required byte[] Data { get; init; }

    /// <summary>Its build-id.</summary>
    public required byte[] BuildId { get; init; }

    /// <summary>The functions it patches (entries the objects brought are not listed).</summary>
    public required IReadOnlyList<BuiltFunction> Functions { get; init; }

    /// <summary>The build-id in <c>.livepatch.depends</c>, and what it is ("the hypervisor", a payload's name, "--depends").</summary>
    public required (ReadOnlyMemory<byte> BuildId, string Of) Depends { get; init; }

    /// <summary>Remarks a user should read.</summary>
    public required IReadOnlyList<string> Notes { get; init; }

    /// <summary>The livepatch core's verdict on the payload, against the target.</summary>
    public required CheckReport Check { get; init; }
}
