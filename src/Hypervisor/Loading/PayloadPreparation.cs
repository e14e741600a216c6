using System.Buffers.Binary;
using System.Text;
using XenLivepatch.Abi;
using XenLivepatch.Elf;

namespace XenLivepatch.Hypervisor;

/// <summary>
/// Xen's <c>prepare_payload</c> (xen/common/livepatch.c) on a payload whose sections are placed and
/// relocated, in Xen's order: the functions of <c>.livepatch.funcs</c>, the hooks, the three build-id notes,
/// the architecture's tables, the metadata.
/// </summary>
internal sealed class PayloadPreparation(LoadContext ctx, PayloadElf elf, PayloadAllocation memory, Payload payload)
{
    private string Name => elf.Name;

    public LivepatchError? Run() => PrepareFunctions() ?? PrepareHooks() ?? PrepareNotes() ?? CheckArchTables() ?? PrepareMetadata();

    private ReadOnlySpan<byte> Contents(LoaderSection s) => memory.Slice(s.LoadAddress, (int)s.Header.Size);

    // The livepatch_func entries: each checked, its old_addr resolved (resolve_old_address), its patch
    // checked by the architecture (arch_livepatch_verify_func) and for reach (livepatch_verify_distance).
    private LivepatchError? PrepareFunctions()
    {
        var funcs = elf.SectionByName(PayloadSections.Funcs);
        if (funcs == null)
            return null;
        if (ctx.CheckPlaced(Name, funcs) is { } unplaced)
            return unplaced;
        var profile = ctx.Profile;
        int size = profile.FuncSize;
        if (funcs.Header.Size % (ulong)size != 0)
            return Refuse.FuncsSize(Name, funcs.Header.Size, size);
        int n = (int)(funcs.Header.Size / (ulong)size);
        var prepared = new List<PatchFunction>(n);
        Span<byte> head = stackalloc byte[4];
        for (int i = 0; i < n; i++)
        {
            ulong at = funcs.LoadAddress + (ulong)(i * size);
            var bytes = memory.Slice(at, size);
            var f = LivepatchFunc.Read(bytes, profile.PayloadVersion);
            if (f.Version != profile.PayloadVersion)
                return Refuse.FuncVersion(Name, f.Version, i, profile.PayloadVersion);
            if (f.OldSize == 0)
                return Refuse.FuncOldSizeZero(Name, i);
            string name = "";
            if (f.Name != 0 && !TryReadString(f.Name, out name))
                return Refuse.FuncNameUnreadable(Name, i, f.Name);
            // resolve_old_address
            if (f.OldAddr == 0)
            {
                if (f.Name == 0)
                    return Refuse.FuncNoAddressNoName(Name, i);
                if (!ctx.TryResolve(name, out ulong old))
                    return Refuse.FuncUnresolved(Name, name);
                f = f with { OldAddr = old };
                BinaryPrimitives.WriteUInt64LittleEndian(bytes[LivepatchFunc.FieldLocations.OldAddr..], old);
            }
            if (ctx.Memory.Read(f.OldAddr, head[..1]) == MemoryReadStatus.Unmapped)
                return Refuse.FuncNotMapped(Name, i, name.Length > 0 ? name : "unnamed", f.OldAddr);
            // A jump goes after an ENDBR64 (a NOP patch covers it).
            bool endbr = profile.HandlesEndbr && f.NewAddr != 0 && ctx.Memory.Read(f.OldAddr, head) == MemoryReadStatus.Ok && ctx.Arch.PatchOffset(profile, head) != 0;
            if (ctx.Arch.VerifyFunc(Name, f, endbr) is { } refused)
                return refused;
            // livepatch_verify_distance (NOPs have no distance)
            if (f.NewAddr != 0)
            {
                long offset = unchecked((long)(f.OldAddr - f.NewAddr));
                if (offset < -ctx.Arch.Range || offset >= ctx.Arch.Range)
                    return Refuse.FuncOutOfRange(Name, i, name, f.NewAddr, f.OldAddr);
            }
            prepared.Add(new PatchFunction { Entry = f, Name = name, EntryAddress = at });
        }
        payload.Functions = prepared;
        return null;
    }

