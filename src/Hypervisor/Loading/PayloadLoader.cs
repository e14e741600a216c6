using System.Buffers.Binary;
using System.Text;
using XenLivepatch.Abi;
using XenLivepatch.Elf;

namespace XenLivepatch.Hypervisor;

/// <summary>What the loader needs to know about the payloads already loaded.</summary>
public interface IPayloadRegistryView
{
    /// <summary><c>livepatch_symbols_lookup_by_name</c>: a new symbol of any loaded payload, applied or not.</summary>
    bool TryLookupNewSymbol(string name, out ulong value);

    /// <summary>The name of a loaded payload with this build-id, or null.</summary>
    string? FindBuildId(ReadOnlySpan<byte> buildId);
}

/// <summary>Everything an upload runs against: the rules, the architecture and the hypervisor.</summary>
public sealed record LoadContext(LivepatchProfile Profile, LivepatchArch Arch, IHypervisorSymbols Symbols, IHypervisorMemory Memory, IPayloadRegistryView Registry);

/// <summary>
/// Xen's <c>load_payload_data</c> (xen/common/livepatch.c, as in Xen 4.17): the ELF checks, then
/// <c>move_payload</c>, symbol resolution, relocation, the special and patching section checks,
/// <c>prepare_payload</c>, the hypervisor build-id check, the exported symbol table and
/// <c>secure_payload</c>, in that order, each failure with Xen's errno. On failure the payload's memory is
/// freed: nothing is left behind.
/// </summary>
/// <remarks>
/// Where Xen would crash on a hostile payload (reference §7.5), the loader refuses it with -EINVAL instead:
/// special sections without SHF_ALLOC, a zero-size <c>.modinfo</c>, a relocation section for section 0, an
/// <c>old_addr</c> that is not mapped, a function with neither name nor address, pointers that lead outside
/// mapped memory, section layouts whose sizes overflow.
/// </remarks>
public sealed class PayloadLoader
{
    private readonly LoadContext _ctx;
    private readonly PayloadElf _elf;
    private readonly Payload _payload;
    private PayloadAllocation? _memory;
    private readonly List<PatchFunction> _funcs = [];
    private readonly byte[] _head = new byte[4];

    private PayloadLoader(LoadContext ctx, PayloadElf elf)
    {
        _ctx = ctx;
        _elf = elf;
        _payload = new Payload(elf.Name);
    }

    private string Name => _elf.Name;

    // livepatch_elf_ignore_section: sections move_payload does not place.
    private bool Ignored(LoaderSection s) => !s.IsAlloc || (s.Header.Size == 0 && !_ctx.Profile.PlacesEmptySections);

    private LivepatchError Fail(XenErrno errno, string message) => LivepatchError.For(Name, errno, message);

    /// <summary>Loads <paramref name="data"/> as payload <paramref name="name"/>; on success the payload is CHECKED.</summary>
    public static LivepatchError? Load(string name, ReadOnlyMemory<byte> data, LoadContext ctx, out Payload? payload)
    {
        payload = null;
        var e = PayloadElf.Load(name, data, ctx.Arch, out var elf);
        if (e != null)
            return e;
        var loader = new PayloadLoader(ctx, elf);
        e = loader.MovePayload() ?? loader.ResolveSymbols() ?? loader.PerformRelocations() ?? loader.CheckSpecialSections()
            ?? loader.CheckPatchingSections() ?? loader.PreparePayload() ?? loader.CheckXenBuildId() ?? loader.BuildSymbolTable();
        if (e != null)
        {
            if (loader._memory != null)
                ctx.Memory.Free(loader._memory);
            return e;
        }
        ctx.Memory.Secure(loader._memory!);
        payload = loader._payload;
        return null;
    }

    // C's ROUNDUP(x, a) = ((x + a - 1) & ~(a - 1)), wrapping as size_t does; ROUNDUP(x, 0) is 0.
    private static ulong RoundUp(ulong x, ulong a) => unchecked((x + a - 1) & ~(a - 1));

