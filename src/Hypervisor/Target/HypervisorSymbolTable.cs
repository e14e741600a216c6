using System.Diagnostics.CodeAnalysis;
using System.Globalization;
using XenLivepatch.Elf;

namespace XenLivepatch.Hypervisor;

/// <summary>One hypervisor symbol: its address, its size when known (0 otherwise) and whether it is code.</summary>
public readonly record struct HypervisorSymbol(string Name, ulong Address, ulong Size, bool IsFunction);

/// <summary>
/// A hypervisor symbol table, read from an image with a symbol table (xen-syms, our sandbox image) or from a
/// <c>/proc/xen/xensyms</c> listing. Names follow Xen's table: globals by name, locals as <c>file#name</c>.
/// </summary>
public sealed class HypervisorSymbolTable
{
    private readonly Dictionary<string, HypervisorSymbol> _byName = new(StringComparer.Ordinal);
    private readonly List<HypervisorSymbol> _ordered = [];

    private HypervisorSymbolTable() { }

    /// <summary>Every symbol, by address.</summary>
    public IReadOnlyList<HypervisorSymbol> Symbols => _ordered;

    /// <summary>Lowest address of a function symbol (or 0).</summary>
    public ulong TextStart { get; private set; }

    /// <summary>Highest address past the end of a function symbol (or 0).</summary>
    public ulong TextEnd { get; private set; }

    /// <summary>Looks a symbol up by name.</summary>
    public bool TryGet(string name, out HypervisorSymbol symbol) => _byName.TryGetValue(name, out symbol);

    /// <summary>
    /// The size of a symbol: its recorded size, or, when the listing has none (<c>/proc/xen/xensyms</c>), the
    /// distance to the next symbol at a higher address.
    /// </summary>
    public ulong SizeOf(in HypervisorSymbol symbol)
    {
        if (symbol.Size != 0)
            return symbol.Size;
        ulong address = symbol.Address;
        int i = _ordered.FindIndex(s => s.Address > address);
        return i < 0 ? 0 : _ordered[i].Address - address;
    }

    private void Add(HypervisorSymbol s)
    {
        if (s.Address == 0 || !_byName.TryAdd(s.Name, s))
            return;
        _ordered.Add(s);
    }

    private void Finish()
    {
        _ordered.Sort((a, b) => a.Address.CompareTo(b.Address));
        var code = _ordered.Where(s => s.IsFunction).ToList();
        if (code.Count > 0)
        {
            TextStart = code[0].Address;
            TextEnd = code.Max(s => s.Address + Math.Max(1, s.Size));
        }
    }

    /// <summary>Reads the symbol table of an ELF image (SHT_SYMTAB, else SHT_DYNSYM).</summary>
    public static bool TryFromImage(ElfFile image, [NotNullWhen(true)] out HypervisorSymbolTable? table, [NotNullWhen(false)] out string? error)
    {
        table = null;
        int index = image.FindSymbolTable();
        if (index < 0)
            index = image.FindSection(ElfSectionType.DynamicSymbolTable);
        if (index < 0)
        {
            error = "the image has no symbol table (is it stripped? use xen-syms, or --symbols with /proc/xen/xensyms)";
            return false;
        }
        if (!image.TryGetSymbolTable(index, out var symbols, out var e))
        {
            error = e.ToString();
            return false;
        }
        var result = new HypervisorSymbolTable();
        string file = "";
        for (int i = 1; i < symbols.Count; i++)
        {
            var s = symbols[i];
            if (!symbols.TryGetName(s, out string? name, out e))
            {
                error = e.ToString();
                return false;
            }
            if (s.Type == ElfSymbolType.File)
            {
                file = name;
                continue;
            }
            if (s.Type == ElfSymbolType.Section || name.Length == 0 || s.HasReservedSectionIndex && s.SectionIndex != (ushort)ElfSpecialSection.Abs)
                continue;
            string key = s.Binding == ElfSymbolBinding.Local && file.Length > 0 ? file + "#" + name : name;
            result.Add(new HypervisorSymbol(key, s.Value, s.Size, s.Type is ElfSymbolType.Func or ElfSymbolType.GnuIFunc));
        }
        result.Finish();
        table = result;
        error = null;
        return true;
    }

    /// <summary>
    /// Parses a <c>/proc/xen/xensyms</c> listing: one symbol per line, "<c>ffff82d040234b20 T xen_extra_version</c>"
    /// (address in hex, nm-style type letter, name). Blank lines are skipped; anything else is an error naming the line.
    /// </summary>
    public static bool TryFromXenSyms(string text, [NotNullWhen(true)] out HypervisorSymbolTable? table, [NotNullWhen(false)] out string? error)
    {
        table = null;
        var result = new HypervisorSymbolTable();
        int lineNo = 0;
        foreach (string raw in text.Split('\n'))
        {
            lineNo++;
            string line = raw.TrimEnd('\r');
            if (line.Trim().Length == 0)
                continue;
            string[] parts = line.Split(' ', 3, StringSplitOptions.RemoveEmptyEntries);
            if (parts.Length != 3 || parts[1].Length != 1 ||
                !ulong.TryParse(parts[0], NumberStyles.HexNumber, CultureInfo.InvariantCulture, out ulong address))
            {
                error = $"line {lineNo}: expected '<hex address> <type> <name>' as in /proc/xen/xensyms, got '{line}'";
                return false;
            }
            result.Add(new HypervisorSymbol(parts[2].Trim(), address, 0, parts[1] is "T" or "t" or "W" or "w"));
        }
        if (result._ordered.Count == 0)
        {
            error = "the listing has no symbols";
            return false;
        }
        result.Finish();
        table = result;
        error = null;
        return true;
    }
}
