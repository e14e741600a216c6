namespace XenLivepatch.Elf;

/// <summary>A program header (<c>Elf32_Phdr</c> / <c>Elf64_Phdr</c>), widened to 64 bits.</summary>
public readonly record struct ElfProgramHeader
{
    /// <summary>Size of one entry for a class: 32 or 56.</summary>
    public static int SizeOf(ElfClass elfClass) => elfClass == ElfClass.Elf64 ? 56 : 32;

    /// <summary><c>p_type</c>.</summary>
    public ElfSegmentType Type { get; init; }
    /// <summary><c>p_flags</c>.</summary>
    public ElfSegmentFlags Flags { get; init; }
    /// <summary><c>p_offset</c>.</summary>
    public ulong Offset { get; init; }
    /// <summary><c>p_vaddr</c>.</summary>
    public ulong VirtualAddress { get; init; }
    /// <summary><c>p_paddr</c>.</summary>
    public ulong PhysicalAddress { get; init; }
    /// <summary><c>p_filesz</c>.</summary>
    public ulong FileSize { get; init; }
    /// <summary><c>p_memsz</c>.</summary>
    public ulong MemorySize { get; init; }
    /// <summary><c>p_align</c>.</summary>
    public ulong Align { get; init; }

    /// <summary>Reads one entry from the start of <paramref name="s"/>.</summary>
    public static ElfProgramHeader Read(ReadOnlySpan<byte> s, ElfLayout l)
    {
        if (l.Is64)
        {
            return new ElfProgramHeader
            {
                Type = (ElfSegmentType)l.U32(s, 0),
                Flags = (ElfSegmentFlags)l.U32(s, 4),
                Offset = l.U64(s, 8),
                VirtualAddress = l.U64(s, 16),
                PhysicalAddress = l.U64(s, 24),
                FileSize = l.U64(s, 32),
                MemorySize = l.U64(s, 40),
                Align = l.U64(s, 48),
            };
        }
        return new ElfProgramHeader
        {
            Type = (ElfSegmentType)l.U32(s, 0),
            Offset = l.U32(s, 4),
            VirtualAddress = l.U32(s, 8),
            PhysicalAddress = l.U32(s, 12),
            FileSize = l.U32(s, 16),
            MemorySize = l.U32(s, 20),
            Flags = (ElfSegmentFlags)l.U32(s, 24),
            Align = l.U32(s, 28),
        };
    }
}
