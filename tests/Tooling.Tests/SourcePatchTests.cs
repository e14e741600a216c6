using XenLivepatch.TestKit;
using XenLivepatch.Tooling.Sources;

namespace XenLivepatch.Tooling.Tests;

/// <summary>
/// The unified-diff reader and applier that build-source uses: it applies what GNU patch (-p1, --fuzz=0)
/// applies, with the same result; a hunk that does not apply is named and leaves every file as it was; and
/// old line numbers map to new ones as the hunks move them.
/// </summary>
public class SourcePatchTests
{
    private const string Original = """
        line 1
        line 2
        line 3
        line 4
        line 5
        line 6
        line 7
        line 8
        line 9
        line 10

        """;

    private static string Tree(string text = Original, string name = "f.c")
    {
        string dir = Repo.TempDirectory("patch");
        Directory.CreateDirectory(Path.Combine(dir, "src"));
        File.WriteAllText(Path.Combine(dir, "src", name), text);
        return dir;
    }

    private static SourcePatch Parse(string text) =>
        SourcePatch.TryParse("t.patch", text, out var p, out string? error) ? p : throw new InvalidOperationException(error);

    private const string TwoHunks = """
        diff --git a/src/f.c b/src/f.c
        --- a/src/f.c
        +++ b/src/f.c
        @@ -1,3 +1,4 @@
         line 1
        +inserted after 1
         line 2
         line 3
        @@ -7,4 +8,3 @@
         line 7
        -line 8
         line 9
         line 10

        """;

    [Fact]
    public void Applies_as_gnu_patch_does()
    {
        string ours = Tree();
        string gnu = Tree();
        var p = Parse(TwoHunks);
        Assert.True(p.TryApply(ours, out var written, out var failure), failure?.ToString());
        Assert.Equal(["src/f.c"], written);
        File.WriteAllText(Path.Combine(gnu, "t.patch"), TwoHunks);
        Tool.Run("patch", ["-p1", "--fuzz=0", "-i", "t.patch"], gnu).EnsureSuccess();
        Assert.Equal(File.ReadAllText(Path.Combine(gnu, "src", "f.c")), File.ReadAllText(Path.Combine(ours, "src", "f.c")));
    }

    [Fact]
    public void A_hunk_found_a_few_lines_away_still_applies()
    {
        string dir = Tree("extra a\nextra b\n" + Original);
        Assert.True(Parse(TwoHunks).TryApply(dir, out _, out var failure), failure?.ToString());
        string text = File.ReadAllText(Path.Combine(dir, "src", "f.c"));
        Assert.Contains("line 1\ninserted after 1\nline 2", text, StringComparison.Ordinal);
        Assert.DoesNotContain("line 8", text, StringComparison.Ordinal);
    }

    [Fact]
    public void A_hunk_that_does_not_apply_is_named_and_nothing_is_written()
    {
        string changed = Original.Replace("line 8", "line eight", StringComparison.Ordinal);
        string dir = Tree(changed);
        var p = Parse(TwoHunks);
        Assert.False(p.TryApply(dir, out var written, out var failure));
        Assert.Empty(written);
        Assert.Equal("src/f.c", failure.File);
        Assert.Equal(2, failure.Hunk);
        Assert.StartsWith("@@ -7,4 +8,3 @@", failure.Header, StringComparison.Ordinal);
        Assert.Contains("hunk #2", failure.ToString(), StringComparison.Ordinal);
        // The first hunk applied in memory only: the file is as it was.
        Assert.Equal(changed, File.ReadAllText(Path.Combine(dir, "src", "f.c")));
    }

    [Fact]
    public void A_missing_file_is_named()
    {
        string dir = Tree(name: "g.c");
        Assert.False(Parse(TwoHunks).TryApply(dir, out _, out var failure));
        Assert.Equal(0, failure.Hunk);
        Assert.Contains("no such file", failure.Reason, StringComparison.Ordinal);
    }

    [Fact]
    public void New_and_deleted_files()
    {
        const string text = """
            --- /dev/null
            +++ b/src/new.c
            @@ -0,0 +1,2 @@
            +int a;
            +int b;
            --- a/src/f.c
            +++ /dev/null
            @@ -1,10 +0,0 @@
            -line 1
            -line 2
            -line 3
            -line 4
            -line 5
            -line 6
            -line 7
            -line 8
            -line 9
            -line 10

            """;
        string dir = Tree();
        Assert.True(Parse(text).TryApply(dir, out var written, out var failure), failure?.ToString());
        Assert.Equal("int a;\nint b;\n", File.ReadAllText(Path.Combine(dir, "src", "new.c")));
        Assert.False(File.Exists(Path.Combine(dir, "src", "f.c")));
        Assert.Equal(["src/new.c", "src/f.c"], written);
    }

    [Fact]
    public void Old_lines_map_to_new_lines()
    {
        var f = Assert.Single(Parse(TwoHunks).Files);
        Assert.Equal(1, f.MapLine(1));
        Assert.Equal(3, f.MapLine(2));       // after the inserted line
        Assert.Equal(8, f.MapLine(7));
        Assert.Null(f.MapLine(8));           // removed
        Assert.Equal(9, f.MapLine(9));
        Assert.Equal(101, f.MapLine(101));   // +1 -1 past both hunks
    }

    [Fact]
    public void An_empty_patch_changes_nothing()
    {
        Assert.True(Parse("").IsEmpty);
        Assert.True(Parse("From: someone\nSubject: [PATCH] words only\n\n---\n").IsEmpty);
        Assert.False(Parse(TwoHunks).IsEmpty);
    }

    [Fact]
    public void A_truncated_hunk_is_malformed()
    {
        string text = TwoHunks[..TwoHunks.IndexOf(" line 9", StringComparison.Ordinal)];
        Assert.False(SourcePatch.TryParse("t.patch", text, out _, out string? error));
        Assert.Contains("truncated", error, StringComparison.Ordinal);
    }

    [Fact]
    public void Xen_series_patches_parse()
    {
        // The first commits of the 4.17.3..4.17.4 series parse: text hunks on files under xen/.
        foreach (string file in XenSource.Series().Take(20))
        {
            Assert.True(SourcePatch.TryRead(file, out var p, out string? error), error);
            Assert.False(p.IsEmpty, file);
            Assert.All(p.Files, f => Assert.StartsWith("xen/", f.Path, StringComparison.Ordinal));
        }
    }
}
