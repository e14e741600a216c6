using XenLivepatch.Elf;

namespace XenLivepatch.Tooling.Diffing;

/// <summary>An object to compare: its name (for messages) and its contents.</summary>
public sealed record DiffInput(string Name, ElfFile File);

/// <summary>How a diff ended.</summary>
public enum DiffOutcome
{
    /// <summary>Functions changed or were added: the output object holds them.</summary>
    Changed,
    /// <summary>No function changed and nothing new is needed (a comment, a line-number move, a header change that left the code alone).</summary>
    NothingToPatch,
    /// <summary>The change cannot be carried by a live patch; <see cref="DiffResult.Refusals"/> say why.</summary>
    Refused,
    /// <summary>The two objects were not built the same way (compiler, flags) or are not comparable.</summary>
    Mismatched,
}

/// <summary>A function or object the diff reports.</summary>
/// <param name="Name">Its name in the patched object.</param>
/// <param name="HypervisorName">Its name in the running hypervisor's symbol table (<c>file#name</c> for a static one), or in the payload when new; empty when the payload carries it without a name (a cold part, a copy of a changed constant).</param>
/// <param name="Section">The section it is in.</param>
/// <param name="Reason">Why it is listed ("code differs", "calls new function bar", "new").</param>
public sealed record DiffSymbol(string Name, string HypervisorName, string Section, string Reason);

/// <summary>A change the diff refuses to carry into a payload.</summary>
/// <param name="Object">The object (its name as given).</param>
/// <param name="Section">The section concerned.</param>
/// <param name="Symbol">The function or object concerned, when there is one.</param>
/// <param name="Reason">Why a live patch cannot carry it.</param>
public sealed record DiffRefusal(string Object, string Section, string? Symbol, string Reason)
{
    /// <summary>One line naming object, section and symbol.</summary>
    public override string ToString() => $"{Object}: {Section}{(Symbol != null ? $" ({Symbol})" : "")}: {Reason}";
}

/// <summary>What <see cref="ObjectDiff"/> found, and the object it made.</summary>
public sealed class DiffResult
{
    /// <summary>How it ended.</summary>
    public required DiffOutcome Outcome { get; init; }

    /// <summary>The patched object's name.</summary>
    public required string Object { get; init; }

    /// <summary>Its source file (the STT_FILE symbol), the prefix of its static symbols in Xen's symbol table.</summary>
    public string? SourceFile { get; init; }

    /// <summary>The output object (ELF relocatable) when <see cref="Outcome"/> is <see cref="DiffOutcome.Changed"/>.</summary>
    public byte[]? Output { get; init; }

    /// <summary>Functions whose code changed: the payload replaces them.</summary>
    public IReadOnlyList<DiffSymbol> Changed { get; init; } = [];

    /// <summary>Functions the patch adds (or carries along with a changed one, like its cold part).</summary>
    public IReadOnlyList<DiffSymbol> New { get; init; } = [];

    /// <summary>Data the payload brings: new variables, and new copies of changed constants.</summary>
    public IReadOnlyList<DiffSymbol> NewData { get; init; } = [];

    /// <summary>Hypervisor symbols the output refers to by name (unchanged functions and variables, static ones as file#name).</summary>
    public IReadOnlyList<string> References { get; init; } = [];

    /// <summary>Why the change cannot be carried (when <see cref="Outcome"/> is <see cref="DiffOutcome.Refused"/>).</summary>
    public IReadOnlyList<DiffRefusal> Refusals { get; init; } = [];

    /// <summary>The problem when <see cref="Outcome"/> is <see cref="DiffOutcome.Mismatched"/>.</summary>
    public ToolingProblem? Problem { get; init; }

    /// <summary>Remarks: changes that need no patch (line numbers in bug frames), new code nothing uses.</summary>
    public IReadOnlyList<string> Notes { get; init; } = [];
}
