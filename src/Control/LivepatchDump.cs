using System.Globalization;
using System.Text.RegularExpressions;

namespace XenLivepatch.Control;

/// <summary>One function of a payload in the 'x' dump: <c>"    %s patch %p(%u) with %p (%u)"</c>.</summary>
/// <param name="Name">The patched function's name (empty for a NOP patch given by address).</param>
/// <param name="OldAddress">Its address.</param>
/// <param name="OldSize">Its size.</param>
/// <param name="NewAddress">The replacement's address (0 for a NOP patch).</param>
/// <param name="NewSize">The replacement's size (the NOP's length for a NOP patch).</param>
public sealed record DumpedFunction(string Name, ulong OldAddress, uint OldSize, ulong NewAddress, uint NewSize);

/// <summary>One payload in the 'x' dump.</summary>
/// <param name="Name">Its name.</param>
/// <param name="State">CHECKED, APPLIED or "unknown", as Xen's <c>state2str</c>.</param>
/// <param name="StateValue">The state's number.</param>
/// <param name="Text">Its text region.</param>
/// <param name="Data">Its rw region.</param>
/// <param name="Rodata">Its ro region.</param>
/// <param name="Pages">The pages it uses.</param>
/// <param name="Metadata">Its <c>.modinfo</c> strings.</param>
/// <param name="Functions">Its functions.</param>
/// <param name="BuildId">Its build-id (hex), or null.</param>
/// <param name="DependsOn">The build-id it depends on (hex), or null.</param>
/// <param name="DependsOnXen">The hypervisor build-id it was made for (hex), or null.</param>
public sealed record DumpedPayload(string Name, string State, int StateValue, ulong Text, ulong Data, ulong Rodata, ulong Pages,
    IReadOnlyList<string> Metadata, IReadOnlyList<DumpedFunction> Functions, string? BuildId, string? DependsOn, string? DependsOnXen);

/// <summary>
/// What Xen's debug key 'x' prints (<c>livepatch_printall</c>, reference §4.8), parsed from the console text:
/// the hypervisor's build-id, then each payload in upload order with its state, regions, metadata, functions and
/// build-ids. <see cref="Lines"/> keeps the dump's lines as Xen printed them, without the "(XEN) " prefix.
/// </summary>
public sealed partial class LivepatchDump
{
    /// <summary>The line that starts a dump.</summary>
    public const string Header = "'x' pressed - Dumping all livepatch patches";

    private LivepatchDump(string? buildId, IReadOnlyList<DumpedPayload> payloads, IReadOnlyList<string> lines, bool lockHeld)
    {
        BuildId = buildId;
        Payloads = payloads;
        Lines = lines;
        LockHeld = lockHeld;
    }

    /// <summary>The hypervisor's build-id (hex), or null when it printed none.</summary>
    public string? BuildId { get; }

    /// <summary>The payloads, in the hypervisor's (upload) order.</summary>
    public IReadOnlyList<DumpedPayload> Payloads { get; }

    /// <summary>The dump's lines, as Xen printed them (without the console's "(XEN) " and timestamp).</summary>
    public IReadOnlyList<string> Lines { get; }

    /// <summary>True when Xen answered "Lock held. Try again." (or lost its lock midway): the dump is incomplete.</summary>
    public bool LockHeld { get; }

    [GeneratedRegex(@"^\(XEN\) (?:\[[^\]]*\] )?")]
    private static partial Regex ConsolePrefix();

    [GeneratedRegex(@"^ name=(.*) state=([A-Za-z]+)\((-?\d+)\) ([0-9a-f]+) \(\.data=([0-9a-f]+), \.rodata=([0-9a-f]+)\) using (\d+) pages\.$")]
    private static partial Regex PayloadLine();

    [GeneratedRegex(@"^    (.*) patch ([0-9a-f]+)\((\d+)\) with ([0-9a-f]+) \((\d+)\)$")]
    private static partial Regex FunctionLine();