    // move_payload
    private LivepatchError? MovePayload()
    {
        ulong text = 0, rw = 0, ro = 0;
        var offsets = new ulong[_elf.ShNum];
        var region = new char[_elf.ShNum];
        int rwCount = 0, rwSection = 0;
        for (int i = 1; i < _elf.ShNum; i++)
        {
            var s = _elf.Sections[i];
            if (Ignored(s))
                continue;
            bool exec = (s.Header.Flags & ElfSectionFlags.ExecInstr) != 0;
            bool write = (s.Header.Flags & ElfSectionFlags.Write) != 0;
            ref ulong size = ref text;
            if (exec && !write) { region[i] = 'x'; size = ref text; }
            else if (!exec && write) { region[i] = 'w'; size = ref rw; rwCount++; rwSection = i; }
            else if (!exec && !write) { region[i] = 'r'; size = ref ro; }
            else
                return Fail(XenErrno.EOPNOTSUPP, $"section {s.Name} is both executable and writable, which is not supported");
            // calc_section
            ulong aligned = RoundUp(size, s.Header.AddressAlign);
            offsets[i] = aligned;
            size = unchecked(s.Header.Size + aligned);
        }
        ulong total = unchecked(PayloadAllocation.PageAlign(text) + PayloadAllocation.PageAlign(rw) + ro);
        ulong pages = unchecked(total + PayloadAllocation.PageSize - 1) / PayloadAllocation.PageSize;
        if (pages == 0)
            return Fail(XenErrno.ENOMEM, "could not allocate memory for the payload (it has no loadable section)");
        _memory = _ctx.Memory.Allocate(Name, text, rw, ro, pages);
        if (_memory == null)
            return Fail(XenErrno.ENOMEM, $"could not allocate memory for the payload ({pages} pages)");
        _payload.Memory = _memory;
        var sections = new List<PayloadSection>();
        for (int i = 1; i < _elf.ShNum; i++)
        {
            var s = _elf.Sections[i];
            if (Ignored(s))
                continue;
            (ulong start, ulong limit, string name) = region[i] switch
            {
                'x' => (_memory.TextAddress, text, "text"),
                'w' => (_memory.RwAddress, rw, "rw"),
                _ => (_memory.RoAddress, ro, "ro"),
            };
            // Sizes that wrapped around leave sections outside their region: refuse instead of copying out of bounds.
            if (offsets[i] > limit || s.Header.Size > limit - offsets[i] || !_memory.Contains(start + offsets[i], s.Header.Size))
                return Fail(XenErrno.EINVAL, $"section {s.Name} does not fit in the payload's {name} region (its size or alignment overflows)");
            s.LoadAddress = start + offsets[i];
            var dest = _memory.Slice(s.LoadAddress, (int)s.Header.Size);
            if (s.Header.Type == ElfSectionType.NoBits)
                dest.Clear();
            else
                _elf.FileData(s).CopyTo(dest);
            sections.Add(new PayloadSection(s.Name, s.LoadAddress, s.Header.Size, name));
        }
        _payload.Sections = sections;
        _payload.SafeToReapply = rwCount == 0 || (rwCount == 1 && _elf.Sections[rwSection].Name == PayloadSections.Funcs);
        return null;
    }

    // livepatch_elf_resolve_symbols
    private LivepatchError? ResolveSymbols()
    {
        var symbols = _elf.Symbols;
        for (int i = 1; i < symbols.Length; i++)
        {
            ref var sym = ref symbols[i];
            ushort idx = sym.Raw.SectionIndex;
            switch (idx)
            {
                case (ushort)ElfSpecialSection.Common:
                    return Fail(XenErrno.EINVAL, $"unexpected common symbol: {sym.Name} (build with -fno-common)");
                case (ushort)ElfSpecialSection.Undefined:
                    if (_ctx.Symbols.TryLookup(sym.Name, out ulong value) && value != 0)
                        sym.Value = value;
                    else if (_ctx.Registry.TryLookupNewSymbol(sym.Name, out value) && value != 0)
                        sym.Value = value;
                    else
                        return Fail(XenErrno.ENOENT, $"unknown symbol: {sym.Name}");
                    break;
                case (ushort)ElfSpecialSection.Abs:
                    break;
                default:
                    if (idx >= (ushort)ElfSpecialSection.LoReserve)
                        return Fail(XenErrno.EOPNOTSUPP, $"symbol {sym.Name} has reserved section index 0x{idx:x}");
                    if (idx >= _elf.ShNum)
                        return Fail(XenErrno.EINVAL, $"symbol {sym.Name} is in section {idx}, past the end of the {_elf.ShNum} sections");
                    var s = _elf.Sections[idx];
                    if (Ignored(s))
                    {
                        sym.Ignored = true; // move_payload did not load its section; relocations against it fail
                        break;
                    }
                    sym.Value = unchecked(sym.Value + s.LoadAddress);
                    break;
            }
        }
        return null;
    }

