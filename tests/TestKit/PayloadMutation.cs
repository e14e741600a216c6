using System.Buffers.Binary;
using System.Globalization;
using System.Text;
using XenLivepatch.Abi;
using XenLivepatch.Elf;
using L64 = XenLivepatch.Elf.ElfSectionHeader.Layout64;

namespace XenLivepatch.TestKit;

/// <summary>
/// The edits of tests/Data/cases/upload-checks.txt (its header describes them): byte edits of an ELF64
/// payload's header, section headers, symbols, relocations, <c>livepatch_func</c> entries and section
/// contents, and edits through the ELF object model. A malformed edit throws <see cref="FormatException"/>.
/// </summary>
public static class PayloadMutation
{
    public static byte[] Apply(byte[] payload, string mutation)
    {
        byte[] bytes = (byte[])payload.Clone();
        foreach (string edit in mutation.Split(';', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries))
            bytes = ApplyOne(bytes, edit);
        return bytes;
    }

    private static byte[] ApplyOne(byte[] bytes, string edit)
    {
        string[] w = edit.Split(' ', StringSplitOptions.RemoveEmptyEntries);
        switch (w[0])
        {
            case "bytes":
                return new byte[Int(w, 1)];
            case "truncate":
                return bytes[..Int(w, 1)];
            case "remove":
                return Model(bytes, o => o.RemoveSection(Section(o, w[1])));
            case "empty":
                return Model(bytes, o => Section(o, w[1]).Data = Array.Empty<byte>());
            case "resize":
                return Model(bytes, o => Section(o, w[1]).Data = new byte[Int(w, 2)]);
            case "add" when w.Length is 5 or 7:
                return Model(bytes, o => o.AddSection(w[1], Type(w[2]), Flags(w[3]), new byte[Int(w, 4)], w.Length == 7 && w[5] == "align" ? (ulong)Int(w, 6) : 1));
            case "drop-relocations" when w.Length == 4 && w[2] == "at":
                return Model(bytes, o => ((ElfRelocationSection)Section(o, w[1])).Entries.RemoveAll(r => r.Offset == (ulong)Int(w, 3)));
            case "rename-symbol" when w.Length == 3:
                RenameSymbol(bytes, w[1], w[2] == "\"\"" ? "" : w[2]);
                return bytes;
        }
        int eq = edit.IndexOf('=', StringComparison.Ordinal);
        if (eq < 0)
            throw new FormatException($"unknown edit '{edit}'");
        var (at, width) = Locate(bytes, edit[..eq].Trim());
        ulong value = Value(bytes, edit[(eq + 1)..].Trim());
        var span = bytes.AsSpan(at);
        switch (width)
        {
            case 1: span[0] = (byte)value; break;
            case 2: BinaryPrimitives.WriteUInt16LittleEndian(span, (ushort)value); break;
            case 4: BinaryPrimitives.WriteUInt32LittleEndian(span, (uint)value); break;
            default: BinaryPrimitives.WriteUInt64LittleEndian(span, value); break;
        }
        return bytes;
    }

    private static int Int(string[] words, int i) =>
        i < words.Length ? checked((int)Number(words[i])) : throw new FormatException($"'{string.Join(' ', words)}': a number is missing");

    private static byte[] Model(byte[] bytes, Action<ElfObject> edit)
    {
        var obj = ElfObject.FromFile(ElfFile.Read(bytes));
        edit(obj);
        return obj.Write();
    }

    private static ElfObjectSection Section(ElfObject obj, string name) =>
        obj.FindSection(name) ?? throw new FormatException($"the payload has no section {name}");

    private static ElfSectionType Type(string name) =>
        ElfSpecNames.TryParseSpecName("SHT_" + name, out ElfSectionType t) ? t : throw new FormatException($"section type '{name}'");

    private static ElfSectionFlags Flags(string letters)
    {
        var flags = ElfSectionFlags.None;
        foreach (char c in letters)
        {
            flags |= c switch
            {
                'A' => ElfSectionFlags.Alloc,
                'W' => ElfSectionFlags.Write,
                'X' => ElfSectionFlags.ExecInstr,
                _ => throw new FormatException($"section flag '{c}': use A, W, X"),
            };
        }
        return flags;
    }

