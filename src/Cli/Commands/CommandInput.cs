using System.Diagnostics.CodeAnalysis;
using XenLivepatch.Control;
using XenLivepatch.Elf;
using XenLivepatch.Host;
using XenLivepatch.Sandbox;
using XenLivepatch.Tooling;
using XenLivepatch.Hypervisor;

namespace XenLivepatch.Cli;

/// <summary>
/// What our own commands read the same way: files, and the hypervisor given as <c>--target IMAGE</c> or as
/// <c>--symbols FILE --build-id HEX [--arch A]</c>. Messages start with "xen-livepatch COMMAND:" and say what to
/// do next; unreadable inputs exit with <see cref="OwnExitCodes.NoInput"/>, wrong command lines with
/// <see cref="OwnExitCodes.Usage"/>.
/// </summary>
internal static class CommandInput
{
    /// <summary>The options that give the hypervisor.</summary>
    public static readonly string[] TargetOptions = ["--target", "--symbols", "--build-id", "--arch"];

    /// <summary>Reports a wrong command line and returns <see cref="OwnExitCodes.Usage"/>.</summary>
    public static int Usage(string command, TextWriter stderr, string problem)
    {
        stderr.Write($"xen-livepatch {command}: {problem}\n(see 'xen-livepatch {command} --help')\n");
        return OwnExitCodes.Usage;
    }

    /// <summary>
    /// The profile <c>--profile</c> names (<see cref="LivepatchProfile.Xen417"/> without one); false after a usage
    /// error on stderr (exit 64) that lists the profiles.
    /// </summary>
    public static bool TryProfile(string command, string? name, TextWriter stderr, [NotNullWhen(true)] out LivepatchProfile? profile, out int code)
    {
        profile = LivepatchProfile.FromName(name ?? LivepatchProfile.Xen417.Name);
        code = profile == null ? Usage(command, stderr, $"unknown profile '{name}': use {LivepatchProfile.Names}") : 0;
        return profile != null;
    }

    /// <summary>Reads a file, or reports why it cannot be read.</summary>
    public static bool TryRead(string command, string path, TextWriter stderr, out byte[] data)
    {
        try
        {
            data = File.ReadAllBytes(path);
            return true;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            stderr.Write($"xen-livepatch {command}: {FileProblem.Reading(path, e)}\n");
            data = [];
            return false;
        }
    }

    /// <summary>
    /// Writes <paramref name="data"/> to <paramref name="output"/> whole or not at all (a temporary file beside it,
    /// then renamed over it), or reports why it cannot.
    /// </summary>
    public static bool TryWrite(string command, string output, ReadOnlySpan<byte> data, TextWriter stderr)
    {
        if (output.Length == 0 || Directory.Exists(output))
        {
            stderr.Write($"xen-livepatch {command}: cannot write {output}: {FileProblem.WriteReason(output, null)}\n");
            return false;
        }
        string full = Path.GetFullPath(output);
        string temporary = Path.Combine(Path.GetDirectoryName(full) ?? ".", $".{Path.GetFileName(full)}.{Environment.ProcessId}.tmp");
        try
        {
            using (var f = File.Create(temporary))
                f.Write(data);
            File.Move(temporary, full, overwrite: true);
            return true;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            try { File.Delete(temporary); }
            catch (Exception d) when (d is IOException or UnauthorizedAccessException) { }
            stderr.Write($"xen-livepatch {command}: {FileProblem.Writing(output, e)}\n");
            return false;
        }
    }

    /// <summary>Reads a file as ELF, or reports why it cannot be.</summary>
    public static bool TryReadElf(string command, string path, TextWriter stderr, [NotNullWhen(true)] out ElfFile? file)
    {
        file = null;
        if (!TryRead(command, path, stderr, out byte[] data))
            return false;
        if (ElfFile.TryRead(data, out file, out var error))
            return true;
        stderr.Write($"xen-livepatch {command}: {path} is not an ELF file: {error}\n");
        return false;
    }

