using System.Globalization;

namespace XenLivepatch.Elf;

/// <summary>What is wrong with a file. The numbers are stable: tools and tests may rely on them.</summary>
public enum ElfErrorCode
{
    /// <summary>The file is shorter than a structure it must hold.</summary>
    Truncated = 1,
    /// <summary>The file does not start with <c>\x7fELF</c>.</summary>
    BadMagic = 2,
    /// <summary><c>EI_CLASS</c> is neither ELFCLASS32 nor ELFCLASS64.</summary>
    BadClass = 3,
    /// <summary><c>EI_DATA</c> is neither little nor big endian.</summary>
    BadEncoding = 4,
    /// <summary><c>EI_VERSION</c> or <c>e_version</c> is not EV_CURRENT.</summary>
    BadVersion = 5,
    /// <summary>A header field is inconsistent (entry sizes, counts, offsets without tables).</summary>
    BadHeader = 6,
    /// <summary>The section header table lies (partly) outside the file.</summary>
    SectionTableOutOfBounds = 7,
    /// <summary>The program header table lies (partly) outside the file.</summary>
    ProgramTableOutOfBounds = 8,
    /// <summary>A section index is out of range.</summary>
    BadSectionIndex = 9,
    /// <summary>A section's contents lie (partly) outside the file.</summary>
    SectionOutOfBounds = 10,
    /// <summary>A section has a type that the requested view cannot read.</summary>
    BadSectionType = 11,
    /// <summary>A table's entry size is zero, too small, or does not divide its size.</summary>
    BadEntrySize = 12,
    /// <summary>A string offset is past the end of its string table.</summary>
    BadStringOffset = 13,
    /// <summary>A string runs to the end of its table without a NUL.</summary>
    UnterminatedString = 14,
    /// <summary>A symbol index is out of range.</summary>
    BadSymbolIndex = 15,
    /// <summary>A note's header, name or descriptor runs past its section.</summary>
    BadNote = 16,
    /// <summary>There is no section name string table.</summary>
    NoSectionNameTable = 17,
    /// <summary>A section group is malformed.</summary>
    BadGroup = 18,
    /// <summary>A section's <c>sh_link</c> does not name a section of the required kind.</summary>
    BadLink = 19,
}

/// <summary>
/// A precise format error: which check failed, a message with the numbers involved, and where in the
/// file (byte offset, section index) when that is known. Errors are values; the reader never throws
/// anything else for malformed input.
/// </summary>
public sealed record ElfError(ElfErrorCode Code, string Message)
{
    /// <summary>File offset of the offending bytes, or -1.</summary>
    public long Offset { get; init; } = -1;

    /// <summary>Index of the section concerned, or -1.</summary>
    public int Section { get; init; } = -1;

    /// <inheritdoc/>
    public override string ToString()
    {
        string where = (Section >= 0, Offset >= 0) switch
        {
            (true, true) => string.Create(CultureInfo.InvariantCulture, $" (section {Section}, offset 0x{Offset:x})"),
            (true, false) => string.Create(CultureInfo.InvariantCulture, $" (section {Section})"),
            (false, true) => string.Create(CultureInfo.InvariantCulture, $" (offset 0x{Offset:x})"),
            _ => "",
        };
        return $"ELF{(int)Code:D3}: {Message}{where}";
    }

    internal static ElfError Sec(ElfErrorCode code, int section, string message) => new(code, message) { Section = section };
}

/// <summary>Thrown by the convenience (non-Try) forms of the reader when the file is malformed.</summary>
public sealed class ElfFormatException : Exception
{
    /// <summary>Wraps a format error.</summary>
    public ElfFormatException(ElfError error) : base(error?.ToString()) => Error = error!;

    /// <summary>Creates an exception with a message only (code <see cref="ElfErrorCode.BadHeader"/>).</summary>
    public ElfFormatException(string message) : this(new ElfError(ElfErrorCode.BadHeader, message)) { }

    /// <summary>Creates an exception with a message and an inner exception.</summary>
    public ElfFormatException(string message, Exception innerException) : base(message, innerException) =>
        Error = new ElfError(ElfErrorCode.BadHeader, message);

    /// <summary>Required by the exception pattern.</summary>
    public ElfFormatException() : this("malformed ELF file") { }

    /// <summary>The error.</summary>
    public ElfError Error { get; }
}
