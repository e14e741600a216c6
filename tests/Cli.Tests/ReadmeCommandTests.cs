using System.Text.RegularExpressions;
using XenLivepatch.TestKit;

namespace XenLivepatch.Cli.Tests;

/// <summary>The test commands the README gives select tests: each <c>--filter</c> names a property VSTest knows and matches a test.</summary>
public partial class ReadmeCommandTests
{
    // The properties the xunit adapter filters on (FullyQualifiedName, DisplayName, traits); "Name" is not one of them.
    private static readonly string[] s_properties = ["FullyQualifiedName", "DisplayName", "Category"];

    [GeneratedRegex("""--filter\s+"?(?<property>[A-Za-z]+)(?<op>~|=|!=|!~)(?<value>[A-Za-z0-9_.]+)"?""")]
    private static partial Regex Filter();

    [Fact]
    public void Every_filter_in_the_README_selects_tests()
    {
        string readme = File.ReadAllText(Repo.Path("README.md"));
        var filters = Filter().Matches(readme);
        Assert.NotEmpty(filters);
        var sources = Directory.EnumerateFiles(Repo.Path("tests"), "*Tests.cs", SearchOption.AllDirectories).Select(File.ReadAllText).ToList();
        foreach (Match m in filters)
        {
            string property = m.Groups["property"].Value, value = m.Groups["value"].Value;
            Assert.True(s_properties.Contains(property), $"README: '{m.Value}': VSTest's xunit adapter has no property {property} (use FullyQualifiedName)");
            Assert.True(sources.Exists(s => s.Contains(value, StringComparison.Ordinal)), $"README: '{m.Value}' matches no test");
        }
    }
}