    // Where an edit writes: a file offset and a width.
    private static (int At, int Width) Locate(byte[] bytes, string location)
    {
        var f = ElfFile.Read(bytes);
        switch (location)
        {
            case "EI_MAG0": return (0, 1);
            case "EI_MAG1": return (1, 1);
            case "EI_MAG2": return (2, 1);
            case "EI_MAG3": return (3, 1);
            case "EI_CLASS": return (ElfIdent.ClassIndex, 1);
            case "EI_DATA": return (ElfIdent.DataIndex, 1);
            case "EI_VERSION": return (ElfIdent.VersionIndex, 1);
            case "EI_OSABI": return (ElfIdent.OsAbiIndex, 1);
            case "EI_ABIVERSION": return (ElfIdent.AbiVersionIndex, 1);
        }
        if (HeaderField(location) is { } header)
            return header;
        if (location.StartsWith("func[", StringComparison.Ordinal))
        {
            // func[N].field: livepatch_func N (version 2) of .livepatch.funcs.
            int close = location.IndexOf(']', StringComparison.Ordinal);
            int n = (int)Number(location[5..close]);
            int at = Data(f, ".livepatch.funcs") + n * LivepatchFunc.SizeOf(2);
            return location[(close + 2)..] switch
            {
                "name" => (at + LivepatchFunc.FieldLocations.Name, 8),
                "new_addr" => (at + LivepatchFunc.FieldLocations.NewAddr, 8),
                "old_addr" => (at + LivepatchFunc.FieldLocations.OldAddr, 8),
                "new_size" => (at + LivepatchFunc.FieldLocations.NewSize, 4),
                "old_size" => (at + LivepatchFunc.FieldLocations.OldSize, 4),
                "version" => (at + LivepatchFunc.FieldLocations.Version, 1),
                var other => throw new FormatException($"livepatch_func field '{other}'"),
            };
        }
        int atSign = location.LastIndexOf('@');
        if (atSign > 0)
        {
            // SECTION@OFFSET[:uN]: bytes of a section; a negative offset counts from its end.
            string rest = location[(atSign + 1)..];
            int colon = rest.IndexOf(':', StringComparison.Ordinal);
            int width = colon < 0 ? 1 : rest[(colon + 1)..] switch { "u8" => 1, "u16" => 2, "u32" => 4, "u64" => 8, var u => throw new FormatException($"width '{u}'") };
            long offset = (long)Number(colon < 0 ? rest : rest[..colon]);
            string section = location[..atSign];
            long size = (long)f.SectionHeaders[Index(f, section)].Size;
            return (Data(f, section) + (int)(offset < 0 ? size + offset : offset), width);
        }
        int c = location.LastIndexOf(':');
        if (c <= 0)
            throw new FormatException($"unknown location '{location}'");
        string owner = location[..c], field = location[(c + 1)..];
        if (field.StartsWith("sh_", StringComparison.Ordinal))
        {
            int shdr = (int)f.Header.SectionHeaderOffset + Index(f, owner) * L64.EntrySize;
            return field switch
            {
                "sh_name" => (shdr + L64.Name, 4),
                "sh_type" => (shdr + L64.Type, 4),
                "sh_flags" => (shdr + L64.Flags, 8),
                "sh_addr" => (shdr + L64.Addr, 8),
                "sh_offset" => (shdr + L64.Offset, 8),
                "sh_size" => (shdr + L64.Size, 8),
                "sh_link" => (shdr + L64.Link, 4),
                "sh_info" => (shdr + L64.Info, 4),
                "sh_addralign" => (shdr + L64.AddrAlign, 8),
                "sh_entsize" => (shdr + L64.EntSize, 8),
                _ => throw new FormatException($"section header field '{field}'"),
            };
        }
        if (field.StartsWith("st_", StringComparison.Ordinal))
        {
            int sym = Symbol(f, owner);
            return field switch
            {
                "st_name" => (sym + ElfSymbol.Layout64.Name, 4),
                "st_info" => (sym + ElfSymbol.Layout64.Info, 1),
                "st_shndx" => (sym + ElfSymbol.Layout64.Shndx, 2),
                "st_value" => (sym + ElfSymbol.Layout64.Value, 8),
                "st_size" => (sym + ElfSymbol.Layout64.Size, 8),
                _ => throw new FormatException($"symbol field '{field}'"),
            };
        }
        if (field.StartsWith("r_", StringComparison.Ordinal) && owner.EndsWith(']'))
        {
            // SECTION[N]: Elf64_Rela entry N.
            int open = owner.LastIndexOf('[');
            int entry = Data(f, owner[..open]) + (int)Number(owner[(open + 1)..^1]) * 24;
            return field switch
            {
                "r_offset" => (entry, 8),
                "r_type" => (entry + 8, 4),
                "r_sym" => (entry + 12, 4),
                "r_addend" => (entry + 16, 8),
                _ => throw new FormatException($"relocation field '{field}'"),
            };
        }
        throw new FormatException($"unknown location '{location}'");
    }

    private static (int, int)? HeaderField(string name) => name switch
    {
        "e_type" => (ElfHeader.Layout64.Type, 2),
        "e_machine" => (ElfHeader.Layout64.Machine, 2),
        "e_version" => (ElfHeader.Layout64.Version, 4),
        "e_shoff" => (ElfHeader.Layout64.ShOff, 8),
        "e_phnum" => (ElfHeader.Layout64.PhNum, 2),
        "e_shentsize" => (ElfHeader.Layout64.ShEntSize, 2),
        "e_shnum" => (ElfHeader.Layout64.ShNum, 2),
        "e_shstrndx" => (ElfHeader.Layout64.ShStrNdx, 2),
        _ => null,
    };