    private bool TryReadString(ulong address, out string value)
    {
        // Names normally sit in the payload's own memory: read them there in one go.
        if (memory.Contains(address, 1))
        {
            var rest = memory.Bytes.Span[(int)(address - memory.BaseAddress)..];
            int end = rest.IndexOf((byte)0);
            if (end >= 0 && end < 4096)
            {
                value = Encoding.Latin1.GetString(rest[..end]);
                return true;
            }
        }
        var sb = new StringBuilder();
        Span<byte> b = stackalloc byte[1];
        // Xen's symbol names are at most KSYM_NAME_LEN (128); a longer run without NUL is not a name.
        for (int i = 0; i < 4096; i++)
        {
            if (ctx.Memory.Read(unchecked(address + (ulong)i), b) != MemoryReadStatus.Ok)
                break;
            if (b[0] == 0)
            {
                value = sb.ToString();
                return true;
            }
            sb.Append((char)b[0]);
        }
        value = "";
        return false;
    }

    // LIVEPATCH_ASSIGN_MULTI_HOOK and LIVEPATCH_ASSIGN_SINGLE_HOOK: where each hook's pointer lives.
    private LivepatchError? PrepareHooks()
    {
        var load = new List<ulong>();
        var unload = new List<ulong>();
        if ((MultiHook(PayloadSections.HooksLoad, load) ?? MultiHook(PayloadSections.HooksUnload, unload)) is { } multi)
            return multi;
        ulong pre = 0, apply = 0, post = 0, preRevert = 0, revert = 0, postRevert = 0;
        if (ctx.Profile.SupportsActionHooks &&
            (SingleHook(PayloadSections.HooksPreApply, ref pre) ?? SingleHook(PayloadSections.HooksApply, ref apply) ?? SingleHook(PayloadSections.HooksPostApply, ref post)
             ?? SingleHook(PayloadSections.HooksPreRevert, ref preRevert) ?? SingleHook(PayloadSections.HooksRevert, ref revert) ?? SingleHook(PayloadSections.HooksPostRevert, ref postRevert)) is { } single)
        {
            return single;
        }
        payload.Hooks = new PayloadHooks { Load = [.. load], Unload = [.. unload], PreApply = pre, Apply = apply, PostApply = post, PreRevert = preRevert, Revert = revert, PostRevert = postRevert };
        payload.HasVetoingHooks = HookSet(pre) || HookSet(post) || HookSet(preRevert) || HookSet(postRevert);
        return null;
    }

    // is_hook_enabled at load time: the slot holds a function pointer.
    private bool HookSet(ulong slot)
    {
        Span<byte> b = stackalloc byte[8];
        return slot != 0 && ctx.Memory.Read(slot, b) == MemoryReadStatus.Ok && BinaryPrimitives.ReadUInt64LittleEndian(b) != 0;
    }

    private LivepatchError? MultiHook(string name, List<ulong> slots)
    {
        var s = elf.SectionByName(name);
        if (s == null)
            return null;
        if (PayloadRules.HookSizeRefusal(name, s.Header.Size) != null)
            return Refuse.HooksSize(Name, s.Header.Size, name);
        if (ctx.CheckPlaced(Name, s) is { } unplaced)
            return unplaced;
        for (ulong at = 0; at < s.Header.Size; at += 8)
            slots.Add(s.LoadAddress + at);
        return null;
    }

    private LivepatchError? SingleHook(string name, ref ulong slot)
    {
        var s = elf.SectionByName(name);
        if (s == null)
            return null;
        if (PayloadRules.HookSizeRefusal(name, s.Header.Size) != null)
            return Refuse.HookSize(Name, name, s.Header.Size);
        if (ctx.CheckPlaced(Name, s) is { } unplaced)
            return unplaced;
        slot = s.LoadAddress;
        return null;
    }

    // The payload's build-id (which no loaded payload may share), what it depends on, and (Xen 4.15+) the
    // hypervisor it was made for: each a build-id note, read the same way.
    private LivepatchError? PrepareNotes()
    {
        bool passThrough = ctx.Profile.NoteErrnoPassesThrough;
        if (ReadNote(PayloadSections.BuildId, passThrough, out byte[]? buildId) is { } idError)
            return idError;
        if (buildId != null)
        {
            if (ctx.Registry.FindBuildId(buildId) is { } other)
                return Refuse.BuildIdInUse(Name, other, Convert.ToHexStringLower(buildId));
            payload.BuildId = buildId;
        }
        if (ReadNote(PayloadSections.Depends, passThrough, out byte[]? depends) is { } dependsError)
            return dependsError;
        if (depends != null)
            payload.Depends = depends;
        // Xen 4.20+ reads .livepatch.xen_depends before the payload is placed (LoadStep.CheckXenBuildIdFirst).
        if (!ctx.Profile.LoadOrder.Contains(LoadStep.CheckXenBuildId))
            return null;
        if (ReadNote(PayloadSections.XenDepends, passThrough: false, out byte[]? xenDepends) is { } xenError)
            return xenError;
        if (xenDepends != null)
            payload.XenDepends = xenDepends;
        return null;
    }

