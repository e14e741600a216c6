namespace XenLivepatch.Elf.Tests;

/// <summary>Reads everything the library offers from a file, the way a consumer that trusts nothing would.</summary>
internal static class ElfWalk
{
    /// <summary>
    /// Opens the file and visits every section, name, string, symbol, relocation and note, then builds the
    /// editable model and, when it validates, writes it and reads that back. Returns how many items were
    /// visited. Malformed input must only ever show up as <see cref="ElfError"/> values.
    /// </summary>
    public static int Visit(ReadOnlyMemory<byte> bytes)
    {
        if (!ElfFile.TryRead(bytes, out var file, out var error))
        {
            Assert.NotNull(error);
            return 0;
        }
        int visited = 0;
        for (int i = 0; i < file.SectionCount; i++)
        {
            var sh = file.SectionHeaders[i];
            visited++;
            if (file.TryGetSectionNameTable(out var names, out _))
                names.TryGetBytes(sh.NameOffset, out _, out _);
            file.TryGetSectionData(i, out _, out _);
            switch (sh.Type)
            {
                case ElfSectionType.SymbolTable or ElfSectionType.DynamicSymbolTable:
                    if (file.TryGetSymbolTable(i, out var symbols, out _))
                    {
                        for (int k = 0; k < symbols.Count; k++)
                        {
                            var sym = symbols[k];
                            symbols.Strings.TryGetBytes(sym.NameOffset, out _, out _);
                            symbols.TryGetSectionIndex(k, out _, out _);
                            visited++;
                        }
                    }
                    break;
                case ElfSectionType.Rel or ElfSectionType.Rela:
                    if (file.TryGetRelocationTable(i, out var relocations, out _))
                    {
                        for (int k = 0; k < relocations.Count; k++)
                            visited += relocations[k].Offset == ulong.MaxValue ? 2 : 1;
                    }
                    break;
                case ElfSectionType.Note:
                    if (file.TryGetNotes(i, out var notes, out _))
                        visited += notes.Count;
                    break;
            }
        }
        file.TryGetGnuBuildId(out _, out _);
        file.FindSection(".text");
        if (ElfObject.TryFromFile(file, out var obj, out var objError))
        {
            if (obj.Validate().Count == 0)
            {
                byte[] written = obj.Write();
                Assert.True(ElfFile.TryRead(written, out var again, out var e), e?.ToString());
                Assert.True(ElfObject.TryFromFile(again, out _, out e), e?.ToString());
            }
        }
        else
        {
            Assert.NotNull(objError);
        }
        return visited;
    }
}
