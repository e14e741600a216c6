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

/// <summary>How a payload is uploaded (<c>livepatch_op</c>'s flags).</summary>
[Flags]
public enum UploadOptions
{
    /// <summary>Every check.</summary>
    None = 0,
    /// <summary>LIVEPATCH_FLAG_FORCE (Xen 4.19+): the profile's <see cref="LivepatchProfile.ForceSkips"/> steps are skipped.</summary>
    Force = 1,
}

/// <summary>Everything an upload runs against: the rules, the architecture, the hypervisor and how the payload came.</summary>
public sealed record LoadContext(LivepatchProfile Profile, LivepatchArch Arch, IHypervisorSymbols Symbols, IHypervisorMemory Memory, IPayloadRegistryView Registry,
    UploadOptions Options = UploadOptions.None)
{
    /// <summary>Whether this upload runs <paramref name="step"/>: FORCE skips the profile's <see cref="LivepatchProfile.ForceSkips"/>.</summary>
    public bool Runs(LoadStep step) => (Options & UploadOptions.Force) == 0 || !Profile.ForceSkips.Contains(step);

    /// <summary>
    /// A symbol by name as the loader resolves it: the hypervisor's (<c>symbols_lookup_by_name</c>), then the
    /// loaded payloads' new ones (<c>livepatch_symbols_lookup_by_name</c>); an address of 0 counts as unknown.
    /// </summary>
    public bool TryResolve(string name, out ulong value) =>
        (Symbols.TryLookup(name, out value) && value != 0) || (Registry.TryLookupNewSymbol(name, out value) && value != 0);

    // livepatch_elf_ignore_section
    internal bool IsPlaced(LoaderSection s) => PayloadRules.IsPlaced(s.Header.Flags, s.Header.Size, Profile);

    // Our guard where Xen would read a section that move_payload never placed.
    internal LivepatchError? CheckPlaced(string payload, LoaderSection s) =>
        IsPlaced(s) ? null : s.IsAlloc ? Refuse.SectionEmptyNotLoaded(payload, s.Name) : Refuse.SectionNotAllocated(payload, s.Name);
}

/// <summary>The steps of an upload after the ELF checks, as a profile orders them.</summary>
public enum LoadStep
{
    /// <summary><c>move_payload</c>: allocate and copy the sections into their regions.</summary>
    MovePayload,
    /// <summary><c>livepatch_elf_resolve_symbols</c>.</summary>
    ResolveSymbols,
    /// <summary><c>livepatch_elf_perform_relocs</c>.</summary>
    PerformRelocations,
    /// <summary><c>check_special_sections</c>.</summary>
    CheckSpecialSections,
    /// <summary><c>check_patching_sections</c> (Xen 4.14+).</summary>
    CheckPatchingSections,
    /// <summary><c>prepare_payload</c>: functions, hooks, build-ids, arch tables, metadata.</summary>
    PreparePayload,
    /// <summary>
    /// <c>xen_build_id_dep</c> (Xen 4.15 to 4.19): <c>.livepatch.xen_depends</c>, parsed by <c>prepare_payload</c>,
    /// against the hypervisor's build-id.
    /// </summary>
    CheckXenBuildId,
    /// <summary>
    /// <c>check_xen_buildid</c> (Xen 4.20+): <c>.livepatch.xen_depends</c> read from the uploaded bytes and checked
    /// against the hypervisor's build-id before anything is allocated.
    /// </summary>
    CheckXenBuildIdFirst,
    /// <summary><c>build_symbol_table</c>.</summary>
    BuildSymbolTable,
}

