using CsCheck;
using XenLivepatch.TestKit;

namespace XenLivepatch.Elf.Tests;

/// <summary>
/// Mutated corpus files (byte flips, truncation, huge counts, sizes and offsets written into header fields):
/// every outcome is success or our format error, never another exception, and the memory spent stays in
/// proportion to the file's size.
/// </summary>
public class HostileInputTests
{
    private static readonly Lazy<byte[][]> s_seeds = new(() =>
        ElfCorpus.Entries.Where(e => new FileInfo(e.Path).Length < 64 * 1024).Select(e => e.Bytes).ToArray());

    // Field offsets (ELF64 and ELF32 headers; section header fields) that hold counts, sizes and offsets.
    private static readonly int[] s_headerFields = [16, 18, 20, 24, 28, 32, 36, 40, 44, 46, 48, 50, 52, 54, 56, 58, 60, 62];
    private static readonly ulong[] s_hostile = [0, 1, 0xff, 0xffff, 0xff00, 0xfff1, 0xffffffff, 0x7fffffff, 0x80000000, ulong.MaxValue, ulong.MaxValue / 2, 1UL << 32, 63, 64, 65];

    private static byte[] Mutate(byte[] seed, Random rnd)
    {
        byte[] b = (byte[])seed.Clone();
        int kind = rnd.Next(5);
        switch (kind)
        {
            case 0: // byte flips anywhere
                for (int i = rnd.Next(1, 16); i > 0; i--)
                    b[rnd.Next(b.Length)] ^= (byte)rnd.Next(1, 256);
                return b;
            case 1: // truncation
                return b[..rnd.Next(b.Length)];
            case 2: // a hostile value in a header field
            {
                int at = s_headerFields[rnd.Next(s_headerFields.Length)];
                Write(b, at, s_hostile[rnd.Next(s_hostile.Length)], rnd.Next(2) == 0 ? 2 : 4);
                return b;
            }
            default: // a hostile value in a field of some section header (offset, size, link, info, entsize, name)
            {
                if (!ElfFile.TryRead(b, out var f, out _) || f.SectionCount == 0)
                    return b;
                int index = rnd.Next(f.SectionCount);
                int entry = (int)f.Header.SectionHeaderOffset + index * f.Header.SectionHeaderEntrySize;
                int[] fields = f.Layout.Is64 ? [0, 4, 24, 32, 40, 44, 48, 56] : [0, 4, 16, 20, 24, 28, 32, 36];
                int field = fields[rnd.Next(fields.Length)];
                int width = f.Layout.Is64 && field is 24 or 32 or 48 or 56 ? 8 : 4;
                Write(b, entry + field, s_hostile[rnd.Next(s_hostile.Length)], width);
                return b;
            }
        }
    }

    private static void Write(byte[] b, int at, ulong value, int width)
    {
        for (int i = 0; i < width && at + i < b.Length; i++)
            b[at + i] = (byte)(value >> (8 * i));
    }

    // XLP_MUTATIONS raises the count for a longer campaign (the default keeps the suite quick).
    private static long Iterations => long.TryParse(Environment.GetEnvironmentVariable("XLP_MUTATIONS"), out long n) ? n : 20000;

    [Fact]
    public void Mutated_files_give_values_or_format_errors_and_bounded_memory()
    {
        var seeds = s_seeds.Value;
        Gen.Int[0, int.MaxValue].Sample(seed =>
        {
            var rnd = new Random(seed);
            byte[] input = Mutate(seeds[rnd.Next(seeds.Length)], rnd);
            long before = GC.GetAllocatedBytesForCurrentThread();
            try
            {
                ElfWalk.Visit(input);
            }
            catch (ElfFormatException e)
            {
                Assert.Fail($"a Try API threw for seed {seed}: {e.Message}");
            }
            long spent = GC.GetAllocatedBytesForCurrentThread() - before;
            Assert.True(spent <= 100L * input.Length + (1 << 20), $"seed {seed}: {spent} bytes allocated for a {input.Length}-byte file");
        }, iter: Iterations, threads: 1);
    }

    [Fact]
    public void Overlapping_tables_are_refused_before_they_cost_more_than_the_file()
    {
        // Point every section of a real object at the symbol table: a reader that decodes each table
        // independently would spend (sections x table size).
        byte[] b = ElfCorpus.Get("x86_64-O0-pic-data").Bytes;
        var f = ElfFile.Read(b);
        int symtab = f.FindSymbolTable();
        var st = f.SectionHeaders[symtab];
        int shoff = (int)f.Header.SectionHeaderOffset;
        for (int i = 1; i < f.SectionCount; i++)
        {
            if (i == symtab || i == (int)st.Link || i == f.SectionNameTableIndex)
                continue;
            int e = shoff + i * 64;
            Write(b, e + 4, (ulong)ElfSectionType.SymbolTable, 4);
            Write(b, e + 24, st.Offset, 8);
            Write(b, e + 32, st.Size, 8);
            Write(b, e + 40, st.Link, 4);
            Write(b, e + 56, 24, 8);
        }
        var file = ElfFile.Read(b);
        Assert.False(ElfObject.TryFromFile(file, out _, out var error));
        Assert.Equal(ElfErrorCode.SectionOutOfBounds, error.Code);
        Assert.Contains("overlap", error.Message, StringComparison.Ordinal);
    }
}
