using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;
using Microsoft.CodeAnalysis.CSharp.Syntax;
using XenLivepatch.TestKit;

namespace XenLivepatch.Tooling.Tests;

/// <summary>
/// Rules about the shape of the source tree that a reviewer would otherwise have to re-check by hand
/// (ARCHITECTURE.md): a type a newcomer can read in one sitting.
/// </summary>
public class ArchitectureTests
{
    /// <summary>The most lines one hand-written type may span, its partial declarations summed.</summary>
    private const int MaxTypeLines = 400;

    [Fact]
    public void No_hand_written_type_in_src_is_longer_than_the_limit()
    {
        var types = TypeLines.Measure(TypeLines.HandWrittenSources(Repo.Path("src")));
        Assert.True(types.Count > 50, $"only {types.Count} types found under src/: is the walk wrong?");
        var tooLong = types.Where(t => t.Lines > MaxTypeLines)
            .OrderByDescending(t => t.Lines)
            .Select(t => $"{t.Name}: {t.Lines} lines ({string.Join(", ", t.Places)})")
            .ToList();
        Assert.True(tooLong.Count == 0,
            $"types over {MaxTypeLines} lines; split them along a seam (ARCHITECTURE.md):\n  " + string.Join("\n  ", tooLong));
    }

    [Fact]
    public void The_measure_sums_partial_declarations_and_counts_nested_types_inside_their_outer_type()
    {
        string dir = Repo.TempDirectory("type-lines");
        string body = string.Concat(Enumerable.Repeat("    private int _f;\n", 250));
        File.WriteAllText(Path.Combine(dir, "A.cs"), "namespace N;\n\npublic partial class Long\n{\n" + body + "    private sealed class Inner { }\n}\n");
        File.WriteAllText(Path.Combine(dir, "A.More.cs"), "namespace N;\n\n// \"}\" in a comment does not end it\npublic partial class Long\n{\n    private const string S = \"}}\";\n" + body + "}\n\nrecord R(int X);\n");
        Directory.CreateDirectory(Path.Combine(dir, "Generated"));
        File.WriteAllText(Path.Combine(dir, "Generated", "Big.cs"), "namespace N;\npublic class Big\n{\n" + body + body + "}\n");
        File.WriteAllText(Path.Combine(dir, "Big.g.cs"), "namespace N;\npublic class Big2\n{\n" + body + body + "}\n");

        var types = TypeLines.Measure(TypeLines.HandWrittenSources(dir)).ToDictionary(t => t.Name);

        Assert.Equal(["N.Long", "N.R"], types.Keys.Order());
        Assert.Equal((250 + 4) + (250 + 4), types["N.Long"].Lines);
        Assert.Equal(1, types["N.R"].Lines);
    }
}

/// <summary>Lines each top-level type spans in a set of C# files, partial declarations summed.</summary>
internal static class TypeLines
{
    /// <summary>One type: its full name, its lines, and where its declarations are.</summary>
    public sealed record Measured(string Name, int Lines, IReadOnlyList<string> Places);

    /// <summary>The .cs files under <paramref name="root"/> that people write: no Generated/, *.g.cs, obj/ or bin/.</summary>
    public static IEnumerable<string> HandWrittenSources(string root) =>
        Directory.EnumerateFiles(root, "*.cs", SearchOption.AllDirectories)
            .Where(f => !f.EndsWith(".g.cs", StringComparison.Ordinal))
            .Where(f => !Path.GetRelativePath(root, f).Split(Path.DirectorySeparatorChar)
                .Any(part => part is "Generated" or "obj" or "bin"));

    public static List<Measured> Measure(IEnumerable<string> files)
    {
        var spans = new Dictionary<string, (int Lines, List<string> Places)>(StringComparer.Ordinal);
        foreach (string file in files)
        {
            var root = CSharpSyntaxTree.ParseText(File.ReadAllText(file), path: file).GetRoot();
            // A nested type is read as part of its outer type, so only the outermost declarations count.
            foreach (var type in root.DescendantNodes(n => n is not BaseTypeDeclarationSyntax).OfType<BaseTypeDeclarationSyntax>())
            {
                var lines = type.GetLocation().GetLineSpan();
                int count = lines.EndLinePosition.Line - lines.StartLinePosition.Line + 1;
                string name = FullName(type);
                var entry = spans.TryGetValue(name, out var seen) ? seen : (0, new List<string>());
                entry.Item2.Add($"{Path.GetFileName(file)}:{lines.StartLinePosition.Line + 1}");
                spans[name] = (entry.Item1 + count, entry.Item2);
            }
        }
        return spans.Select(s => new Measured(s.Key, s.Value.Lines, s.Value.Places)).ToList();
    }

    private static string FullName(BaseTypeDeclarationSyntax type)
    {
        string name = type.Identifier.ValueText;
        if (type is TypeDeclarationSyntax { TypeParameterList: { } parameters })
            name += "`" + parameters.Parameters.Count;
        var ns = type.Ancestors().OfType<BaseNamespaceDeclarationSyntax>().Select(n => n.Name.ToString()).Reverse();
        return string.Join('.', [.. ns, name]);
    }
}
