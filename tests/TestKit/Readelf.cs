using System.Globalization;
using System.Text.RegularExpressions;

namespace XenLivepatch.TestKit;

/// <summary>A section as <c>readelf -W -S</c> prints it.</summary>
public sealed record ReadelfSection(int Index, string Name, string Type, ulong Address, ulong Offset, ulong Size, ulong EntrySize, string Flags, uint Link, uint Info, ulong Align);

/// <summary>A symbol as <c>readelf -W -s</c> prints it.</summary>
public sealed record ReadelfSymbol(int Index, ulong Value, ulong Size, string Type, string Bind, string Visibility, string Ndx, string Name);

/// <summary>A relocation as <c>readelf -W -r</c> prints it. Symbol fields are null for symbol index 0.</summary>
public sealed record ReadelfRelocation(ulong Offset, ulong Info, string Type, ulong? SymbolValue, string? SymbolName, long? Addend);

/// <summary>A relocation section as <c>readelf -W -r</c> prints it.</summary>
public sealed record ReadelfRelocationSection(string Name, ulong FileOffset, List<ReadelfRelocation> Entries);

/// <summary>A note as <c>readelf -W -n</c> prints it.</summary>
public sealed record ReadelfNote(string Section, string Owner, uint DataSize, string Description, string? BuildId);

/// <summary>Runs binutils' readelf and parses what it prints (the oracle of the ELF tests).</summary>
public static partial class Readelf
{
    /// <summary>The readelf for a file: the host's, which reads every class, byte order and machine.</summary>
    public static string Program => "readelf";

    private static string[] Lines(string path, string option)
    {
        var r = Tool.Run(Program, "-W", option, path).EnsureSuccess();
        if (r.Stderr.Length > 0)
            throw new InvalidOperationException($"readelf {option} {path} warned:\n{r.Stderr}");
        return r.Stdout.Split('\n');
    }

    [GeneratedRegex(@"^\s*\[\s*(?<nr>\d+)\]\s(?<name>\S*)\s+(?<type>SYMTAB SECTION INDICES|\S+)\s+(?<addr>[0-9a-f]+)\s(?<off>[0-9a-f]+)\s(?<size>[0-9a-f]+)\s(?<es>[0-9a-f]{2,})\s(?<flg>[A-Za-z ]*?)\s*(?<lk>\d+)\s+(?<inf>\d+)\s+(?<al>\d+)\s*$")]
    private static partial Regex SectionLine();

    /// <summary>Parses <c>readelf -W -S</c>.</summary>
    public static List<ReadelfSection> Sections(string path)
    {
        var list = new List<ReadelfSection>();
        foreach (string line in Lines(path, "-S"))
        {
            var m = SectionLine().Match(line);
            if (!m.Success)
                continue;
            list.Add(new ReadelfSection(
                int.Parse(m.Groups["nr"].Value, CultureInfo.InvariantCulture), m.Groups["name"].Value, m.Groups["type"].Value,
                Hex(m.Groups["addr"].Value), Hex(m.Groups["off"].Value), Hex(m.Groups["size"].Value), Hex(m.Groups["es"].Value),
                m.Groups["flg"].Value.Trim(), uint.Parse(m.Groups["lk"].Value, CultureInfo.InvariantCulture),
                uint.Parse(m.Groups["inf"].Value, CultureInfo.InvariantCulture), ulong.Parse(m.Groups["al"].Value, CultureInfo.InvariantCulture)));
        }
        return list;
    }

    [GeneratedRegex(@"^Symbol table '(?<name>[^']*)' contains (?<n>\d+) entr")]
    private static partial Regex SymbolTableHeader();

    [GeneratedRegex(@"^\s*(?<num>\d+):\s(?<value>[0-9a-f]+)\s+(?<size>0x[0-9a-f]+|\d+)\s(?<type>\S+)\s+(?<bind>\S+)\s+(?<vis>\S+)\s+(?<ndx>\S+)\s?(?<name>.*)$")]
    private static partial Regex SymbolLine();

    /// <summary>Parses <c>readelf -W -s</c>: symbols per symbol table name.</summary>
    public static Dictionary<string, List<ReadelfSymbol>> Symbols(string path)
    {
        var tables = new Dictionary<string, List<ReadelfSymbol>>();
        List<ReadelfSymbol>? current = null;
        foreach (string line in Lines(path, "-s"))
        {
            var h = SymbolTableHeader().Match(line);
            if (h.Success)
            {
                tables[h.Groups["name"].Value] = current = [];
                continue;
            }
            var m = SymbolLine().Match(line);
            if (!m.Success || current == null)
                continue;
            string size = m.Groups["size"].Value;
            current.Add(new ReadelfSymbol(
                int.Parse(m.Groups["num"].Value, CultureInfo.InvariantCulture), Hex(m.Groups["value"].Value),
                size.StartsWith("0x", StringComparison.Ordinal) ? Hex(size[2..]) : ulong.Parse(size, CultureInfo.InvariantCulture),
                m.Groups["type"].Value, m.Groups["bind"].Value, m.Groups["vis"].Value, m.Groups["ndx"].Value, m.Groups["name"].Value));
        }
        return tables;
    }