    // livepatch_elf_perform_relocs and arch_livepatch_perform_rela
    private LivepatchError? PerformRelocations()
    {
        for (int i = 1; i < _elf.ShNum; i++)
        {
            var r = _elf.Sections[i];
            var h = r.Header;
            if (h.Type is not (ElfSectionType.Rela or ElfSectionType.Rel))
                continue;
            if (h.Info >= _elf.ShNum)
                continue;
            // Xen would read the uninitialised section 0 here and fault.
            if (h.Info == 0)
                return Fail(XenErrno.EINVAL, $"relocation section {r.Name} relocates section 0");
            var target = _elf.Sections[h.Info];
            if (Ignored(target))
                continue;
            if (h.Link != (uint)_elf.SymtabIndex)
                return Fail(XenErrno.EINVAL, $"relocation section {r.Name} links to section {h.Link}, not to the symbol table ({_elf.SymtabIndex})");
            if (h.Size == 0)
                continue;
            bool rela = h.Type == ElfSectionType.Rela;
            ulong min = (ulong)ElfRelocation.SizeOf(ElfClass.Elf64, rela);
            if (h.EntrySize < min || h.Size % h.EntrySize != 0)
                return Fail(XenErrno.EINVAL, $"relocation section {r.Name} has entry size {h.EntrySize} and size {h.Size}; entries are {min} bytes");
            if (!rela)
                return _ctx.Arch.PerformRel(Name, r.Name);
            var data = _elf.FileData(r);
            var section = _memory!.Slice(target.LoadAddress, (int)target.Header.Size);
            var layout = new ElfLayout(ElfClass.Elf64, ElfEncoding.LittleEndian);
            int count = (int)(h.Size / h.EntrySize);
            for (int k = 0; k < count; k++)
            {
                var rel = ElfRelocation.Read(data[(int)((ulong)k * h.EntrySize)..], layout, rela: true);
                if (rel.SymbolIndex == 0)
                    return Fail(XenErrno.EOPNOTSUPP, $"relocation {k} of {r.Name} refers to the null symbol (STN_UNDEF)");
                if (rel.SymbolIndex >= (uint)_elf.Symbols.Length)
                    return Fail(XenErrno.EINVAL, $"relocation {k} of {r.Name} refers to symbol {rel.SymbolIndex}, past the {_elf.Symbols.Length} symbols");
                ref var sym = ref _elf.Symbols[rel.SymbolIndex];
                if (sym.Ignored)
                    return Fail(XenErrno.EINVAL, $"relocation {k} of {r.Name} refers to {sym.Name}, which is in a section that is not loaded");
                var site = new RelocationSite
                {
                    Section = section,
                    Offset = rel.Offset,
                    Place = unchecked(target.LoadAddress + rel.Offset),
                    Value = unchecked(sym.Value + (ulong)rel.Addend),
                    Type = rel.Type,
                    Payload = Name,
                    RelocationSection = r.Name,
                    TargetSection = target.Name,
                    Index = k,
                };
                if (_ctx.Arch.Relocate(ref site) is { } e)
                    return e;
            }
        }
        return null;
    }

