using XenLivepatch.Control;

namespace XenLivepatch.Cli;

/// <summary>
/// What the tool takes from its surroundings: how to open a transport, how to wait. The defaults are the real
/// ones (privcmd, the sandbox socket, a real 60 ms sleep); tests give an in-process hypervisor and no wait.
/// </summary>
public sealed class ToolHost
{
    /// <summary>The real surroundings.</summary>
    public static ToolHost Default { get; } = new();

    /// <summary>Opens the transport for a choice and an optional sandbox socket path.</summary>
    public Func<TransportChoice, string?, CancellationToken, Task<TransportOpenResult>> OpenTransport { get; init; } =
        (choice, path, ct) => LivepatchTransports.OpenAsync(choice, path, null, ct);

    /// <summary>
    /// Waits (the tool's 60 ms pause between an action and the GET that reads its outcome). The real one sleeps the
    /// thread, as Xen's nanosleep does: a timer would start the runtime's timer and thread-pool threads for it.
    /// </summary>
    public Func<TimeSpan, CancellationToken, Task> Delay { get; init; } = (time, cancellationToken) =>
    {
        cancellationToken.ThrowIfCancellationRequested();
        Thread.Sleep(time);
        return Task.CompletedTask;
    };
}
