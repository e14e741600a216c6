using System.Globalization;
using System.Text;

namespace XenLivepatch.Cli;

/// <summary>How the sandbox's log lines are written.</summary>
internal enum LogFormat
{
    /// <summary>A timestamp (UTC, ISO 8601 with milliseconds) and a level before each line: a terminal or a log file.</summary>
    Text,
    /// <summary>
    /// systemd's journal: each line starts with its syslog priority as <c>&lt;N&gt;</c> (sd-daemon(3)); the journal
    /// stamps the time itself. Chosen when the journal is stdout (<c>$JOURNAL_STREAM</c> is set).
    /// </summary>
    Journal,
}

/// <summary>
/// The sandbox's log as a daemon's: every line gets a level and, outside the journal, a timestamp. The level is
/// read from the line (the sandbox, the socket server and the hypervisor's console write plain lines): a refused
/// or failed sysctl, a closed connection, a console line of an error are warnings or errors, the rest is information.
/// </summary>
internal sealed class DaemonLog : TextWriter
{
    private readonly TextWriter _inner;
    private readonly LogFormat _format;
    private readonly Func<DateTime> _clock;
    private readonly StringBuilder _line = new();

    public DaemonLog(TextWriter inner, LogFormat format, Func<DateTime>? clock = null)
    {
        _inner = inner;
        _format = format;
        _clock = clock ?? (() => DateTime.UtcNow);
    }

    /// <summary>The format for this process: the journal's when systemd connected stdout to it.</summary>
    public static LogFormat Detect() =>
        string.IsNullOrEmpty(Environment.GetEnvironmentVariable("JOURNAL_STREAM")) ? LogFormat.Text : LogFormat.Journal;

    public override Encoding Encoding => Encoding.UTF8;

    public override void Write(char value)
    {
        if (value == '\n')
        {
            Flush(_line.ToString());
            _line.Clear();
        }
        else if (value != '\r')
        {
            _line.Append(value);
        }
    }

    public override void Write(string? value)
    {
        foreach (char c in value ?? "")
            Write(c);
    }

    public override void WriteLine(string? value)
    {
        Write(value);
        Write('\n');
    }

    /// <summary>The syslog priority of a line (3 error, 4 warning, 6 information).</summary>
    public static int Priority(string line)
    {
        if (line.StartsWith("sysctl: ", StringComparison.Ordinal))
            return line.Contains(" -> -", StringComparison.Ordinal) || line.EndsWith("; closing", StringComparison.Ordinal) ? 4 : 6;
        if (line.Contains("cannot", StringComparison.OrdinalIgnoreCase))
            return 3;
        if (line.StartsWith("(XEN) ", StringComparison.Ordinal) &&
            (line.Contains("error", StringComparison.OrdinalIgnoreCase) || line.Contains("fail", StringComparison.OrdinalIgnoreCase) ||
             line.Contains("refus", StringComparison.OrdinalIgnoreCase)))
            return 4;
        return 6;
    }

    private static string LevelName(int priority) => priority switch
    {
        <= 3 => "error",
        4 => "warn ",
        _ => "info ",
    };

    private void Flush(string line)
    {
        int priority = Priority(line);
        _inner.Write(_format == LogFormat.Journal
            ? string.Create(CultureInfo.InvariantCulture, $"<{priority}>{line}\n")
            : string.Create(CultureInfo.InvariantCulture, $"{_clock():yyyy-MM-ddTHH:mm:ss.fffZ} {LevelName(priority)} {line}\n"));
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing && _line.Length > 0)
        {
            Flush(_line.ToString());
            _line.Clear();
        }
        base.Dispose(disposing);
    }
}