    // A value: terms added or subtracted (no spaces inside a term).
    private static ulong Value(byte[] bytes, string text)
    {
        ulong total = 0;
        int sign = 1, start = 0, depth = 0;
        for (int i = 0; i <= text.Length; i++)
        {
            if (i < text.Length)
                depth += text[i] == '(' ? 1 : text[i] == ')' ? -1 : 0;
            // A '+' or '-' between terms: not inside index(...), a quoted character, or opening the value.
            bool end = i == text.Length || ((text[i] is '+' or '-') && depth == 0 && i > start && text[start] != '\'');
            if (!end)
                continue;
            ulong term = Term(bytes, text[start..i].Trim());
            total = sign > 0 ? unchecked(total + term) : unchecked(total - term);
            if (i < text.Length)
                sign = text[i] == '+' ? 1 : -1;
            start = i + 1;
        }
        return total;
    }

    private static ulong Term(byte[] bytes, string t)
    {
        if (t.Length == 3 && t[0] == '\'' && t[2] == '\'')
            return t[1];
        if (t == "filesize")
            return (ulong)bytes.Length;
        if (HeaderField(t) is var (at, width))
            return width == 2 ? BinaryPrimitives.ReadUInt16LittleEndian(bytes.AsSpan(at)) : width == 4 ? BinaryPrimitives.ReadUInt32LittleEndian(bytes.AsSpan(at)) : BinaryPrimitives.ReadUInt64LittleEndian(bytes.AsSpan(at));
        if (t.StartsWith("index(", StringComparison.Ordinal) && t.EndsWith(')'))
            return (ulong)Index(ElfFile.Read(bytes), t[6..^1]);
        if (t.StartsWith("size(", StringComparison.Ordinal) && t.EndsWith(')'))
        {
            var f = ElfFile.Read(bytes);
            return f.SectionHeaders[Index(f, t[5..^1])].Size;
        }
        if (Constant(t) is ulong constant)
            return constant;
        return Number(t);
    }

    private static ulong? Constant(string name) => name switch
    {
        "ELFCLASS32" => (ulong)ElfClass.Elf32,
        "ELFCLASS64" => (ulong)ElfClass.Elf64,
        "ELFDATA2LSB" => (ulong)ElfEncoding.LittleEndian,
        "ELFDATA2MSB" => (ulong)ElfEncoding.BigEndian,
        _ when ElfSpecNames.TryParseSpecName(name, out ElfOsAbi v) => (ulong)v,
        _ when ElfSpecNames.TryParseSpecName(name, out ElfType v) => (ulong)v,
        _ when ElfSpecNames.TryParseSpecName(name, out ElfMachine v) => (ulong)v,
        _ when ElfSpecNames.TryParseSpecName(name, out ElfSectionType v) => (ulong)v,
        _ when ElfSpecNames.TryParseSpecName(name, out ElfSectionFlags v) => (ulong)v,
        _ when ElfSpecNames.TryParseSpecName(name, out ElfSpecialSection v) => (ulong)v,
        _ when RelocationNames.TryParseSpecName(name, out X86_64RelocationType v) => (ulong)v,
        _ => null,
    };

    private static ulong Number(string t)
    {
        bool negative = t.StartsWith('-');
        string digits = negative ? t[1..] : t;
        ulong v = digits.StartsWith("0x", StringComparison.OrdinalIgnoreCase)
            ? ulong.TryParse(digits[2..], NumberStyles.HexNumber, CultureInfo.InvariantCulture, out ulong h) ? h : throw new FormatException($"number '{t}'")
            : ulong.TryParse(digits, NumberStyles.None, CultureInfo.InvariantCulture, out ulong d) ? d : throw new FormatException($"value '{t}'");
        return negative ? unchecked(0UL - v) : v;
    }

    private static int Index(ElfFile f, string section)
    {
        // [N]: the section of index N (section 0 has no name to find it by).
        if (section.StartsWith('[') && section.EndsWith(']'))
            return (int)Number(section[1..^1]);
        int i = f.FindSection(section);
        return i > 0 ? i : throw new FormatException($"the payload has no section {section}");
    }

    private static int Data(ElfFile f, string section) => (int)f.SectionHeaders[Index(f, section)].Offset;

    private static int SymbolEntry(ElfFile f, string name, out int nameOffset)
    {
        int s = f.FindSymbolTable();
        var table = f.GetSymbolTable(s);
        for (int i = 1; i < table.Count; i++)
        {
            if (table.GetName(table[i]) == name)
            {
                nameOffset = (int)table[i].NameOffset;
                return (int)f.SectionHeaders[s].Offset + i * ElfSymbol.Layout64.EntrySize;
            }
        }
        throw new FormatException($"the payload has no symbol {name}");
    }

    private static int Symbol(ElfFile f, string name) => SymbolEntry(f, name, out _);

    // The name's bytes in .strtab, overwritten with NEW and a NUL.
    private static void RenameSymbol(byte[] bytes, string name, string newName)
    {
        if (newName.Length > name.Length)
            throw new FormatException($"rename-symbol {name} {newName}: the new name is longer");
        var f = ElfFile.Read(bytes);
        SymbolEntry(f, name, out int nameOffset);
        Encoding.ASCII.GetBytes(newName + "\0").CopyTo(bytes, Data(f, ".strtab") + nameOffset);
    }
}