    // check_special_sections
    private LivepatchError? CheckSpecialSections()
    {
        string[] names = _ctx.Profile.RequiresFuncs
            ? [PayloadSections.Funcs, PayloadSections.Depends, PayloadSections.BuildId]
            : _ctx.Profile.RequiresXenDepends
                ? [PayloadSections.Depends, PayloadSections.XenDepends, PayloadSections.BuildId]
                : [PayloadSections.Depends, PayloadSections.BuildId];
        foreach (string name in names)
        {
            var s = _elf.SectionByName(name);
            if (s == null)
                return Fail(XenErrno.EINVAL, $"{name} is missing");
            if (s.Header.Size == 0)
                return Fail(XenErrno.EINVAL, $"{name} is empty");
        }
        return null;
    }

    private static readonly string[] s_patchingSections =
    [
        PayloadSections.Funcs, PayloadSections.HooksLoad, PayloadSections.HooksUnload, PayloadSections.HooksPreApply, PayloadSections.HooksApply,
        PayloadSections.HooksPostApply, PayloadSections.HooksPreRevert, PayloadSections.HooksRevert, PayloadSections.HooksPostRevert,
    ];

    // check_patching_sections (Xen 4.14+: funcs became optional, but something must patch)
    private LivepatchError? CheckPatchingSections()
    {
        if (_ctx.Profile.RequiresFuncs)
            return null;
        bool any = false;
        foreach (string name in s_patchingSections)
        {
            var s = _elf.SectionByName(name);
            if (s == null)
                continue;
            if (s.Header.Size == 0)
                return Fail(XenErrno.EINVAL, $"{name} is empty");
            any = true;
        }
        return any ? null : Fail(XenErrno.EINVAL, "nothing to patch: the payload has neither .livepatch.funcs nor hooks");
    }

    // Our guard where Xen would dereference a section that move_payload never loaded.
    private LivepatchError? Loaded(LoaderSection s) =>
        !Ignored(s) ? null : Fail(XenErrno.EINVAL, s.IsAlloc
            ? $"section {s.Name} is empty, so it is not loaded and cannot be read"
            : $"section {s.Name} is not loaded (it lacks SHF_ALLOC), so it cannot be read");

    private ReadOnlySpan<byte> Contents(LoaderSection s) => _memory!.Slice(s.LoadAddress, (int)s.Header.Size);

