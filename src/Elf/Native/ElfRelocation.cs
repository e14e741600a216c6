namespace XenLivepatch.Elf;

/// <summary>
/// A relocation (<c>Elf{32,64}_Rel</c> or <c>_Rela</c>). <see cref="SymbolIndex"/> and <see cref="Type"/> are
/// decoded from <c>r_info</c> the way the file's class defines (ELF64: 32/32 bits, ELF32: 24/8 bits).
/// </summary>
public readonly record struct ElfRelocation
{
    /// <summary><c>r_offset</c>: where the relocation applies (a section offset in ET_REL files).</summary>
    public ulong Offset { get; init; }
    /// <summary><c>r_info</c> as stored.</summary>
    public ulong Info { get; init; }
    /// <summary><c>r_addend</c>; 0 for SHT_REL entries, whose addend is in the relocated field.</summary>
    public long Addend { get; init; }

    /// <summary><c>ELF64_R_SYM</c> / <c>ELF32_R_SYM</c>, computed for the class given to <see cref="Read"/>.</summary>
    public uint SymbolIndex { get; init; }
    /// <summary><c>ELF64_R_TYPE</c> / <c>ELF32_R_TYPE</c>.</summary>
    public uint Type { get; init; }

    /// <summary>Size of one entry: REL 8/16, RELA 12/24 (ELF32/ELF64).</summary>
    public static int SizeOf(ElfClass elfClass, bool rela) =>
        (elfClass == ElfClass.Elf64 ? 16 : 8) + (rela ? (elfClass == ElfClass.Elf64 ? 8 : 4) : 0);

    /// <summary>Packs a symbol index and a type into <c>r_info</c>.</summary>
    public static ulong MakeInfo(ElfClass elfClass, uint symbolIndex, uint type)
    {
        if (elfClass == ElfClass.Elf64)
            return ((ulong)symbolIndex << 32) | type;
        if (symbolIndex > 0xffffff || type > 0xff)
            throw new ArgumentOutOfRangeException(nameof(symbolIndex), $"ELF32 r_info holds a 24-bit symbol index and an 8-bit type (got {symbolIndex}, {type})");
        return (symbolIndex << 8) | type;
    }

    /// <summary>Creates an entry from its parts.</summary>
    public static ElfRelocation Create(ElfClass elfClass, ulong offset, uint symbolIndex, uint type, long addend) => new()
    {
        Offset = offset,
        Info = MakeInfo(elfClass, symbolIndex, type),
        Addend = addend,
        SymbolIndex = symbolIndex,
        Type = type,
    };

    /// <summary>Reads one entry from the start of <paramref name="s"/>.</summary>
    public static ElfRelocation Read(ReadOnlySpan<byte> s, ElfLayout l, bool rela)
    {
        int w = l.WordSize;
        ulong info = l.Word(s, w);
        return new ElfRelocation
        {
            Offset = l.Word(s, 0),
            Info = info,
            Addend = rela ? l.SWord(s, 2 * w) : 0,
            SymbolIndex = l.Is64 ? (uint)(info >> 32) : (uint)(info >> 8),
            Type = l.Is64 ? (uint)info : (uint)(info & 0xff),
        };
    }

    /// <summary>Writes this entry at the start of <paramref name="d"/>.</summary>
    public void Write(Span<byte> d, ElfLayout l, bool rela)
    {
        int w = l.WordSize;
        l.WWord(d, 0, Offset);
        l.WWord(d, w, MakeInfo(l.Class, SymbolIndex, Type));
        if (rela)
            l.WSWord(d, 2 * w, Addend);
    }
}