    [GeneratedRegex(@"^Relocation section '(?<name>[^']*)' at offset 0x(?<off>[0-9a-f]+) contains")]
    private static partial Regex RelocationHeader();

    // Offset, Info, Type, then either "SymValue SymName [+|- addend]" or, for symbol 0, just the addend.
    [GeneratedRegex(@"^(?<off>[0-9a-f]+)\s+(?<info>[0-9a-f]+)\s+(?<type>\S+)\s+(?:(?<sv>[0-9a-f]{8,16})\s+(?<sn>.*?)(?:\s(?<sign>[+-])\s(?<add>[0-9a-f]+))?|(?<bare>[0-9a-f]+))?\s*$")]
    private static partial Regex RelocationLine();

    /// <summary>Parses <c>readelf -W -r</c>.</summary>
    public static List<ReadelfRelocationSection> Relocations(string path)
    {
        var list = new List<ReadelfRelocationSection>();
        ReadelfRelocationSection? current = null;
        foreach (string line in Lines(path, "-r"))
        {
            var h = RelocationHeader().Match(line);
            if (h.Success)
            {
                list.Add(current = new ReadelfRelocationSection(h.Groups["name"].Value, Hex(h.Groups["off"].Value), []));
                continue;
            }
            if (current == null || line.Length == 0 || line.StartsWith(' '))
                continue;
            var m = RelocationLine().Match(line);
            if (!m.Success)
                throw new FormatException($"unparsed readelf relocation line: '{line}'");
            long? addend = null;
            if (m.Groups["add"].Success)
                addend = (m.Groups["sign"].Value == "-" ? -1 : 1) * (long)Hex(m.Groups["add"].Value);
            else if (m.Groups["bare"].Success)
                addend = (long)Hex(m.Groups["bare"].Value);
            current.Entries.Add(new ReadelfRelocation(
                Hex(m.Groups["off"].Value), Hex(m.Groups["info"].Value), m.Groups["type"].Value,
                m.Groups["sv"].Success ? Hex(m.Groups["sv"].Value) : null,
                m.Groups["sv"].Success ? m.Groups["sn"].Value.Trim() : null,
                addend));
        }
        return list;
    }

    [GeneratedRegex(@"^Displaying notes found in: (?<name>\S+)")]
    private static partial Regex NotesHeader();

    [GeneratedRegex(@"^\s+(?<owner>\S+)\s+0x(?<size>[0-9a-f]+)\s+(?<desc>.*)$")]
    private static partial Regex NoteLine();

    [GeneratedRegex(@"Build ID: (?<id>[0-9a-f]+)")]
    private static partial Regex BuildIdText();

    /// <summary>Parses <c>readelf -W -n</c>.</summary>
    public static List<ReadelfNote> Notes(string path)
    {
        var list = new List<ReadelfNote>();
        string? section = null;
        foreach (string line in Lines(path, "-n"))
        {
            var h = NotesHeader().Match(line);
            if (h.Success)
            {
                section = h.Groups["name"].Value;
                continue;
            }
            var m = NoteLine().Match(line);
            if (section == null || !m.Success || m.Groups["owner"].Value == "Owner")
                continue;
            var id = BuildIdText().Match(line);
            list.Add(new ReadelfNote(section, m.Groups["owner"].Value, (uint)Hex(m.Groups["size"].Value), m.Groups["desc"].Value.Trim(),
                id.Success ? id.Groups["id"].Value : null));
        }
        return list;
    }

    /// <summary>Parses <c>readelf -W -h</c> into "key: value" pairs.</summary>
    public static Dictionary<string, string> Header(string path)
    {
        var d = new Dictionary<string, string>();
        foreach (string line in Lines(path, "-h"))
        {
            int colon = line.IndexOf(':', StringComparison.Ordinal);
            if (colon > 0 && line.StartsWith("  ", StringComparison.Ordinal))
                d[line[..colon].Trim()] = line[(colon + 1)..].Trim();
        }
        return d;
    }

    /// <summary>Runs <c>readelf -W -a</c> and returns what it wrote to stderr (warnings and errors).</summary>
    public static string Warnings(string path)
    {
        var r = Tool.Run(Program, "-W", "-a", path);
        return r.ExitCode == 0 ? r.Stderr : $"exit {r.ExitCode}: {r.Stderr}";
    }

    private static ulong Hex(string s) => ulong.Parse(s, NumberStyles.HexNumber, CultureInfo.InvariantCulture);
}