    // prepare_payload
    private LivepatchError? PreparePayload()
    {
        var profile = _ctx.Profile;
        var funcs = _elf.SectionByName(PayloadSections.Funcs);
        if (funcs != null && (Loaded(funcs) ?? PrepareFuncs(funcs)) is { } fe)
            return fe;
        _payload.Functions = _funcs;

        var load = new List<ulong>();
        var unload = new List<ulong>();
        if ((MultiHook(PayloadSections.HooksLoad, load) ?? MultiHook(PayloadSections.HooksUnload, unload)) is { } he)
            return he;
        ulong pre = 0, apply = 0, post = 0, preRevert = 0, revert = 0, postRevert = 0;
        if (profile.SupportsActionHooks)
        {
            if ((SingleHook(PayloadSections.HooksPreApply, ref pre) ?? SingleHook(PayloadSections.HooksApply, ref apply) ?? SingleHook(PayloadSections.HooksPostApply, ref post)
                ?? SingleHook(PayloadSections.HooksPreRevert, ref preRevert) ?? SingleHook(PayloadSections.HooksRevert, ref revert) ?? SingleHook(PayloadSections.HooksPostRevert, ref postRevert)) is { } se)
                return se;
        }
        _payload.Hooks = new PayloadHooks { Load = load, Unload = unload, PreApply = pre, Apply = apply, PostApply = post, PreRevert = preRevert, Revert = revert, PostRevert = postRevert };
        _payload.HasVetoingHooks = HookEnabled(pre) || HookEnabled(post) || HookEnabled(preRevert) || HookEnabled(postRevert);

        var id = _elf.SectionByName(PayloadSections.BuildId);
        if (id != null)
        {
            if (Loaded(id) is { } le)
                return le;
            if (Note(id, out byte[] buildId) is { } ne)
                return ne;
            if (_ctx.Registry.FindBuildId(buildId) is { } other)
                return Fail(XenErrno.EEXIST, $"already loaded as {other} (same build-id {Convert.ToHexStringLower(buildId)})");
            _payload.BuildId = buildId;
        }
        var depends = _elf.SectionByName(PayloadSections.Depends);
        if (depends != null)
        {
            if (Loaded(depends) is { } le)
                return le;
            if (Note(depends, out byte[] dep) is { } de)
                return de;
            _payload.Depends = dep;
        }
        var xenDepends = profile.RequiresXenDepends ? _elf.SectionByName(PayloadSections.XenDepends) : null;
        if (xenDepends != null)
        {
            if (Loaded(xenDepends) is { } le)
                return le;
            if (Note(xenDepends, out byte[] xdep) is { } xe)
                return xe;
            _payload.XenDepends = xdep;
        }

        for (int i = 0; i < 4; i++)
        {
            var bug = _elf.SectionByName($".bug_frames.{i}");
            if (bug != null && bug.Header.Size % 8 != 0)
                return Fail(XenErrno.EINVAL, $"wrong size {bug.Header.Size} of {bug.Name} (must be a multiple of 8)");
        }
        if (CheckAlternatives() is { } ae)
            return ae;
        var ex = _elf.SectionByName(".ex_table");
        if (ex != null && !_ctx.Arch.HasExceptionTable)
            return Fail(XenErrno.EOPNOTSUPP, $".ex_table: {_ctx.Arch.Machine} hypervisors have no exception table for a payload to extend");
        if (ex != null && ex.Header.Size % 8 != 0)
            return Fail(XenErrno.EINVAL, $"wrong size {ex.Header.Size} of .ex_table (must be a multiple of 8)");

        if (profile.SupportsActionHooks)
        {
            var modinfo = _elf.SectionByName(PayloadSections.ModInfo);
            if (modinfo != null)
            {
                if (Loaded(modinfo) is { } me)
                    return me;
                // Xen reads the last byte of an empty .modinfo out of bounds; refuse it.
                if (modinfo.Header.Size == 0)
                    return Fail(XenErrno.EINVAL, "incorrect metadata format detected (.modinfo is empty)");
                var meta = Contents(modinfo);
                if (meta[^1] != 0)
                    return Fail(XenErrno.EINVAL, "incorrect metadata format detected (.modinfo does not end with NUL)");
                _payload.Metadata = meta.ToArray();
            }
        }
        return null;
    }

    private bool HookEnabled(ulong slot) => slot != 0 && ReadU64(slot, out ulong fn) && fn != 0;

    private bool ReadU64(ulong address, out ulong value)
    {
        Span<byte> b = stackalloc byte[8];
        bool ok = _ctx.Memory.Read(address, b) == MemoryReadStatus.Ok;
        value = ok ? BinaryPrimitives.ReadUInt64LittleEndian(b) : 0;
        return ok;
    }

    private LivepatchError? MultiHook(string name, List<ulong> slots)
    {
        var s = _elf.SectionByName(name);
        if (s == null)
            return null;
        if (s.Header.Size % 8 != 0)
            return Fail(XenErrno.EINVAL, $"wrong size {s.Header.Size} of {name} (must be a multiple of 8)");
        if (Loaded(s) is { } e)
            return e;
        for (ulong at = 0; at < s.Header.Size; at += 8)
            slots.Add(s.LoadAddress + at);
        return null;
    }

    private LivepatchError? SingleHook(string name, ref ulong slot)
    {
        var s = _elf.SectionByName(name);
        if (s == null)
            return null;
        if (s.Header.Size != 8)
            return Fail(XenErrno.EINVAL, $"{name} is {s.Header.Size} bytes; a hook section holds exactly one 8-byte pointer");
        if (Loaded(s) is { } e)
            return e;
        slot = s.LoadAddress;
        return null;
    }

    private LivepatchError? Note(LoaderSection s, out byte[] id)
    {
        var errno = BuildIdNote.TryParse(Contents(s), out id, out string why);
        // prepare_payload turns every parse failure into -EINVAL.
        return errno == null ? null : Fail(XenErrno.EINVAL, $"{s.Name}: {why}");
    }

