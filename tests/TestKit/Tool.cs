using System.Diagnostics;
using System.Text;

namespace XenLivepatch.TestKit;

/// <summary>The result of running an external program.</summary>
public sealed record ToolResult(string Command, int ExitCode, string Stdout, string Stderr)
{
    /// <summary>Throws with the whole transcript unless the program exited 0.</summary>
    public ToolResult EnsureSuccess()
    {
        if (ExitCode != 0)
            throw new InvalidOperationException($"'{Command}' exited {ExitCode}\nstdout:\n{Stdout}\nstderr:\n{Stderr}");
        return this;
    }
}

/// <summary>Runs the real toolchain (gcc, ld, readelf, objcopy) that the tests use as oracles.</summary>
public static class Tool
{
    /// <summary>Runs <paramref name="file"/> with <paramref name="args"/> and waits (at most two minutes).</summary>
    public static ToolResult Run(string file, IEnumerable<string> args, string? workingDirectory = null, byte[]? stdin = null)
    {
        var psi = new ProcessStartInfo(file)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = stdin != null,
            UseShellExecute = false,
            WorkingDirectory = workingDirectory ?? Directory.GetCurrentDirectory(),
        };
        foreach (string a in args)
            psi.ArgumentList.Add(a);
        psi.Environment["LC_ALL"] = "C";
        string command = file + " " + string.Join(' ', psi.ArgumentList);
        using var p = Process.Start(psi) ?? throw new InvalidOperationException("cannot start " + file);
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        if (stdin != null)
        {
            p.StandardInput.BaseStream.Write(stdin);
            p.StandardInput.Close();
        }
        if (!p.WaitForExit(TimeSpan.FromMinutes(2)))
        {
            p.Kill(entireProcessTree: true);
            throw new TimeoutException($"'{command}' did not finish in two minutes");
        }
        return new ToolResult(command, p.ExitCode, stdout.GetAwaiter().GetResult(), stderr.GetAwaiter().GetResult());
    }

    /// <summary>Runs a program with arguments.</summary>
    public static ToolResult Run(string file, params string[] args) => Run(file, (IEnumerable<string>)args);

    /// <summary>True when <paramref name="name"/> is on PATH.</summary>
    public static bool Exists(string name) =>
        (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':').Any(d => d.Length > 0 && File.Exists(System.IO.Path.Combine(d, name)));

    /// <summary>Compiles C source text with <paramref name="compiler"/> into an object file and returns its path.</summary>
    public static string CompileC(string source, string directory, string name, string compiler = "gcc", params string[] flags)
    {
        string c = System.IO.Path.Combine(directory, name + ".c");
        string o = System.IO.Path.Combine(directory, name + ".o");
        File.WriteAllText(c, source, Encoding.UTF8);
        Run(compiler, ["-c", "-ffreestanding", "-fno-stack-protector", .. flags, c, "-o", o]).EnsureSuccess();
        return o;
    }
}
