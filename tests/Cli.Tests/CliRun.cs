namespace XenLivepatch.Cli.Tests;

/// <summary>What one run of the tool printed and returned.</summary>
public sealed record CliRun(int ExitCode, string Stdout, string Stderr)
{
    /// <summary>Runs our tool in-process with captured writers.</summary>
    public static CliRun Ours(params string[] args)
    {
        var stdout = new StringWriter();
        var stderr = new StringWriter();
        int code = XenLivepatchTool.Run(args, stdout, stderr);
        return new CliRun(code, stdout.ToString(), stderr.ToString());
    }
}