    private LivepatchError? PrepareFuncs(LoaderSection funcs)
    {
        var profile = _ctx.Profile;
        int size = profile.FuncSize;
        if (funcs.Header.Size % (ulong)size != 0)
            return Fail(XenErrno.EINVAL, $"wrong size {funcs.Header.Size} of {PayloadSections.Funcs} (must be a multiple of {size})");
        int n = (int)(funcs.Header.Size / (ulong)size);
        for (int i = 0; i < n; i++)
        {
            ulong at = funcs.LoadAddress + (ulong)(i * size);
            var bytes = _memory!.Slice(at, size);
            var f = LivepatchFunc.Read(bytes, profile.PayloadVersion);
            if (f.Version != profile.PayloadVersion)
                return Fail(XenErrno.EOPNOTSUPP, $"wrong version ({f.Version}) of function {i}; expected {profile.PayloadVersion}");
            if (f.OldSize == 0)
                return Fail(XenErrno.EINVAL, $"function {i}: address or size fields are zero (old_size is 0)");
            string name = "";
            if (f.Name != 0 && !TryReadString(f.Name, out name))
                return Fail(XenErrno.EINVAL, $"function {i}: its name pointer 0x{f.Name:x} does not lead to a readable string");
            // resolve_old_address
            if (f.OldAddr == 0)
            {
                if (f.Name == 0)
                    return Fail(XenErrno.EINVAL, $"function {i} has neither an old_addr nor a name");
                if ((!_ctx.Symbols.TryLookup(name, out ulong old) || old == 0) && (!_ctx.Registry.TryLookupNewSymbol(name, out old) || old == 0))
                    return Fail(XenErrno.ENOENT, $"could not resolve old address of {name}");
                f = f with { OldAddr = old };
                BinaryPrimitives.WriteUInt64LittleEndian(bytes[LivepatchFunc.FieldLocations.OldAddr..], old);
            }
            Span<byte> head = _head;
            var status = _ctx.Memory.Read(f.OldAddr, head[..1]);
            if (status == MemoryReadStatus.Unmapped)
                return Fail(XenErrno.EINVAL, $"function {i} ({(name.Length > 0 ? name : "unnamed")}): old_addr 0x{f.OldAddr:x} is not mapped in the hypervisor");
            bool endbr = profile.HandlesEndbr && f.NewAddr != 0 && _ctx.Memory.Read(f.OldAddr, head) == MemoryReadStatus.Ok && _ctx.Arch.StartsWithEndbr(head);
            if (_ctx.Arch.VerifyFunc(Name, f, endbr) is { } ve)
                return ve;
            // livepatch_verify_distance (NOPs have no distance)
            if (f.NewAddr != 0)
            {
                long offset = unchecked((long)(f.OldAddr - f.NewAddr));
                if (offset < -_ctx.Arch.Range || offset >= _ctx.Arch.Range)
                    return Fail(XenErrno.EOVERFLOW, $"function {i} ({name}): the replacement at 0x{f.NewAddr:x} is out of branch range of 0x{f.OldAddr:x}");
            }
            _funcs.Add(new PatchFunction { Entry = f, Name = name, EntryAddress = at });
        }
        return null;
    }

