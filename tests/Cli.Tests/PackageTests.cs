using System.IO.Compression;
using System.Text;
using System.Xml.Linq;
using XenLivepatch.TestKit;

namespace XenLivepatch.Cli.Tests;

/// <summary>
/// The control library as a NuGet package, as a consumer meets it: ./build.sh packs XenLivepatch.Control and
/// XenLivepatch.Abi into artifacts/packages; a project outside the repository restores them from that folder
/// alone (a local feed), builds the README's sample with warnings as errors, and runs it against a sandbox.
/// </summary>
public class PackageTests
{
    private static string Feed => Repo.Path("artifacts", "packages");

    private static string Package(string id)
    {
        string path = Path.Combine(Feed, $"{id}.{VersionInfo.Version}.nupkg");
        Assert.True(File.Exists(path), $"{path} is missing: ./build.sh packs it (dotnet pack into artifacts/packages)");
        return path;
    }

    // git's answer in the repository (empty when it fails: a key that is not set).
    private static string Git(params string[] args)
    {
        var psi = new System.Diagnostics.ProcessStartInfo("git") { WorkingDirectory = Repo.Root, RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (string a in args)
            psi.ArgumentList.Add(a);
        using var p = System.Diagnostics.Process.Start(psi)!;
        string output = p.StandardOutput.ReadToEnd().Trim();
        p.StandardError.ReadToEnd();
        p.WaitForExit();
        return p.ExitCode == 0 ? output : "";
    }

    /// <summary>The C# sample of a README: its first csharp code block.</summary>
    internal static string Sample(string readme)
    {
        string text = File.ReadAllText(readme);
        int start = text.IndexOf("```csharp\n", StringComparison.Ordinal);
        Assert.True(start >= 0, $"{readme} has no csharp block");
        start += "```csharp\n".Length;
        return text[start..text.IndexOf("```", start, StringComparison.Ordinal)];
    }

    [Theory]
    [InlineData("XenLivepatch.Control")]
    [InlineData("XenLivepatch.Abi")]
    public void The_package_has_its_license_readme_and_xml_docs(string id)
    {
        using var zip = ZipFile.OpenRead(Package(id));
        var names = zip.Entries.Select(e => e.FullName).ToHashSet(StringComparer.Ordinal);
        Assert.Contains($"lib/net10.0/{id}.dll", names);
        Assert.Contains($"lib/net10.0/{id}.xml", names);
        Assert.Contains("README.md", names);
        Assert.Contains("LICENSE", names);
        using var nuspecStream = zip.Entries.Single(e => e.FullName.EndsWith(".nuspec", StringComparison.Ordinal)).Open();
        var nuspec = XDocument.Load(nuspecStream);
        var ns = nuspec.Root!.GetDefaultNamespace();
        var metadata = nuspec.Root.Element(ns + "metadata")!;
        Assert.Equal(("expression", "MIT"), (metadata.Element(ns + "license")?.Attribute("type")?.Value, metadata.Element(ns + "license")?.Value));
        Assert.Equal("README.md", metadata.Element(ns + "readme")?.Value);
        Assert.False(string.IsNullOrWhiteSpace(metadata.Element(ns + "description")?.Value));
        // Where the package came from: git, a URL (the clone's origin, or this checkout when it has none) and the commit
        // (README, "The control library as a package").
        var repository = metadata.Element(ns + "repository");
        Assert.NotNull(repository);
        Assert.Equal("git", repository.Attribute("type")?.Value);
        Assert.Matches("^[0-9a-f]{40}$", repository.Attribute("commit")?.Value ?? "");
        string origin = Git("remote", "get-url", "origin");
        string expected = origin.Length == 0 ? "file://" + Repo.Root.TrimEnd('/') : origin.StartsWith('/') ? "file://" + Path.GetFullPath(origin).TrimEnd('/') : origin;
        Assert.Equal(expected, repository.Attribute("url")?.Value);
        Assert.Equal(expected.EndsWith(".git", StringComparison.Ordinal) ? expected[..^4] : expected, metadata.Element(ns + "projectUrl")?.Value);
        if (id == "XenLivepatch.Control")
        {
            var dependency = metadata.Descendants(ns + "dependency").Single();
            Assert.Equal(("XenLivepatch.Abi", VersionInfo.Version), (dependency.Attribute("id")?.Value, dependency.Attribute("version")?.Value));
        }
    }

    [Fact]
    public void The_readme_sample_builds_from_the_local_feed_without_warnings_and_loads_a_payload()
    {
        Package("XenLivepatch.Control");
        Package("XenLivepatch.Abi");
        string sample = Sample(Repo.Path("src", "Control", "README.md"));
        Assert.Contains(sample, File.ReadAllText(Repo.Path("README.md")).ReplaceLineEndings("\n"), StringComparison.Ordinal);

        // Outside the repository: none of its Directory.Build.props or central package versions apply.
        string dir = Path.Combine(Path.GetTempPath(), $"xlp-consumer-{Environment.ProcessId}");
        if (Directory.Exists(dir))
            Directory.Delete(dir, recursive: true);
        Directory.CreateDirectory(dir);
        try
        {
            File.WriteAllText(Path.Combine(dir, "loader.csproj"), $"""
                <Project Sdk="Microsoft.NET.Sdk">
                  <PropertyGroup>
                    <OutputType>Exe</OutputType>
                    <TargetFramework>net10.0</TargetFramework>
                    <ImplicitUsings>enable</ImplicitUsings>
                    <Nullable>enable</Nullable>
                    <TreatWarningsAsErrors>true</TreatWarningsAsErrors>
                    <AnalysisLevel>latest-recommended</AnalysisLevel>
                  </PropertyGroup>
                  <ItemGroup>
                    <PackageReference Include="XenLivepatch.Control" Version="{VersionInfo.Version}" />
                  </ItemGroup>
                </Project>
                """);
            File.WriteAllText(Path.Combine(dir, "nuget.config"), $"""
                <?xml version="1.0" encoding="utf-8"?>
                <configuration>
                  <config><add key="globalPackagesFolder" value="{Path.Combine(dir, "packages")}" /></config>
                  <packageSources><clear /><add key="local" value="{Feed}" /></packageSources>
                </configuration>
                """);
            File.WriteAllText(Path.Combine(dir, "Program.cs"), sample, new UTF8Encoding(false));
            var build = Tool.Run("dotnet", ["build", Path.Combine(dir, "loader.csproj"), "-c", "Release", "--nologo", "-o", Path.Combine(dir, "out")], dir);
            Assert.True(build.ExitCode == 0, build.Stdout + build.Stderr);
            Assert.Contains(" 0 Warning(s)", build.Stdout, StringComparison.Ordinal);

            string socket = Path.Combine(dir, "s.sock");
            using var server = SandboxCommandTests.Start("sandbox", "--image", SandboxBuild.Image, "--socket", socket, "--vcpus", "1", "--quiet");
            try
            {
                Assert.True(Poll.Until(() => File.Exists(socket), 30_000, 20), "the sandbox did not create its socket");
                string payload = Path.Combine(SandboxBuild.Directory, "payloads", "xen_hello_world.livepatch");
                var run = Tool.Run("dotnet", [Path.Combine(dir, "out", "loader.dll"), payload, socket]);
                Assert.Equal((0, "xen_hello_world: applied\nxen_hello_world: Applied\n"), (run.ExitCode, run.Stdout));
                // A payload the hypervisor refuses: the failed call, Xen's errno, and nothing left behind.
                string bad = Path.Combine(dir, "xen_nothing.livepatch");
                File.WriteAllText(bad, "not a payload");
                var refused = Tool.Run("dotnet", [Path.Combine(dir, "out", "loader.dll"), bad, socket]);
                Assert.Equal(1, refused.ExitCode);
                Assert.StartsWith("xen_nothing: Upload failed: E", refused.Stdout, StringComparison.Ordinal);
                Assert.DoesNotContain("xen_nothing:", refused.Stdout.Split('\n', 2)[1], StringComparison.Ordinal);
            }
            finally
            {
                Tool.Run("kill", "-INT", server.Id.ToString(System.Globalization.CultureInfo.InvariantCulture));
                Assert.True(server.WaitForExit(30_000));
            }
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }
}