    /// <summary>
    /// The hypervisor the options give, or, with neither --target nor --symbols, the running one when one answers
    /// (<see cref="Running"/>; a note on stderr says which); on failure <paramref name="code"/> is the exit code.
    /// <paramref name="options"/> are the tool's options before the command (--xen, --sandbox PATH), which say where
    /// to look for the running hypervisor.
    /// </summary>
    public static bool TryTarget(string command, ArgReader a, TextWriter stderr, [NotNullWhen(true)] out OfflineTarget? target, out int code,
        ToolOptions? options = null)
    {
        target = null;
        code = OwnExitCodes.Success;
        string? image = a.Value("--target");
        string? symbols = a.Value("--symbols");
        if (image != null && symbols != null)
        {
            code = Usage(command, stderr, "give the hypervisor once: --target <image>, or --symbols <file> with --build-id <hex>");
            return false;
        }
        if (image == null && symbols == null)
        {
            var running = Running(options);
            if (running.Target != null)
            {
                stderr.Write($"xen-livepatch {command}: target: {running.Description}\n");
                target = running.Target;
                return true;
            }
            code = Usage(command, stderr, $"give the hypervisor: --target <image>, or --symbols <file> with --build-id <hex> ({running.Problem})");
            return false;
        }
        string? why;
        if (image != null)
        {
            if (!TryReadElf(command, image, stderr, out var elf))
            {
                code = OwnExitCodes.NoInput;
                return false;
            }
            if (!OfflineTarget.TryFromImage(Path.GetFileName(image), elf, out target, out why))
            {
                stderr.Write($"xen-livepatch {command}: {image}: {why}\n");
                code = OwnExitCodes.NoInput;
                return false;
            }
            if (target.BuildId.IsEmpty)
                stderr.Write($"xen-livepatch {command}: note: {image} has no GNU build-id; payloads will be refused with ENODATA\n");
            return true;
        }
        string? hex = a.Value("--build-id");
        if (hex == null)
        {
            code = Usage(command, stderr, "--symbols needs --build-id <hex> (from /sys/hypervisor/properties/buildid)");
            return false;
        }
        if (!TryHex(hex, out byte[] id))
        {
            code = Usage(command, stderr, $"--build-id '{hex}' is not hexadecimal");
            return false;
        }
        var machine = (a.Value("--arch") ?? "x86_64") switch
        {
            "x86_64" or "x86-64" or "amd64" => ElfMachine.X86_64,
            "arm64" or "aarch64" => ElfMachine.AArch64,
            _ => ElfMachine.None,
        };
        if (machine == ElfMachine.None)
        {
            code = Usage(command, stderr, $"unknown --arch '{a.Value("--arch")}': use x86_64 or arm64");
            return false;
        }
        string text;
        try
        {
            text = File.ReadAllText(symbols!);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            stderr.Write($"xen-livepatch {command}: {FileProblem.Reading(symbols!, e)}\n");
            code = OwnExitCodes.NoInput;
            return false;
        }
        if (!OfflineTarget.TryFromXenSyms(Path.GetFileName(symbols)!, text, id, machine, out target, out why))
        {
            stderr.Write($"xen-livepatch {command}: {symbols}: {why}\n");
            code = OwnExitCodes.NoInput;
            return false;
        }
        return true;
    }

    /// <summary>
    /// Checks that the sandbox image exists and is a hypervisor image before booting it, or says what it is and
    /// where the image is looked for (a binary copied out of the repository finds no artifacts/ beside it).
    /// </summary>
    public static bool TrySandboxImage(string command, string image, bool given, TextWriter stderr)
    {
        if (!File.Exists(image))
        {
            stderr.Write(given
                ? $"xen-livepatch {command}: {FileProblem.Reading(image, null)}; run ./build.sh to make the image (artifacts/sandbox/xen-syms)\n"
                : $"xen-livepatch {command}: no sandbox image found. It is looked for in $XEN_LIVEPATCH_SANDBOX_IMAGE, then as\n" +
                  $"  artifacts/sandbox/xen-syms, sandbox/xen-syms or lib/xen-livepatch/sandbox/xen-syms in {ProgramLocation.Directory.TrimEnd('/')}\n" +
                  "  and the directories above it.\n" +
                  "  ./build.sh makes artifacts/sandbox/xen-syms in the repository: set XEN_LIVEPATCH_SANDBOX_IMAGE to it, copy it to\n" +
                  $"  {Path.Combine(ProgramLocation.Directory, "sandbox", "xen-syms")}, or give --image <file>\n");
            return false;
        }
        byte[] head;
        try
        {
            head = File.ReadAllBytes(image);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            stderr.Write($"xen-livepatch {command}: {FileProblem.Reading(image, e)}\n");
            return false;
        }
        var kind = FileKind.Of(head);
        if (kind.Kind != "hypervisor-image")
        {
            stderr.Write($"xen-livepatch {command}: {image} is {kind.Description}, not a sandbox hypervisor image: give the image ./build.sh makes (artifacts/sandbox/xen-syms)\n");
            return false;
        }
        return true;
    }

    /// <summary>
    /// The running hypervisor as a target (the one reusable call for commands that default to it): through the
    /// transport the options choose (default: /dev/xen/privcmd, else the sandbox socket), its build-id from
    /// XENVER_build_id, its symbols from /proc/xen/xensyms on real Xen, or the sandbox image with that build-id.
    /// </summary>
    public static RunningTargetResult Running(ToolOptions? options = null) =>
        RunningTarget.FindAsync(options?.Transport ?? TransportChoice.Auto, options?.SandboxPath, SandboxImages()).GetAwaiter().GetResult();

    /// <summary>The images a sandbox may run: the default one (see <see cref="SandboxImage.DefaultPath"/>).</summary>
    public static IEnumerable<string> SandboxImages() => [SandboxImage.DefaultPath()];

    /// <summary>Parses hex (spaces around it ignored).</summary>
    public static bool TryHex(string hex, out byte[] bytes)
    {
        try
        {
            bytes = Convert.FromHexString(hex.Trim());
            return true;
        }
        catch (FormatException)
        {
            bytes = [];
            return false;
        }
    }
}