    private bool TryReadString(ulong address, out string value)
    {
        // Names normally sit in the payload's own memory: read them there in one go.
        var mem = _memory!;
        if (mem.Contains(address, 1))
        {
            var rest = mem.Bytes.Span[(int)(address - mem.BaseAddress)..];
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
            if (_ctx.Memory.Read(unchecked(address + (ulong)i), b) != MemoryReadStatus.Ok)
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

    // .altinstructions: x86 alt_instr is 14 bytes (two rel32, cpuid, lengths); arm64's is 12.
    private LivepatchError? CheckAlternatives()
    {
        var alt = _elf.SectionByName(".altinstructions");
        if (alt == null)
            return null;
        int entry = _ctx.Arch.Machine == ElfMachine.X86_64 ? 14 : 12;
        if (alt.Header.Size % (ulong)entry != 0)
            return Fail(XenErrno.EINVAL, $"wrong size {alt.Header.Size} of .altinstructions (must be a multiple of {entry})");
        if (alt.Header.Size == 0)
            return null;
        if (Loaded(alt) is { } e)
            return e;
        var mem = _memory!;
        if (mem.TextSize == 0)
            return Fail(XenErrno.EINVAL, ".altinstructions: the payload has no text to patch");
        var repl = _elf.SectionByName(".altinstr_replacement");
        if (repl == null || Ignored(repl))
            return Fail(XenErrno.EINVAL, ".altinstructions without .altinstr_replacement");
        var data = Contents(alt);
        for (int k = 0; k < data.Length; k += entry)
        {
            ulong a = alt.LoadAddress + (ulong)k;
            ulong orig = unchecked(a + (ulong)(long)BinaryPrimitives.ReadInt32LittleEndian(data[k..]));
            ulong replacement = unchecked(a + 4 + (ulong)(long)BinaryPrimitives.ReadInt32LittleEndian(data[(k + 4)..]));
            int origLen = entry == 14 ? data[k + 10] : data[k + 10];
            int replLen = entry == 14 ? data[k + 11] : data[k + 11];
            if (orig < mem.TextAddress || orig + (ulong)origLen > mem.TextAddress + mem.TextSize)
                return Fail(XenErrno.EINVAL, $"alternative {k / entry} patches 0x{orig:x}, outside the payload's text");
            if (replacement < repl.LoadAddress || replacement + (ulong)replLen > repl.LoadAddress + repl.Header.Size)
                return Fail(XenErrno.EINVAL, $"alternative {k / entry}'s replacement 0x{replacement:x} is outside .altinstr_replacement");
        }
        return null;
    }

    // xen_build_id_dep (Xen 4.15–4.19: after prepare_payload)
    private LivepatchError? CheckXenBuildId()
    {
        if (!_ctx.Profile.RequiresXenDepends)
            return null;
        var xen = _ctx.Symbols.BuildId;
        if (xen.IsEmpty)
            return Fail(XenErrno.ENODATA, "the hypervisor has no build-id");
        if (!xen.Span.SequenceEqual(_payload.XenDepends.Span))
            return Fail(XenErrno.EINVAL, $"check against hypervisor build-id failed: the payload was made for {Convert.ToHexStringLower(_payload.XenDepends.Span)}, the hypervisor is {Convert.ToHexStringLower(xen.Span)}");
        return null;
    }

    // is_payload_symbol
    private bool IsPayloadSymbol(in LoaderSymbol sym)
    {
        ushort idx = sym.Raw.SectionIndex;
        if (idx == 0 || idx >= _elf.ShNum)
            return false;
        var s = _elf.Sections[idx];
        if (!s.IsAlloc || sym.Name.Length == 0)
            return false;
        if ((s.Header.Flags & ElfSectionFlags.Merge) != 0 && sym.Name.StartsWith(".L", StringComparison.Ordinal))
            return false;
        return _ctx.Arch.SymbolOk(sym.Name);
    }

    // build_symbol_table
    private LivepatchError? BuildSymbolTable()
    {
        var symbols = new List<PayloadSymbol>();
        var replacements = new HashSet<ulong>(_funcs.Select(f => f.NewAddress));
        for (int i = 1; i < _elf.Symbols.Length; i++)
        {
            ref var sym = ref _elf.Symbols[i];
            if (!IsPayloadSymbol(sym))
                continue;
            ulong value = sym.Value;
            bool overriding = replacements.Contains(value);
            if (!overriding && ((_ctx.Symbols.TryLookup(sym.Name, out ulong v) && v != 0) || (_ctx.Registry.TryLookupNewSymbol(sym.Name, out v) && v != 0)))
                return Fail(XenErrno.EEXIST, $"duplicate new symbol: {sym.Name}");
            symbols.Add(new PayloadSymbol(sym.Name, value, sym.Raw.Size, !overriding));
        }
        _payload.Symbols = symbols;
        return null;
    }
}
