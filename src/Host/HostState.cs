using XenLivepatch.Abi;
using XenLivepatch.Control;

namespace XenLivepatch.Host;

/// <summary>A payload the hypervisor has loaded.</summary>
/// <param name="Name">Its name.</param>
/// <param name="State">CHECKED or APPLIED (null for a state Xen does not define).</param>
/// <param name="Rc">The rc of its last action.</param>
/// <param name="BuildId">Its build-id (hex), when the 'x' dump gave it.</param>
/// <param name="Depends">The build-id it depends on (hex), when the 'x' dump gave it.</param>
/// <param name="Metadata">Its metadata strings.</param>
public sealed record LoadedPayload(string Name, LivepatchState? State, int Rc, string? BuildId, string? Depends, IReadOnlyList<string> Metadata)
{
    /// <summary>True when applied.</summary>
    public bool IsApplied => State == LivepatchState.Applied;
}

/// <summary>
/// What a hypervisor has loaded, as the control library reports it: its build-id (XENVER_build_id), the payloads
/// in upload order (LIST), and, from debug key 'x', each payload's build-id and dependency. The applied stack's
/// order is not reported by Xen; it is worked out from the dependencies (each payload above the one whose
/// build-id it depends on), ties in upload order. That is the applied order of every stack this tool builds (it
/// uploads each payload just before applying it, and a desired set puts a payload after the one it depends on)
/// and of stacks built with Xen's <c>load</c>; a stack whose independent payloads were applied in another order
/// than they were uploaded is read in upload order.
/// </summary>
public sealed class HostState
{
    private HostState(string? xenBuildId, IReadOnlyList<LoadedPayload> loaded, bool buildIdsKnown, string? dumpProblem)
    {
        XenBuildId = xenBuildId;
        Loaded = loaded;
        BuildIdsKnown = buildIdsKnown;
        DumpProblem = dumpProblem;
        AppliedStack = StackOrder(xenBuildId, [.. loaded.Where(p => p.IsApplied)]);
    }

    /// <summary>The running hypervisor's build-id (hex), or null when it could not be read.</summary>
    public string? XenBuildId { get; }

    /// <summary>The loaded payloads, in upload order.</summary>
    public IReadOnlyList<LoadedPayload> Loaded { get; }

    /// <summary>The applied payloads, bottom of the stack first.</summary>
    public IReadOnlyList<LoadedPayload> AppliedStack { get; }

    /// <summary>True when the payloads' build-ids are known (the 'x' dump was read).</summary>
    public bool BuildIdsKnown { get; }

    /// <summary>Why the 'x' dump could not be used (payloads are then told apart by name only), or null.</summary>
    public string? DumpProblem { get; }

    /// <summary>The loaded payload named <paramref name="name"/>, or null.</summary>
    public LoadedPayload? Find(string name) => Loaded.FirstOrDefault(p => p.Name == name);

    /// <summary>The state of a hypervisor whose parts are known (tests).</summary>
    public static HostState Of(string? xenBuildId, IReadOnlyList<LoadedPayload> loaded, bool buildIdsKnown = true) =>
        new(xenBuildId, loaded, buildIdsKnown, null);

    /// <summary>
    /// Reads the state through <paramref name="client"/>. Actions still in progress are waited for. The 'x' dump is
    /// read only when payloads are loaded and <paramref name="withBuildIds"/> (it prints to Xen's console).
    /// Returns the failed call when the list cannot be read.
    /// </summary>
    public static async Task<(HostState? State, LivepatchResult Failure)> ReadAsync(LivepatchClient client, bool withBuildIds = true, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(client);
        var id = await client.GetBuildIdAsync(cancellationToken).ConfigureAwait(false);
        string? xen = id.Result.Succeeded ? id.Hex : null;
        LivepatchList list;
        for (int attempt = 0; ; attempt++)
        {
            list = await client.ListAllAsync(cancellationToken).ConfigureAwait(false);
            if (!list.Result.Succeeded)
                return (null, list.Result);
            var busy = list.Entries.FirstOrDefault(e => e.Status.Rc == -(int)XenErrno.EAGAIN);
            if (busy == null || attempt >= 3)
                break;
            await client.WaitAsync(busy.Name, TimeSpan.FromMilliseconds(10), TimeSpan.FromSeconds(30), cancellationToken).ConfigureAwait(false);
        }
        Dictionary<string, DumpedPayload>? dumped = null;
        string? problem = null;
        if (withBuildIds && list.Entries.Count > 0)
        {
            var dump = await client.DumpAsync(cancellationToken).ConfigureAwait(false);
            if (dump.Dump != null)
            {
                dumped = dump.Dump.Payloads.GroupBy(p => p.Name, StringComparer.Ordinal).ToDictionary(g => g.Key, g => g.Last(), StringComparer.Ordinal);
                xen ??= dump.Dump.BuildId;
                if (list.Entries.Any(e => !dumped.ContainsKey(e.Name)))
                {
                    problem = "the 'x' dump does not name every loaded payload";
                    dumped = null;
                }
            }
            else
            {
                problem = dump.Problem ?? $"the 'x' dump could not be read ({dump.Result})";
            }
        }
        var loaded = list.Entries.Select(e =>
        {
            DumpedPayload? d = null;
            dumped?.TryGetValue(e.Name, out d);
            return new LoadedPayload(e.Name, e.State, e.Status.Rc, d?.BuildId, d?.DependsOn, e.MetadataStrings);
        }).ToList();
        return (new HostState(xen, loaded, dumped != null || list.Entries.Count == 0, problem), new LivepatchResult(LivepatchCall.List, 0));
    }

    // Parent before child (a payload above the one whose build-id it depends on), ties in upload order.
    private static List<LoadedPayload> StackOrder(string? xen, List<LoadedPayload> applied)
    {
        var byId = applied.Where(p => p.BuildId != null).GroupBy(p => p.BuildId!, StringComparer.Ordinal).ToDictionary(g => g.Key, g => g.First(), StringComparer.Ordinal);
        var done = new HashSet<LoadedPayload>();
        var result = new List<LoadedPayload>();
        var pending = applied.ToList();
        while (pending.Count > 0)
        {
            var next = pending.FirstOrDefault(p => p.Depends == null || p.Depends == xen || !byId.TryGetValue(p.Depends, out var parent) || parent == p || done.Contains(parent))
                ?? pending[0];
            result.Add(next);
            done.Add(next);
            pending.Remove(next);
        }
        return result;
    }
}
