using System.Text;

namespace XenLivepatch.TestKit;

/// <summary>
/// Golden files: expected outputs kept under tests/Data/golden and reviewed like code. <see cref="Assert"/>
/// compares and, when they differ, says where; with GOLDEN_UPDATE=1 it rewrites the file instead.
/// </summary>
public static class Golden
{
    /// <summary>The folder of the golden files.</summary>
    public static string Folder => Repo.Path("tests", "Data", "golden");

    /// <summary>Compares <paramref name="actual"/> with the golden file <paramref name="name"/> (a path under tests/Data/golden).</summary>
    public static void Assert(string actual, string name)
    {
        ArgumentNullException.ThrowIfNull(actual);
        string path = Path.Combine(Folder, name);
        actual = actual.ReplaceLineEndings("\n");
        if (Environment.GetEnvironmentVariable("GOLDEN_UPDATE") == "1")
        {
            Directory.CreateDirectory(Path.GetDirectoryName(path)!);
            File.WriteAllText(path, actual, new UTF8Encoding(false));
            return;
        }
        if (!File.Exists(path))
            throw new Xunit.Sdk.XunitException($"golden file {name} is missing; run the test with GOLDEN_UPDATE=1 to write it, then review it");
        string expected = File.ReadAllText(path).ReplaceLineEndings("\n");
        if (expected == actual)
            return;
        string[] e = expected.Split('\n');
        string[] a = actual.Split('\n');
        int line = 0;
        while (line < e.Length && line < a.Length && e[line] == a[line])
            line++;
        throw new Xunit.Sdk.XunitException(
            $"output differs from golden file {name} at line {line + 1}:\n- {(line < e.Length ? e[line] : "(end)")}\n+ {(line < a.Length ? a[line] : "(end)")}\n" +
            "(GOLDEN_UPDATE=1 rewrites the file; review the diff)");
    }
}