    /// <summary>
    /// Parses the last dump in <paramref name="console"/> (console text, with or without Xen's "(XEN) " prefixes);
    /// null when it holds none. Lines of the console that are not part of the dump's grammar (other messages
    /// printed meanwhile) are left out.
    /// </summary>
    public static LivepatchDump? Parse(string console)
    {
        ArgumentNullException.ThrowIfNull(console);
        var raw = console.Replace("\r", "", StringComparison.Ordinal).Split('\n');
        var lines = new List<string>(raw.Length);
        foreach (string l in raw)
            lines.Add(ConsolePrefix().Replace(l, "", 1));
        int start = lines.FindLastIndex(l => l == Header);
        if (start < 0)
            return null;
        string? buildId = null;
        bool lockHeld = false;
        var payloads = new List<DumpedPayload>();
        var kept = new List<string> { Header };
        Builder? current = null;
        void Flush()
        {
            if (current != null)
                payloads.Add(current.Build());
            current = null;
        }
        for (int i = start + 1; i < lines.Count; i++)
        {
            string l = lines[i];
            if (l.StartsWith("build-id: ", StringComparison.Ordinal) && current == null && payloads.Count == 0)
                buildId = l["build-id: ".Length..].Trim();
            else if (l is "Lock held. Try again." or "Couldn't reacquire lock. Try again.")
                lockHeld = true;
            else if (PayloadLine().Match(l) is { Success: true } p)
            {
                Flush();
                current = new Builder
                {
                    Name = p.Groups[1].Value,
                    State = p.Groups[2].Value,
                    StateValue = int.Parse(p.Groups[3].ValueSpan, CultureInfo.InvariantCulture),
                    Text = Hex(p.Groups[4].Value),
                    Data = Hex(p.Groups[5].Value),
                    Rodata = Hex(p.Groups[6].Value),
                    Pages = ulong.Parse(p.Groups[7].ValueSpan, CultureInfo.InvariantCulture),
                };
            }
            else if (current != null && FunctionLine().Match(l) is { Success: true } f)
            {
                current.Functions.Add(new DumpedFunction(f.Groups[1].Value, Hex(f.Groups[2].Value), uint.Parse(f.Groups[3].ValueSpan, CultureInfo.InvariantCulture),
                    Hex(f.Groups[4].Value), uint.Parse(f.Groups[5].ValueSpan, CultureInfo.InvariantCulture)));
            }
            else if (current != null && l == "livepatch: module metadata:")
            {
                current.InMetadata = true;
            }
            else if (current != null && current.InMetadata && l.StartsWith("livepatch:   ", StringComparison.Ordinal))
            {
                current.Metadata.Add(l["livepatch:   ".Length..]);
            }
            else if (current != null && l.StartsWith("build-id=", StringComparison.Ordinal))
                current.BuildId = l["build-id=".Length..].Trim();
            else if (current != null && l.StartsWith("depend-on=", StringComparison.Ordinal))
                current.DependsOn = l["depend-on=".Length..].Trim();
            else if (current != null && l.StartsWith("depend-on-xen=", StringComparison.Ordinal))
                current.DependsOnXen = l["depend-on-xen=".Length..].Trim();
            else
                continue;
            if (current != null && !l.StartsWith("livepatch:", StringComparison.Ordinal))
                current.InMetadata = false;
            kept.Add(l);
        }
        Flush();
        return new LivepatchDump(buildId, payloads, kept, lockHeld);
    }

    private static ulong Hex(string s) => ulong.Parse(s, NumberStyles.HexNumber, CultureInfo.InvariantCulture);

    private sealed class Builder
    {
        public required string Name { get; init; }
        public required string State { get; init; }
        public required int StateValue { get; init; }
        public required ulong Text { get; init; }
        public required ulong Data { get; init; }
        public required ulong Rodata { get; init; }
        public required ulong Pages { get; init; }
        public List<string> Metadata { get; } = [];
        public List<DumpedFunction> Functions { get; } = [];
        public string? BuildId { get; set; }
        public string? DependsOn { get; set; }
        public string? DependsOnXen { get; set; }
        public bool InMetadata { get; set; }

        public DumpedPayload Build() => new(Name, State, StateValue, Text, Data, Rodata, Pages, Metadata, Functions, BuildId, DependsOn, DependsOnXen);
    }

    /// <summary>The dump's text: its lines, each ended by a newline.</summary>
    public override string ToString() => string.Concat(Lines.Select(l => l + "\n"));
}
