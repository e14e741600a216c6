using System.Diagnostics;

namespace XenLivepatch.Bench;

/// <summary>Times an action: warm-up, then samples until enough runs and time have passed.</summary>
internal static class Harness
{
    public static double[] Sample(Action action, int minRuns = 30, double minSeconds = 1.0)
    {
        for (int i = 0; i < 5; i++)
            action();
        var samples = new List<double>();
        var total = Stopwatch.StartNew();
        while (samples.Count < minRuns || total.Elapsed.TotalSeconds < minSeconds)
        {
            long t0 = Stopwatch.GetTimestamp();
            action();
            samples.Add(Stopwatch.GetElapsedTime(t0).TotalSeconds);
            if (samples.Count > 100_000)
                break;
        }
        samples.Sort();
        return [.. samples];
    }

    public static double Percentile(double[] sorted, double p) => sorted[Math.Min(sorted.Length - 1, (int)(p / 100 * sorted.Length))];
}
