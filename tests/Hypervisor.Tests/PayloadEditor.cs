using System.Buffers.Binary;
using XenLivepatch.Elf;

namespace XenLivepatch.Hypervisor.Tests;

/// <summary>Edits a payload's bytes in place: header fields, section headers, symbols, contents (for hostile cases).</summary>
internal sealed class PayloadEditor
{
    public PayloadEditor(byte[] bytes) => Bytes = bytes;

    public byte[] Bytes { get; }

    public ElfFile File => ElfFile.Read(Bytes);

    public void U8(int at, byte v) => Bytes[at] = v;
    public void U16(int at, ushort v) => BinaryPrimitives.WriteUInt16LittleEndian(Bytes.AsSpan(at), v);
    public void U32(int at, uint v) => BinaryPrimitives.WriteUInt32LittleEndian(Bytes.AsSpan(at), v);
    public void U64(int at, ulong v) => BinaryPrimitives.WriteUInt64LittleEndian(Bytes.AsSpan(at), v);

    public int SectionIndex(string name)
    {
        int i = File.FindSection(name);
        Assert.True(i > 0, $"the payload has no {name}");
        return i;
    }

    /// <summary>File offset of a section header field (ELF64 offsets, e.g. ElfSectionHeader.Layout64.Flags).</summary>
    public int Shdr(int index, int field) => (int)File.Header.SectionHeaderOffset + index * 64 + field;

    public int Shdr(string name, int field) => Shdr(SectionIndex(name), field);

    /// <summary>File offset of a section's contents.</summary>
    public int Data(string name) => (int)File.SectionHeaders[SectionIndex(name)].Offset;

    /// <summary>File offset of the symbol table entry of <paramref name="name"/>.</summary>
    public int Symbol(string name)
    {
        var f = File;
        int s = f.FindSymbolTable();
        var table = f.GetSymbolTable(s);
        for (int i = 1; i < table.Count; i++)
        {
            if (table.GetName(table[i]) == name)
                return (int)f.SectionHeaders[s].Offset + i * 24;
        }
        throw new KeyNotFoundException(name);
    }

    /// <summary>File offset of relocation <paramref name="entry"/> of a relocation section.</summary>
    public int Rela(string section, int entry) => Data(section) + entry * 24;
}
