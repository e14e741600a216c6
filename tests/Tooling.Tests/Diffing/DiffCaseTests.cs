using System.Globalization;
using XenLivepatch.Elf;
using XenLivepatch.TestKit;
using XenLivepatch.Tooling.Diffing;

namespace XenLivepatch.Tooling.Tests.Diffing;

/// <summary>
/// <c>diff</c> on gcc-built object pairs, one case per kind of change (tests/Data/diff/cases.txt): the changed,
/// new and refused symbols are those expected; every object written passes GNU <c>ld -r</c>, and a payload
/// built from it against the original objects' image is accepted by the livepatch core (<c>build</c>'s check).
/// </summary>
public class DiffCaseTests
{
    public sealed record Case(int Line, string Name, string Object, string Outcome, IReadOnlyDictionary<string, string[]> Lists)
    {
        public override string ToString() => $"{Name} {Object} (line {Line})";

        public string[] List(string key) => Lists.TryGetValue(key, out var v) ? v : [];
    }

    public static TheoryData<Case> Cases()
    {
        var data = new TheoryData<Case>();
        int n = 0;
        foreach (string raw in File.ReadLines(Repo.Path("tests", "Data", "diff", "cases.txt")))
        {
            n++;
            string line = raw.Trim();
            if (line.Length == 0 || line.StartsWith('#'))
                continue;
            var parts = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
            var lists = new Dictionary<string, string[]>(StringComparer.Ordinal);
            foreach (string p in parts[3..])
            {
                int eq = p.IndexOf('=', StringComparison.Ordinal);
                lists[p[..eq]] = p[(eq + 1)..].Split(',', StringSplitOptions.RemoveEmptyEntries);
            }
            data.Add(new Case(n, parts[0], parts[1], parts[2], lists));
        }
        return data;
    }

    private static readonly Dictionary<string, DiffTree> s_patched = new(StringComparer.Ordinal);

    private static DiffTree Patched(string name)
    {
        lock (s_patched)
        {
            if (!s_patched.TryGetValue(name, out var t))
                s_patched[name] = t = DiffTree.Build(name, DiffTree.Patch(name));
            return t;
        }
    }

    private static string Show(DiffSymbol s) => s.HypervisorName.Length > 0 ? s.HypervisorName : s.Name;

    [Theory]
    [MemberData(nameof(Cases))]
    public void Diff_finds_what_the_case_expects(Case c)
    {
        var original = DiffTree.Original;
        var patched = Patched(c.Name);
        byte[] a = File.ReadAllBytes(original.Path(c.Object));
        byte[] b = File.ReadAllBytes(patched.Path(c.Object));
        if (c.Outcome == "identical")
        {
            Assert.Equal(a, b);
            Assert.Equal(DiffOutcome.NothingToPatch, Run(original, patched, c).Outcome);
            return;
        }
        Assert.NotEqual(a, b);
        var r = Run(original, patched, c);
        string report = Describe(r);
        Assert.True(c.Outcome switch { "changed" => r.Outcome == DiffOutcome.Changed, "nothing" => r.Outcome == DiffOutcome.NothingToPatch, _ => r.Outcome == DiffOutcome.Refused }, report);
        Assert.Equal(c.List("changed").Order(), r.Changed.Select(Show).Order());
        Assert.Equal(c.List("new").Order(), r.New.Select(Show).Order());
        Assert.Equal(c.List("data").Order(), r.NewData.Select(Show).Order());
        Assert.Equal(c.List("refused").Order(), r.Refusals.Select(x => $"{x.Section}:{x.Symbol}").Order());
        foreach (string reference in c.List("refs"))
            Assert.Contains(reference, r.References);
        if (r.Outcome != DiffOutcome.Changed)
        {
            Assert.Null(r.Output);
            return;
        }

        // What it wrote: an object ld takes, with the sections the case needs, that makes a payload the core accepts.
        string output = Path.Combine(patched.Directory, c.Object + ".diff.o");
        File.WriteAllBytes(output, r.Output!);
        Tool.Run("ld", "-r", "-o", output + ".ld.o", output).EnsureSuccess();
        var written = ElfFile.Read(r.Output!);
        foreach (string section in c.List("sections"))
            Assert.True(written.FindSection(section) >= 0, $"{section} is missing from the output\n{report}");
        Assert.True(OfflineTarget.TryFromImage("xen-syms", ElfFile.Read(File.ReadAllBytes(original.Image)), out var target, out string? error), error);
        var request = new PayloadBuildRequest { Name = "diff_" + c.Name.Replace('-', '_'), Target = target, Objects = [new LinkInput(c.Object, written)] };
        Assert.True(PayloadBuilder.TryBuild(request, out var built, out var problem), problem?.ToString());
        Assert.NotNull(built.Check.Loaded);
        Assert.Equal(c.List("changed").Order(), built.Functions.Select(f => f.Name).Order());
    }

    private static DiffResult Run(DiffTree original, DiffTree patched, Case c) =>
        ObjectDiff.Run(new DiffInput(c.Object, original.Read(c.Object)), new DiffInput(c.Object, patched.Read(c.Object)), [DiffTree.Patch(c.Name)]);

    private static string Describe(DiffResult r) => string.Create(CultureInfo.InvariantCulture,
        $"{r.Outcome}: changed [{string.Join(", ", r.Changed.Select(Show))}] new [{string.Join(", ", r.New.Select(Show))}] data [{string.Join(", ", r.NewData.Select(Show))}] refused [{string.Join("; ", r.Refusals)}] notes [{string.Join("; ", r.Notes)}] {r.Problem}");
}
