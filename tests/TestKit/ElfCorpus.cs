using Xunit;

namespace XenLivepatch.TestKit;

/// <summary>One file of the ELF corpus.</summary>
public sealed record CorpusEntry(string Name, string Path)
{
    /// <summary>The file's bytes.</summary>
    public byte[] Bytes => File.ReadAllBytes(Path);

    /// <summary>True for relocatable objects (the writer round-trips those).</summary>
    public bool IsObject => Path.EndsWith(".o", StringComparison.Ordinal);

    /// <inheritdoc/>
    public override string ToString() => Name;
}

/// <summary>
/// The ELF corpus: objects compiled from tests/Data/elf/src by tests/Data/elf/build-corpus.sh, once per test
/// process, into a temporary folder.
/// </summary>
public static class ElfCorpus
{
    private static readonly Lazy<IReadOnlyList<CorpusEntry>> s_entries = new(Build);

    /// <summary>Every file of the corpus.</summary>
    public static IReadOnlyList<CorpusEntry> Entries => s_entries.Value;

    /// <summary>The file called <paramref name="name"/>.</summary>
    public static CorpusEntry Get(string name) => Entries.Single(e => e.Name == name);

    /// <summary>Entry names, for <c>[MemberData]</c>.</summary>
    public static TheoryData<string> Names(Func<CorpusEntry, bool>? filter = null)
    {
        var data = new TheoryData<string>();
        foreach (var e in Entries.Where(filter ?? (_ => true)))
            data.Add(e.Name);
        return data;
    }

    private static IReadOnlyList<CorpusEntry> Build()
    {
        string dir = Repo.TempDirectory("elf-corpus");
        Tool.Run("bash", Repo.Path("tests", "Data", "elf", "build-corpus.sh"), dir).EnsureSuccess();
        return File.ReadAllLines(System.IO.Path.Combine(dir, "manifest.txt"))
            .Where(l => l.Length > 0)
            .Select(l => l.Split(' ', 2))
            .Select(p => new CorpusEntry(p[0], p[1]))
            .ToList();
    }
}
