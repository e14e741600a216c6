using System.Diagnostics.CodeAnalysis;

namespace XenLivepatch.Elf;

/// <summary>
/// Reads an <see cref="ElfFile"/> into the editable <see cref="ElfObject"/>: sections first, then the tables
/// that refer to them, each bounded by what the file can back.
/// </summary>
internal static class ElfObjectReader
{
    /// <summary>See <see cref="ElfObject.TryFromFile"/>.</summary>
    public static bool TryRead(ElfFile file, [NotNullWhen(true)] out ElfObject? obj, [NotNullWhen(false)] out ElfError? error)
    {
        obj = null;
        var h = file.Header;
        var result = new ElfObject(h.Class, h.Encoding, h.Machine)
        {
            Type = h.Type,
            OsAbi = h.OsAbi,
            AbiVersion = h.AbiVersion,
            Flags = h.Flags,
        };
        int n = file.SectionCount;
        var map = new ElfObjectSection?[n];
        // A valid file's tables do not overlap, so decoding them costs at most the file's size. A hostile
        // file can point many tables at the same bytes, or many names at one long string: refuse those
        // before they cost more than the file can back.
        long tableBudget = file.Data.Length;
        long nameBudget = 16L * file.Data.Length + 65536;
        var names = new Dictionary<(int, uint), string>();
        var headers = file.SectionHeaders;

        // Pass 1: one model section per section header.
        for (int i = 1; i < n; i++)
        {
            var sh = headers[i];
            if (sh.Type == ElfSectionType.SymbolTableIndex)
                continue;
            if (!file.TryGetSectionName(i, out string? name, out error))
                return false;
            if (!Spend(ref nameBudget, name.Length, i, out error))
                return false;
            if (!file.TryGetSectionData(i, out var data, out error))
                return false;
            ElfObjectSection s = sh.Type switch
            {
                ElfSectionType.SymbolTable or ElfSectionType.DynamicSymbolTable => new ElfSymbolTableSection(name, null!) { Type = sh.Type },
                ElfSectionType.Rel or ElfSectionType.Rela => new ElfRelocationSection(name, sh.Type == ElfSectionType.Rela, null, null),
                ElfSectionType.Group => new ElfGroupSection(name, null!),
                ElfSectionType.StringTable => new ElfStringTableSection(name) { Generated = false, Data = data },
                _ => new ElfObjectSection(name, sh.Type) { Data = data, NoBitsSize = sh.Type == ElfSectionType.NoBits ? sh.Size : 0 },
            };
            s.Flags = sh.Flags;
            s.Address = sh.Address;
            s.Alignment = sh.AddressAlign;
            s.EntrySize = sh.EntrySize;
            s.RawLink = sh.Link;
            s.RawInfo = sh.Info;
            map[i] = s;
        }

        // Pass 2: symbol tables, so that relocations and groups can refer to their symbols.
        var symbolsOf = new Dictionary<int, ElfObjectSymbol[]>();
        for (int i = 1; i < n; i++)
        {
            if (map[i] is not ElfSymbolTableSection st)
                continue;
            if (!file.TryGetSymbolTable(i, out var table, out error))
                return false;
            if (!Spend(ref tableBudget, (long)headers[i].Size, i, out error))
                return false;
            if (map[headers[i].Link] is not ElfStringTableSection strings)
                return ElfFile.Fail(out error, ElfError.Sec(ElfErrorCode.BadLink, i, $"symbol table sh_link {headers[i].Link} is not a string table"));
            strings.Generated = true;
            st.Strings = strings;
            var symbols = new ElfObjectSymbol[table.Count];
            for (int k = 1; k < table.Count; k++)
            {
                var sym = table[k];
                if (!names.TryGetValue((i, sym.NameOffset), out string? symName))
                {
                    if (!table.TryGetName(sym, out symName, out error))
                        return false;
                    if (!Spend(ref nameBudget, symName.Length, i, out error))
                        return false;
                    names[(i, sym.NameOffset)] = symName;
                }
                if (!table.TryGetSectionIndex(k, out uint shndx, out error))
                    return false;
                var os = new ElfObjectSymbol(symName)
                {
                    Value = sym.Value,
                    Size = sym.Size,
                    Type = sym.Type,
                    Binding = sym.Binding,
                    Other = sym.Other,
                };
                if (sym.HasReservedSectionIndex)
                {
                    os.SpecialSection = (ElfSpecialSection)shndx;
                }
                else if (shndx < (uint)n && map[shndx] != null)
                {
                    os.Section = map[shndx];
                }
                else
                {
                    return ElfFile.Fail(out error, ElfError.Sec(ElfErrorCode.BadSectionIndex, i, $"symbol {k} ({symName}) is defined in section {shndx}, which does not exist"));
                }
                symbols[k] = os;
                st.Symbols.Add(os);
            }
            symbolsOf[i] = symbols;
        }

        // Pass 3: relocations, groups and the remaining links.
        for (int i = 1; i < n; i++)
        {
            var s = map[i];
            if (s == null || s is ElfSymbolTableSection)
                continue;
            var sh = headers[i];
            switch (s)
            {
                case ElfRelocationSection rel:
                {
                    if (!file.TryGetRelocationTable(i, out var table, out error))
                        return false;
                    if (!Spend(ref tableBudget, (long)sh.Size, i, out error))
                        return false;
                    symbolsOf.TryGetValue((int)Math.Min(sh.Link, int.MaxValue), out var symbols);
                    rel.Link = symbols != null ? map[sh.Link] : LinkOrNull(map, sh.Link);
                    rel.Target = sh.Info != 0 && sh.Info < (uint)n ? map[sh.Info] : null;
                    for (int k = 0; k < table.Count; k++)
                    {
                        var r = table[k];
                        ElfObjectSymbol? target = null;
                        if (r.SymbolIndex != 0)
                        {
                            if (symbols == null)
                                return ElfFile.Fail(out error, ElfError.Sec(ElfErrorCode.BadLink, i, $"relocation {k} refers to symbol {r.SymbolIndex}, but sh_link {sh.Link} is not a symbol table"));
                            if (r.SymbolIndex >= (uint)symbols.Length)
                                return ElfFile.Fail(out error, ElfError.Sec(ElfErrorCode.BadSymbolIndex, i, $"relocation {k} refers to symbol {r.SymbolIndex}, past the {symbols.Length}-entry symbol table"));
                            target = symbols[r.SymbolIndex];
                        }
                        rel.Entries.Add(new ElfObjectRelocation(r.Offset, r.Type, target, r.Addend));
                    }
                    break;
                }
                case ElfGroupSection group:
                {
                    if (!symbolsOf.TryGetValue((int)Math.Min(sh.Link, int.MaxValue), out var symbols))
                        return ElfFile.Fail(out error, ElfError.Sec(ElfErrorCode.BadGroup, i, $"group sh_link {sh.Link} is not a symbol table"));
                    group.Link = map[sh.Link];
                    if (sh.Info == 0 || sh.Info >= (uint)symbols.Length)
                        return ElfFile.Fail(out error, ElfError.Sec(ElfErrorCode.BadGroup, i, $"group signature symbol {sh.Info} is out of range"));
                    group.Signature = symbols[sh.Info];
                    if (!file.TryGetSectionData(i, out var data, out error))
                        return false;
                    if (!Spend(ref tableBudget, data.Length, i, out error))
                        return false;
                    var span = data.Span;
                    if (span.Length < 4 || span.Length % 4 != 0)
                        return ElfFile.Fail(out error, ElfError.Sec(ElfErrorCode.BadGroup, i, $"group of {span.Length} bytes is not a flag word followed by 4-byte section indices"));
                    group.GroupFlags = file.Layout.U32(span, 0);
                    for (int k = 4; k < span.Length; k += 4)
                    {
                        uint member = file.Layout.U32(span, k);
                        if (member == 0 || member >= (uint)n || map[member] == null)
                            return ElfFile.Fail(out error, ElfError.Sec(ElfErrorCode.BadGroup, i, $"group member {member} is not a section"));
                        group.Members.Add(map[member]!);
                    }
                    group.Data = ReadOnlyMemory<byte>.Empty;
                    break;
                }
                default:
                    s.Link = LinkOrNull(map, sh.Link);
                    if ((sh.Flags & ElfSectionFlags.InfoLink) != 0 && sh.Info != 0 && sh.Info < (uint)n)
                        s.InfoSection = map[sh.Info];
                    break;
            }
        }

        int nameTable = file.SectionNameTableIndex;
        if (nameTable != 0 && map[nameTable] is ElfStringTableSection shstrtab)
        {
            shstrtab.Generated = true;
            result.SectionNames = shstrtab;
        }
        foreach (var s in map)
        {
            if (s == null)
                continue;
            // The writer encodes these tables from the model; keeping the old bytes would only mislead.
            if (s is ElfSymbolTableSection or ElfRelocationSection or ElfGroupSection or ElfStringTableSection { Generated: true })
                s.Data = ReadOnlyMemory<byte>.Empty;
            result.Sections.Add(s);
        }
        obj = result;
        error = null;
        return true;
    }

    private static bool Spend(ref long budget, long cost, int section, [NotNullWhen(false)] out ElfError? error)
    {
        budget -= cost;
        if (budget >= 0)
        {
            error = null;
            return true;
        }
        error = ElfError.Sec(ElfErrorCode.SectionOutOfBounds, section,
            "tables or names overlap: decoding them would cost more than the file's size backs (a valid object's tables do not overlap)");
        return false;
    }

    private static ElfObjectSection? LinkOrNull(ElfObjectSection?[] map, uint link) =>
        link != 0 && link < (uint)map.Length ? map[link] : null;
}