    // A build-id note, when the section is there (null otherwise).
    private LivepatchError? ReadNote(string section, bool passThrough, out byte[]? id)
    {
        id = null;
        var s = elf.SectionByName(section);
        if (s == null)
            return null;
        if (ctx.CheckPlaced(Name, s) is { } unplaced)
            return unplaced;
        if (BuildIdNote.TryParse(Name, s.Name, Contents(s), passThrough, out byte[] parsed) is { } refused)
            return refused;
        id = parsed;
        return null;
    }

    // The sizes of the tables Xen's arch code walks: .bug_frames.N, .altinstructions, .ex_table.
    private LivepatchError? CheckArchTables()
    {
        for (int i = 0; i < 4; i++)
        {
            var bug = elf.SectionByName($".bug_frames.{i}");
            if (bug != null && bug.Header.Size % 8 != 0)
                return Refuse.BugFramesSize(Name, bug.Header.Size, bug.Name);
        }
        if ((CheckAlternatives() ?? CheckAltCalls()) is { } alt)
            return alt;
        var ex = elf.SectionByName(".ex_table");
        if (ex != null && !ctx.Arch.HasExceptionTable)
            return Refuse.ExTableUnsupported(Name, ctx.Arch.Machine.ToString());
        if (ex != null && ex.Header.Size % 8 != 0)
            return Refuse.ExTableSize(Name, ex.Header.Size);
        return null;
    }

    // .altinstructions: x86 alt_instr is 14 bytes (two rel32, cpuid, lengths); arm64's is 12. Both keep the
    // original's length at byte 10 and the replacement's at byte 11.
    private LivepatchError? CheckAlternatives()
    {
        var alt = elf.SectionByName(".altinstructions");
        if (alt == null)
            return null;
        int entry = ctx.Arch.Machine == ElfMachine.X86_64 ? 14 : 12;
        if (alt.Header.Size % (ulong)entry != 0)
            return Refuse.AltInstructionsSize(Name, alt.Header.Size, entry);
        if (alt.Header.Size == 0)
            return null;
        if (ctx.CheckPlaced(Name, alt) is { } unplaced)
            return unplaced;
        if (memory.TextSize == 0)
            return Refuse.AltInstructionsNoText(Name);
        var repl = elf.SectionByName(".altinstr_replacement");
        if (repl == null || !ctx.IsPlaced(repl))
            return Refuse.AltInstructionsNoReplacement(Name);
        var data = Contents(alt);
        for (int k = 0; k < data.Length; k += entry)
        {
            ulong a = alt.LoadAddress + (ulong)k;
            ulong orig = unchecked(a + (ulong)(long)BinaryPrimitives.ReadInt32LittleEndian(data[k..]));
            ulong replacement = unchecked(a + 4 + (ulong)(long)BinaryPrimitives.ReadInt32LittleEndian(data[(k + 4)..]));
            int origLen = data[k + 10];
            int replLen = data[k + 11];
            if (orig < memory.TextAddress || orig + (ulong)origLen > memory.TextAddress + memory.TextSize)
                return Refuse.AltInstructionOutsideText(Name, k / entry, orig);
            if (replacement < repl.LoadAddress || replacement + (ulong)replLen > repl.LoadAddress + repl.Header.Size)
                return Refuse.AltReplacementOutside(Name, k / entry, replacement);
        }
        return ctx.Arch.Machine == ElfMachine.X86_64 ? CheckAlternativeSites(data) : null;
    }

    // x86 apply_alternatives' checks of each alt_instr (cpuid u16 at 8, the NOT flag in its top bit; orig_len,
    // repl_len, pad_len at 10, 11, 12). We patch no alternative in: the CPU the payload runs on is the sandbox's
    // host, whose features the hypervisor image does not ask about.
    private LivepatchError? CheckAlternativeSites(ReadOnlySpan<byte> data)
    {
        const int entry = 14, maxPatch = 254, notFlag = 0x8000;
        for (int k = 0; k < data.Length; k += entry)
        {
            int index = k / entry;
            int feature = BinaryPrimitives.ReadUInt16LittleEndian(data[(k + 8)..]) & ~notFlag;
            int origLen = data[k + 10], replLen = data[k + 11], padLen = data[k + 12];
            int total = origLen + padLen;
            if (replLen > total)
                return Refuse.AltReplacementTooLong(Name, index, replLen, total);
            if (total > maxPatch)
                return Refuse.AltSiteTooLong(Name, index, total, maxPatch);
            if (ctx.Profile.X86FeatureWords is int words && feature >= words * 32)
                return Refuse.AltFeatureOutOfRange(Name, index, feature, words * 32);
        }
        return null;
    }

