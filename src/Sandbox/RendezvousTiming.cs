namespace XenLivepatch.Sandbox;

/// <summary>The timing of one rendezvous, in nanoseconds.</summary>
/// <param name="PauseNs">From the master's election to the release of the others: how long the vCPUs were held.</param>
/// <param name="WorkNs">The action itself (patching), inside the pause.</param>
/// <param name="Rc">0, or -EBUSY when a vCPU missed the deadline.</param>
/// <param name="ArriveNs">From the master's election until every other vCPU had reached its safe point (phase 1).</param>
/// <param name="WaitNs">From the moment the vCPUs could take the work up until the master's election (the vCPUs ran guest code meanwhile).</param>
/// <param name="ExtendedNs">
/// How long the round waited past its wall-clock deadline for vCPUs whose threads the host had not run for the timeout
/// (0 when every vCPU came in time).
/// </param>
public readonly record struct RendezvousTiming(double PauseNs, double WorkNs, int Rc, double ArriveNs = 0, double WaitNs = 0, double ExtendedNs = 0)
{
    /// <summary>The pause as a <see cref="TimeSpan"/> (100 ns resolution).</summary>
    public TimeSpan Pause => TimeSpan.FromTicks((long)(PauseNs / 100));
}