/// <summary>
/// Xen's <c>load_payload_data</c> (xen/common/livepatch.c): the ELF checks (<see cref="PayloadElf"/>), then the
/// steps in the profile's <see cref="LivepatchProfile.LoadOrder"/>, then <c>secure_payload</c>, each failure
/// with Xen's errno. On failure the payload's memory is freed: nothing is left behind.
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

    private PayloadLoader(LoadContext ctx, PayloadElf elf)
    {
        _ctx = ctx;
        _elf = elf;
        _payload = new Payload(elf.Name);
    }

    private string Name => _elf.Name;

    /// <summary>Loads <paramref name="data"/> as payload <paramref name="name"/>; on success the payload is CHECKED.</summary>
    public static LivepatchError? Load(string name, ReadOnlyMemory<byte> data, LoadContext ctx, out Payload? payload)
    {
        ArgumentNullException.ThrowIfNull(ctx);
        payload = null;
        var e = PayloadElf.Load(name, data, ctx.Arch, out var elf);
        if (e != null)
            return e;
        var loader = new PayloadLoader(ctx, elf);
        foreach (var step in ctx.Profile.LoadOrder)
        {
            if (!ctx.Runs(step))
                continue;
            e = loader.Run(step);
            if (e != null)
            {
                if (loader._memory != null)
                    ctx.Memory.Free(loader._memory);
                return e;
            }
        }
        ctx.Memory.Secure(loader._memory!);
        payload = loader._payload;
        return null;
    }

    private LivepatchError? Run(LoadStep step) => step switch
    {
        LoadStep.MovePayload => MovePayload(),
        LoadStep.ResolveSymbols => ResolveSymbols(),
        LoadStep.PerformRelocations => PerformRelocations(),
        LoadStep.CheckSpecialSections => CheckSpecialSections(),
        LoadStep.CheckPatchingSections => CheckPatchingSections(),
        LoadStep.PreparePayload => new PayloadPreparation(_ctx, _elf, _memory!, _payload).Run(),
        LoadStep.CheckXenBuildId => CheckXenBuildId(),
        LoadStep.CheckXenBuildIdFirst => CheckXenBuildIdFirst(),
        LoadStep.BuildSymbolTable => BuildSymbolTable(),
        _ => throw new ArgumentOutOfRangeException(nameof(step), step, null),
    };

    // C's ROUNDUP(x, a) = ((x + a - 1) & ~(a - 1)), wrapping as size_t does; ROUNDUP(x, 0) is 0.
    private static ulong RoundUp(ulong x, ulong a) => unchecked((x + a - 1) & ~(a - 1));

    // move_payload
    private LivepatchError? MovePayload()
    {
        ulong text = 0, rw = 0, ro = 0;
        var offsets = new ulong[_elf.ShNum];
        var regions = new PayloadRegion[_elf.ShNum];
        int rwCount = 0, rwSection = 0;
        for (int i = 1; i < _elf.ShNum; i++)
        {
            var s = _elf.Sections[i];
            if (!_ctx.IsPlaced(s))
                continue;
            var region = PayloadRules.RegionOf(s.Header.Flags);
            if (region == PayloadRegion.WritableCode)
                return Refuse.SectionWritableCode(Name, s.Name);
            regions[i] = region;
            // An empty RW section (placed by newer Xen so that its symbols resolve) does not count against re-applying.
            if (region == PayloadRegion.Rw && s.Header.Size != 0)
            {
                rwCount++;
                rwSection = i;
            }
            ref ulong size = ref region == PayloadRegion.Text ? ref text : ref region == PayloadRegion.Rw ? ref rw : ref ro;
            // calc_section
            ulong aligned = RoundUp(size, s.Header.AddressAlign);
            offsets[i] = aligned;
            size = unchecked(s.Header.Size + aligned);
        }
        ulong total = unchecked(PayloadAllocation.PageAlign(text) + PayloadAllocation.PageAlign(rw) + ro);
        ulong pages = unchecked(total + PayloadAllocation.PageSize - 1) / PayloadAllocation.PageSize;
        if (pages == 0)
            return Refuse.NothingLoadable(Name);
        _memory = _ctx.Memory.Allocate(Name, text, rw, ro, pages);
        if (_memory == null)
            return Refuse.OutOfMemory(Name, pages);
        _payload.Memory = _memory;
        var sections = new List<PayloadSection>();
        for (int i = 1; i < _elf.ShNum; i++)
        {
            var s = _elf.Sections[i];
            if (!_ctx.IsPlaced(s))
                continue;
            (ulong start, ulong limit, string name) = regions[i] switch
            {
                PayloadRegion.Text => (_memory.TextAddress, text, "text"),
                PayloadRegion.Rw => (_memory.RwAddress, rw, "rw"),
                _ => (_memory.RoAddress, ro, "ro"),
            };
            // Sizes that wrapped around leave sections outside their region: refuse instead of copying out of bounds.
            if (offsets[i] > limit || s.Header.Size > limit - offsets[i] || !_memory.Contains(start + offsets[i], s.Header.Size))
                return Refuse.SectionDoesNotFit(Name, s.Name, name);
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
                    return Refuse.SymbolCommon(Name, sym.Name);
                case (ushort)ElfSpecialSection.Undefined:
                    if (!_ctx.TryResolve(sym.Name, out ulong value))
                        return Refuse.SymbolUnknown(Name, sym.Name);
                    sym.Value = value;
                    break;
                case (ushort)ElfSpecialSection.Abs:
                    break;
                default:
                    if (idx >= (ushort)ElfSpecialSection.LoReserve)
                        return Refuse.SymbolReservedSection(Name, sym.Name, idx);
                    if (idx >= _elf.ShNum)
                        return Refuse.SymbolSectionPastEnd(Name, sym.Name, idx, _elf.ShNum);
                    var s = _elf.Sections[idx];
                    if (!_ctx.IsPlaced(s))
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
        var layout = new ElfLayout(ElfClass.Elf64, ElfEncoding.LittleEndian);
        for (int i = 1; i < _elf.ShNum; i++)
        {
            var r = _elf.Sections[i];
            var h = r.Header;
            if (h.Type is not (ElfSectionType.Rela or ElfSectionType.Rel))
                continue;
            if (h.Info >= _elf.ShNum)
                continue;
            if (h.Info == 0)
                return Refuse.RelocatesSection0(Name, r.Name);
            var target = _elf.Sections[h.Info];
            if (!_ctx.IsPlaced(target))
                continue;
            if (h.Link != (uint)_elf.SymtabIndex)
                return Refuse.RelocationLink(Name, r.Name, h.Link, _elf.SymtabIndex);
            if (h.Size == 0)
                continue;
            bool rela = h.Type == ElfSectionType.Rela;
            ulong min = (ulong)ElfRelocation.SizeOf(ElfClass.Elf64, rela);
            if (h.EntrySize < min || h.Size % h.EntrySize != 0)
                return Refuse.RelocationEntrySize(Name, r.Name, h.EntrySize, h.Size, min);
            if (!rela)
                return _ctx.Arch.PerformRel(Name, r.Name);
            var data = _elf.FileData(r);
            var section = _memory!.Slice(target.LoadAddress, (int)target.Header.Size);
            int count = (int)(h.Size / h.EntrySize);
            for (int k = 0; k < count; k++)
            {
                var rel = ElfRelocation.Read(data[(int)((ulong)k * h.EntrySize)..], layout, rela: true);
                if (rel.SymbolIndex == 0)
                    return Refuse.RelocationNullSymbol(Name, k, r.Name);
                if (rel.SymbolIndex >= (uint)_elf.Symbols.Length)
                    return Refuse.RelocationSymbolPastEnd(Name, k, r.Name, rel.SymbolIndex, _elf.Symbols.Length);
                ref var sym = ref _elf.Symbols[rel.SymbolIndex];
                if (sym.Ignored)
                    return Refuse.RelocationUnloadedSymbol(Name, k, r.Name, sym.Name);
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
        foreach (string name in _ctx.Profile.SpecialSections)
        {
            var s = _elf.SectionByName(name);
            if (s == null)
                return Refuse.SpecialSectionMissing(Name, name);
            if (s.Header.Size == 0)
                return Refuse.SpecialSectionEmpty(Name, name);
        }
        return null;
    }

    // check_patching_sections (Xen 4.14+: funcs became optional, but something must patch)
    private LivepatchError? CheckPatchingSections()
    {
        bool any = false;
        foreach (string name in PayloadRules.PatchingSections)
        {
            var s = _elf.SectionByName(name);
            if (s == null)
                continue;
            if (s.Header.Size == 0)
                return Refuse.PatchingSectionEmpty(Name, name);
            any = true;
        }
        return any ? null : Refuse.NothingToPatch(Name);
    }

    // xen_build_id_dep: the note prepare_payload parsed
    private LivepatchError? CheckXenBuildId()
    {
        var xen = _ctx.Symbols.BuildId;
        if (xen.IsEmpty)
            return Refuse.XenBuildIdMissing(Name);
        if (!xen.Span.SequenceEqual(_payload.XenDepends.Span))
            return Refuse.XenBuildIdMismatch(Name, Convert.ToHexStringLower(_payload.XenDepends.Span), Convert.ToHexStringLower(xen.Span));
        return null;
    }

    // check_xen_buildid: the note as uploaded (a section without SHF_ALLOC is read too), any parse failure EINVAL
    private LivepatchError? CheckXenBuildIdFirst()
    {
        var s = _elf.SectionByName(PayloadSections.XenDepends);
        if (s == null)
            return Refuse.XenDependsMissing(Name);
        var parse = BuildIdNote.TryParse(Name, s.Name, _elf.FileData(s), passThrough: false, out byte[] id);
        if (parse != null)
            return Refuse.XenDependsUnparsable(Name, parse.Rc, parse.Message);
        _payload.XenDepends = id;
        var xen = _ctx.Symbols.BuildId;
        if (xen.IsEmpty)
            return Refuse.XenBuildIdMissing(Name);
        if (!xen.Span.SequenceEqual(id))
            return Refuse.XenBuildIdMismatchFirst(Name, Convert.ToHexStringLower(id), Convert.ToHexStringLower(xen.Span));
        return null;
    }

    // build_symbol_table, with is_payload_symbol's section-index checks
    private LivepatchError? BuildSymbolTable()
    {
        var symbols = new List<PayloadSymbol>();
        var replacements = new HashSet<ulong>(_payload.Functions.Select(f => f.NewAddress));
        for (int i = 1; i < _elf.Symbols.Length; i++)
        {
            ref var sym = ref _elf.Symbols[i];
            ushort idx = sym.Raw.SectionIndex;
            if (idx == 0 || idx >= _elf.ShNum || !PayloadRules.IsExported(sym.Name, _elf.Sections[idx].Header.Flags, _ctx.Arch))
                continue;
            ulong value = sym.Value;
            bool overriding = replacements.Contains(value);
            if (!overriding && _ctx.TryResolve(sym.Name, out _))
                return Refuse.SymbolDuplicate(Name, sym.Name);
            symbols.Add(new PayloadSymbol(sym.Name, value, sym.Raw.Size, !overriding));
        }
        _payload.Symbols = symbols;
        return null;
    }
}