    // .alt_call_sites (x86, Xen 4.21+): each entry is an int32 offset, from the entry, of a 6-byte
    // "call *disp32(%rip)" in the payload's text, which livepatch_apply_alt_calls turns into "cs call" to the
    // function the pointer holds (past its ENDBR64), or three UD2 when the pointer is NULL.
    private LivepatchError? CheckAltCalls()
    {
        if (!ctx.Profile.AppliesAltCalls || ctx.Arch.Machine != ElfMachine.X86_64)
            return null;
        var sites = elf.SectionByName(".alt_call_sites");
        if (sites == null)
            return null;
        const int entry = 4, site = 6;
        if (sites.Header.Size % entry != 0)
            return Refuse.AltCallSitesSize(Name, sites.Header.Size);
        if (sites.Header.Size == 0)
            return null;
        if (ctx.CheckPlaced(Name, sites) is { } unplaced)
            return unplaced;
        if (memory.TextSize == 0)
            return Refuse.AltCallSitesNoText(Name);
        var data = Contents(sites);
        var calls = new ulong[data.Length / entry];
        for (int i = 0; i < calls.Length; i++)
        {
            ulong at = unchecked(sites.LoadAddress + (ulong)(i * entry) + (ulong)(long)BinaryPrimitives.ReadInt32LittleEndian(data[(i * entry)..]));
            if (at < memory.TextAddress || at + site > memory.TextAddress + memory.TextSize)
                return Refuse.AltCallSiteOutsideText(Name, i, at);
            calls[i] = at;
        }
        Span<byte> pointer = stackalloc byte[8];
        Span<byte> head = stackalloc byte[4];
        for (int i = 0; i < calls.Length; i++)
        {
            var code = memory.Slice(calls[i], site);
            if (code[0] != 0xff || code[1] != 0x15)
                return Refuse.AltCallSiteNotCall(Name, i, calls[i], Convert.ToHexStringLower(code));
            ulong slot = unchecked(calls[i] + site + (ulong)(long)BinaryPrimitives.ReadInt32LittleEndian(code[2..]));
            if (!ReadHypervisorOrPayload(slot, pointer))
                return Refuse.AltCallPointerUnmapped(Name, i, slot);
            ulong dest = BinaryPrimitives.ReadUInt64LittleEndian(pointer);
            if (dest == 0)
            {
                ReadOnlySpan<byte> ud2 = [0x0f, 0x0b, 0x0f, 0x0b, 0x0f, 0x0b];
                ud2.CopyTo(code);
                continue;
            }
            // Built with CET-IBT, Xen calls past the target's ENDBR64 (is_endbr64: not its poison).
            if (ctx.Profile.HandlesEndbr && ReadHypervisorOrPayload(dest, head) && head.SequenceEqual(X86_64Arch.Endbr64))
                dest += 4;
            code[0] = 0x2e;
            code[1] = 0xe8;
            BinaryPrimitives.WriteInt32LittleEndian(code[2..], unchecked((int)(dest - (calls[i] + site))));
        }
        return null;
    }

    private bool ReadHypervisorOrPayload(ulong address, Span<byte> into)
    {
        if (memory.Contains(address, (ulong)into.Length))
        {
            memory.Slice(address, into.Length).CopyTo(into);
            return true;
        }
        return ctx.Memory.Read(address, into) == MemoryReadStatus.Ok;
    }

    // .modinfo (Xen 4.14+): key=value strings, each ending with NUL.
    private LivepatchError? PrepareMetadata()
    {
        if (!ctx.Profile.SupportsActionHooks)
            return null;
        var modinfo = elf.SectionByName(PayloadSections.ModInfo);
        if (modinfo == null)
            return null;
        if (ctx.CheckPlaced(Name, modinfo) is { } unplaced)
            return unplaced;
        // Xen reads the last byte of an empty .modinfo out of bounds; refuse it.
        if (modinfo.Header.Size == 0)
            return Refuse.ModinfoEmpty(Name);
        var meta = Contents(modinfo);
        if (meta[^1] != 0)
            return Refuse.ModinfoNotTerminated(Name);
        payload.Metadata = meta.ToArray();
        return null;
    }
}
