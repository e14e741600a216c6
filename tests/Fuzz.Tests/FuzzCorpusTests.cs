using XenLivepatch.TestKit;

namespace XenLivepatch.Fuzz.Tests;

/// <summary>
/// Every input kept in fuzz/corpus (the seeds, what afl++ found interesting, and every input that once broke a
/// contract) runs through its target in this process: each is refused through the parser's own error path or
/// accepted, within its memory budget.
/// </summary>
public class FuzzCorpusTests
{
    public static TheoryData<string> TargetNames() => [.. Targets.All.Select(t => t.Name)];

    [Theory]
    [MemberData(nameof(TargetNames))]
    public void Every_corpus_input_keeps_the_target_s_contract(string name)
    {
        var target = Targets.Named(name)!;
        var files = Replay.Files([Repo.Path("fuzz", "corpus", name)]);
        Assert.NotEmpty(files);
        var broken = files.Select(f => (File: Path.GetFileName(f), Problem: Replay.Check(target, File.ReadAllBytes(f))))
            .Where(r => r.Problem != null).ToList();
        Assert.True(broken.Count == 0, string.Join("\n", broken.Select(b => $"{b.File}: {b.Problem}")));
    }

    [Fact]
    public void A_broken_contract_is_reported_not_swallowed()
    {
        // The wire target's peer stream, replayed with a frame that claims more than the wire allows: the server
        // closes the conversation (its contract), so the harness reports nothing; a target that throws is reported.
        var wire = Targets.Named("wire")!;
        Assert.Null(Replay.Check(wire, [0, 0xff, 0xff, 0xff, 0x7f]));
        var throwing = new FuzzTarget("throws", "a target that breaks its contract", _ => throw new ContractViolation("broken"));
        Assert.Contains("broken", Replay.Check(throwing, [1]), StringComparison.Ordinal);
    }
}
