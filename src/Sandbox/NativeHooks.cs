using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Text;
using XenLivepatch.Abi;
using XenLivepatch.Hypervisor;

namespace XenLivepatch.Sandbox;

/// <summary>
/// Runs payload hooks in the sandbox: native calls into payload text. Pre/post/action hooks receive a
/// <c>livepatch_payload_t</c> (src/Sandbox/image/sandbox.h) kept in native memory, whose per-function
/// state an action hook may change; the state is copied in before and back after each call.
/// </summary>
public sealed unsafe class NativeHooks : IHookRunner, IDisposable
{
    // struct payload { const char *name; funcs; fstate; u32 nfuncs; i32 rc; u32 state; u32 reverted; } = 40 bytes
    private const int PayloadSize = 40;
    // struct livepatch_fstate { u32 patch_offset; u32 applied; u8 insn_buffer[31]; u8 pad; } = 40 bytes
    private const int FstateSize = 40;
    private readonly Dictionary<Payload, IntPtr> _structs = [];

    /// <summary>Creates a runner; under a JIT, its calls are compiled now (load and unload hooks run in the pause).</summary>
    public NativeHooks()
    {
        PauseCode.Prepare(typeof(NativeHooks), nameof(CallVoid), nameof(CallInt), nameof(StructOf), nameof(CopyBack));
        // A method with an unmanaged call is compiled when first called whatever PrepareMethod was asked:
        // call it once, on a native function that does nothing.
        if (PauseCode.Jitted)
            CallVoid((ulong)(delegate* unmanaged<void>)&Nothing, null);
    }

    [UnmanagedCallersOnly]
    private static void Nothing()
    {
    }

    private IntPtr StructOf(Payload p)
    {
        lock (_structs)
        {
            if (!_structs.TryGetValue(p, out var ptr))
            {
                byte[] name = Encoding.Latin1.GetBytes(p.Name + "\0");
                ptr = (IntPtr)NativeMemory.AllocZeroed((nuint)(PayloadSize + FstateSize * Math.Max(1, p.Functions.Count) + name.Length));
                name.CopyTo(new Span<byte>((byte*)ptr + PayloadSize + FstateSize * Math.Max(1, p.Functions.Count), name.Length));
                _structs[p] = ptr;
            }
            byte* s = (byte*)ptr;
            byte* fstate = s + PayloadSize;
            *(ulong*)s = (ulong)(fstate + FstateSize * Math.Max(1, p.Functions.Count));
            *(ulong*)(s + 8) = p.Functions.Count > 0 ? p.Functions[0].EntryAddress : 0;
            *(ulong*)(s + 16) = (ulong)fstate;
            *(uint*)(s + 24) = (uint)p.Functions.Count;
            *(int*)(s + 28) = p.Rc;
            *(uint*)(s + 32) = (uint)p.State;
            *(uint*)(s + 36) = p.Reverted ? 1u : 0;
            for (int i = 0; i < p.Functions.Count; i++)
            {
                byte* f = fstate + i * FstateSize;
                *(uint*)f = (uint)p.Functions[i].PatchOffset;
                *(uint*)(f + 4) = (uint)p.Functions[i].Applied;
            }
            return ptr;
        }
    }

    private static void CopyBack(Payload p, IntPtr ptr)
    {
        byte* fstate = (byte*)ptr + PayloadSize;
        for (int i = 0; i < p.Functions.Count; i++)
            p.Functions[i].Applied = (LivepatchFuncState)(*(uint*)(fstate + i * FstateSize + 4));
    }

    /// <inheritdoc/>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public int CallInt(ulong function, Payload payload)
    {
        var s = StructOf(payload);
        int rc = ((delegate* unmanaged<IntPtr, int>)function)(s);
        CopyBack(payload, s);
        return rc;
    }

    /// <inheritdoc/>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public void CallVoid(ulong function, Payload? payload)
    {
        if (payload == null)
        {
            ((delegate* unmanaged<void>)function)();
            return;
        }
        ((delegate* unmanaged<IntPtr, void>)function)(StructOf(payload));
    }

    /// <inheritdoc/>
    public void Dispose()
    {
        lock (_structs)
        {
            foreach (var p in _structs.Values)
                NativeMemory.Free((void*)p);
            _structs.Clear();
        }
    }
}
