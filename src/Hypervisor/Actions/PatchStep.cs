using System.Runtime.CompilerServices;
using System.Text;
using XenLivepatch.Abi;

namespace XenLivepatch.Hypervisor;

/// <summary>
/// One step of a <see cref="PatchPlan"/>: <c>apply_payload</c> or <c>revert_payload</c> of one payload (or the
/// action hook that replaces it), or REPLACE's expectations check. Made before the pause with everything the
/// pause needs: the hooks to call, the writes, and for an apply each patch and the bytes it covers.
/// </summary>
internal sealed class PatchStep
{
    private const int Stride = 32; // >= Livepatch.OpaqueSize: one patch or saved copy per function

    public enum Kinds { Apply, Revert, Expectations }

    public required Kinds Kind { get; init; }
    public required Payload Payload { get; init; }
    public PatchFunction[] Functions { get; init; } = [];
    /// <summary>The apply or revert action hook's function, 0 when the core writes the patches.</summary>
    public ulong ActionHook { get; init; }
    /// <summary><c>apply_payload</c>'s load hooks, called before the writes.</summary>
    public ulong[] HooksBefore { get; init; } = [];
    /// <summary><c>revert_payload</c>'s unload hooks, called after the writes.</summary>
    public ulong[] HooksAfter { get; init; } = [];
    /// <summary>The writes, in order, when they are known before the pause.</summary>
    public TextWrite[] Writes { get; private set; } = [];
    /// <summary>An apply: the functions it patches (those not applied yet).</summary>
    public int[] Pending { get; init; } = [];
    /// <summary>An apply that works its patches out in the pause, after other steps that may have written.</summary>
    public bool Live { get; init; }
    /// <summary>What the step logs (Xen prints it from the pause; the core prints it after).</summary>
    public List<string> Lines { get; } = [];
    /// <summary>Adds a line in the pause (an expectations step); made before the pause.</summary>
    public Action<string>? LogLine { get; private set; }

    // An apply: each function's patch offset and length, its patch and the bytes it covers (Stride bytes each).
    private int[] _offsets = [];
    private int[] _lengths = [];
    private byte[] _patches = [];
    private byte[] _saved = [];

    public int Offset(int i) => _offsets[i];

    public int Length(int i) => _lengths[i];

    public ReadOnlySpan<byte> Patch(int i) => _patches.AsSpan(i * Stride, _lengths[i]);

    public ReadOnlySpan<byte> SavedBytes(int i) => _saved.AsSpan(i * Stride, _lengths[i]);

    /// <summary>REPLACE's <c>livepatch_check_expectations</c>, once every applied payload is reverted.</summary>
    public static PatchStep Expectations(Payload p)
    {
        var step = new PatchStep { Kind = Kinds.Expectations, Payload = p };
        step.LogLine = step.Lines.Add;
        return step;
    }

    /// <summary><c>revert_payload</c> (the saved bytes go back, then the unload hooks), or the revert action hook.</summary>
    public static PatchStep Revert(LivepatchCore core, Payload p)
    {
        var functions = p.Functions.ToArray();
        if (Hook.Enabled(core.Memory, p.Hooks.Revert, out ulong hook))
            return Hooked(Kinds.Revert, p, functions, hook, "revert");
        var step = new PatchStep { Kind = Kinds.Revert, Payload = p, Functions = functions, HooksAfter = [.. p.Hooks.Unload] };
        step.Lines.Add($"{p.Name}: Reverting");
        var undo = new List<TextWrite>();
        foreach (var f in functions)
        {
            if (f.OldAddress == 0 || f.Applied == LivepatchFuncState.NotApplied)
                step.Lines.Add($"{p.Name}: {f.Name} has not been applied before");
            else if (f.SavedLength > 0)
                undo.Add(new TextWrite(f.OldAddress + (ulong)f.PatchOffset, f.SavedBytes.AsMemory(0, f.SavedLength).ToArray()));
        }
        step.Writes = [.. undo];
        return step;
    }

    /// <summary>
    /// <c>apply_payload</c> (the load hooks, then a patch over each function not applied yet), or the apply
    /// action hook. Unless <paramref name="live"/>, the patches are worked out now.
    /// </summary>
    public static PatchStep Apply(LivepatchCore core, Payload p, bool live)
    {
        var functions = p.Functions.ToArray();
        if (Hook.Enabled(core.Memory, p.Hooks.Apply, out ulong hook))
            return Hooked(Kinds.Apply, p, functions, hook, "apply");
        var pending = new List<int>();
        for (int i = 0; i < functions.Length; i++)
        {
            if (functions[i].Applied != LivepatchFuncState.Applied)
                pending.Add(i);
        }
        var step = new PatchStep
        {
            Kind = Kinds.Apply, Payload = p, Functions = functions, HooksBefore = [.. p.Hooks.Load], Live = live, Pending = [.. pending],
            _offsets = new int[functions.Length], _lengths = new int[functions.Length],
            _patches = new byte[functions.Length * Stride], _saved = new byte[functions.Length * Stride],
        };
        step.Lines.Add($"{p.Name}: Applying {functions.Length} functions");
        foreach (var f in functions)
        {
            if (f.Applied == LivepatchFuncState.Applied)
                step.Lines.Add($"{p.Name}: {f.Name} has been already applied before");
        }
        if (p.Metadata.Length > 0)
        {
            step.Lines.Add("module metadata:");
            foreach (string s in Encoding.Latin1.GetString(p.Metadata.Span).Split('\0', StringSplitOptions.RemoveEmptyEntries))
                step.Lines.Add("  " + s);
        }
        if (live)
            return step;
        var writes = new List<TextWrite>(pending.Count);
        foreach (int i in pending)
        {
            step.WorkOutPatch(core, i);
            if (step._lengths[i] > 0)
                writes.Add(new TextWrite(functions[i].OldAddress + (ulong)step._offsets[i], step._patches.AsMemory(i * Stride, step._lengths[i])));
        }
        step.Writes = [.. writes];
        return step;
    }

    private static PatchStep Hooked(Kinds kind, Payload p, PatchFunction[] functions, ulong hook, string verb)
    {
        var step = new PatchStep { Kind = kind, Payload = p, Functions = functions, ActionHook = hook };
        step.Lines.Add($"{p.Name}: Calling {verb} action hook function");
        return step;
    }

    /// <summary>
    /// <c>arch_livepatch_apply</c>'s first half for function <paramref name="i"/>: where its patch goes (after an
    /// ENDBR64 the profile skips), the instructions, and the bytes they will cover.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    [RunsInPause]
    public void WorkOutPatch(LivepatchCore core, int i)
    {
        var f = Functions[i];
        Span<byte> head = stackalloc byte[4];
        int offset = core.Profile.HandlesEndbr && core.Memory.Read(f.OldAddress, head) == MemoryReadStatus.Ok ? core.Arch.PatchOffset(core.Profile, head) : 0;
        int length = core.Arch.PatchBytes(f.Entry, offset);
        _offsets[i] = offset;
        _lengths[i] = length;
        if (length == 0)
            return;
        ulong place = f.OldAddress + (ulong)offset;
        core.Arch.EncodePatch(f.Entry, place, _patches.AsSpan(i * Stride, length));
        core.Memory.Read(place, _saved.AsSpan(i * Stride, length));
    }
}
