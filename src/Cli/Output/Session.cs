using XenLivepatch.Control;

namespace XenLivepatch.Cli;

/// <summary>The options that come before the command.</summary>
/// <param name="Force">--force: LIVEPATCH_FLAG_FORCE on upload (newer Xen's option).</param>
/// <param name="Json">--json: one JSON object on stdout instead of Xen's texts (our addition).</param>
/// <param name="Transport">--xen or --sandbox: which hypervisor (default: privcmd if present, else the sandbox).</param>
/// <param name="SandboxPath">--sandbox PATH: the sandbox socket.</param>
public sealed record ToolOptions(bool Force = false, bool Json = false, TransportChoice Transport = TransportChoice.Auto, string? SandboxPath = null);

/// <summary>What one step of a command did, for <c>--json</c>.</summary>
internal sealed class StepRecord
{
    public required string Op { get; init; }
    public string? Name { get; set; }
    public string? File { get; set; }
    /// <summary>"completed", "failed" or "no-action".</summary>
    public string Outcome { get; set; } = "failed";
    public int? Errno { get; set; }
    public uint? State { get; set; }
    public int? Rc { get; set; }
    public List<string> Messages { get; } = [];
    /// <summary>The hypervisor's signature check of the payload (get), when it reports one.</summary>
    public PayloadSignatureStatus? Signature { get; set; }
}

/// <summary>
/// One run of a hypervisor command: the writers (Xen's texts go out as they happen, stdout unflushed text
/// included, as the C tool's unbuffered stdout does), the steps recorded for <c>--json</c>, and the client,
/// opened on first use.
/// </summary>
internal sealed class Session : IAsyncDisposable
{
    private readonly TextWriter _stdout;
    private readonly TextWriter _stderr;
    private readonly ToolHost _host;
    private readonly CancellationToken _cancellationToken;
    private readonly Func<string, string>? _synopsis;
    private LivepatchClient? _client;

    /// <summary>A session of <paramref name="command"/>; <paramref name="synopsis"/> gives a command's arguments for
    /// the JSON mode's line on a wrong command line (the whole tool's command table; the front runs no JSON).</summary>
    public Session(string command, ToolOptions options, TextWriter stdout, TextWriter stderr, ToolHost host, CancellationToken cancellationToken,
        Func<string, string>? synopsis = null)
    {
        _synopsis = synopsis;
        Command = command;
        Options = options;
        _stdout = stdout;
        _stderr = stderr;
        _host = host;
        _cancellationToken = cancellationToken;
    }

    public string Command { get; }
    public TextWriter Stderr => _stderr;
    public ToolOptions Options { get; }
    public bool Json => Options.Json;
    public CancellationToken CancellationToken => _cancellationToken;
    public List<StepRecord> Steps { get; } = [];
    public StepRecord? Current { get; private set; }

    /// <summary>Set when no transport could be opened: (problem, advice).</summary>
    public (string Problem, string Advice)? HandlerFailure { get; private set; }

    /// <summary>Set when the transport opened with a warning (not privileged, no live patching).</summary>
    public string? Warning { get; private set; }

    /// <summary>The list a <c>list</c> printed, for <c>--json</c>.</summary>
    public IReadOnlyList<LivepatchListEntry>? Listed { get; set; }

    /// <summary>The build-id <c>buildid</c> printed, for <c>--json</c>.</summary>
    public string? BuildId { get; set; }

    /// <summary>The dump <c>dump</c> printed, for <c>--json</c>.</summary>
    public LivepatchDump? Dump { get; set; }

    /// <summary>The payload <c>get</c> found in the 'x' dump, for <c>--json</c>.</summary>
    public DumpedPayload? Details { get; set; }

    /// <summary>What the transport talks to, once opened ("Xen through /dev/xen/privcmd"), or null.</summary>
    public string? TransportDescription => _client?.Transport.Description;

    /// <summary>The listed payloads' signature checks, as the hypervisor reports them (list --json).</summary>
    public Dictionary<string, PayloadSignatureStatus?> Signatures { get; } = new(StringComparer.Ordinal);

    /// <summary>The hypervisor's record of <paramref name="name"/>'s signature check; null when it reports none.</summary>
    public async Task<PayloadSignatureStatus?> SignatureAsync(LivepatchClient client, string name)
    {
        try
        {
            return await client.GetSignatureStatusAsync(name, CancellationToken).ConfigureAwait(false);
        }
        catch (LivepatchTransportException)
        {
            // A sandbox of an older build closes the connection on a request it does not know: no report.
            return null;
        }
    }

    public StepRecord Begin(string op, string? name = null)
    {
        Current = new StepRecord { Op = op, Name = name };
        Steps.Add(Current);
        return Current;
    }

    /// <summary>Xen's stdout text (nothing in JSON mode).</summary>
    public void Out(string text)
    {
        if (!Json)
            _stdout.Write(text);
    }

    /// <summary>Xen's stderr text (in JSON mode it becomes the current step's messages).</summary>
    public void Err(string text)
    {
        if (!Json)
        {
            _stderr.Write(text);
            return;
        }
        foreach (string line in text.Split('\n', StringSplitOptions.RemoveEmptyEntries))
            (Current ?? Begin(Command)).Messages.Add(line);
    }

    /// <summary>Set when the command line was wrong (the JSON's "error": "usage").</summary>
    public bool UsageError { get; private set; }

    /// <summary>
    /// A wrong command line for one of Xen's commands: Xen's help text on stderr; in JSON mode one line naming the
    /// command's arguments instead (the JSON's message).
    /// </summary>
    public void Help()
    {
        UsageError = true;
        if (!Json)
        {
            _stderr.Write(Usage.Help);
            return;
        }
        string synopsis = _synopsis?.Invoke(Command) ?? "";
        _stderr.Write($"xen-livepatch {Command}: wrong arguments; usage: xen-livepatch {Command}{(synopsis.Length > 0 ? " " + synopsis : "")}\n");
    }

    /// <summary>A wrong command line for one of our commands: <paramref name="text"/> on stderr.</summary>
    public void UsageProblem(string text)
    {
        UsageError = true;
        _stderr.Write(text);
    }

    /// <summary>Our own commands' report on stdout (text or JSON, written whole).</summary>
    public void Write(string text) => _stdout.Write(text);

    /// <summary>
    /// The client, opening the transport on first use. Null when none can be opened: then the problem and the
    /// way out are on stderr, followed by Xen's own line "failed to get the handler".
    /// </summary>
    public async Task<LivepatchClient?> ClientAsync()
    {
        if (_client != null || HandlerFailure != null)
            return _client;
        var opened = await _host.OpenTransport(Options.Transport, Options.SandboxPath, _cancellationToken).ConfigureAwait(false);
        if (opened.Transport == null)
        {
            HandlerFailure = (opened.Problem ?? "no transport", opened.Advice ?? "");
            if (!Json)
                _stderr.Write($"xen-livepatch: {opened.Problem}\n  {opened.Advice}\nfailed to get the handler\n");
            return null;
        }
        Warning = opened.Warning;
        if (Warning != null && !Json)
            _stderr.Write($"xen-livepatch: warning: {Warning}\n");
        _client = new LivepatchClient(opened.Transport);
        return _client;
    }

    public Task Delay(TimeSpan time) => _host.Delay(time, _cancellationToken);

    public async ValueTask DisposeAsync()
    {
        if (_client != null)
            await _client.DisposeAsync().ConfigureAwait(false);
    }
}
