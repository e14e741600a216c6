using System.Diagnostics.CodeAnalysis;
using XenLivepatch.Tooling;

namespace XenLivepatch.Host;

/// <summary>
/// A payload file as the host layer needs it: its bytes and checksum, and the build-ids that decide where it
/// may go — its own (<c>.note.gnu.build-id</c>), the one it applies on top of (<c>.livepatch.depends</c>) and the
/// hypervisor's it was made for (<c>.livepatch.xen_depends</c>) — with its metadata and whether REPLACE would
/// take it (payloads with pre/post hooks are refused by REPLACE with EOPNOTSUPP).
/// </summary>
public sealed class PayloadFile
{
    private PayloadFile(string name, string path, byte[] data, PayloadInfo info)
    {
        Name = name;
        Path = path;
        Data = data;
        Sha256 = Convert.ToHexStringLower(Host.Sha256.Hash(data));
        BuildId = Convert.ToHexStringLower(info.BuildId.Span);
        Depends = Convert.ToHexStringLower(info.Depends.Span);
        XenDepends = Convert.ToHexStringLower(info.XenDepends.Span);
        Metadata = info.Metadata;
        Functions = [.. info.Functions.Select(f => f.Name ?? "")];
        HasVetoingHooks = info.Hooks.Any(h => h.Kind is "preapply" or "postapply" or "prerevert" or "postrevert");
    }

    /// <summary>The name it is uploaded under.</summary>
    public string Name { get; }
    /// <summary>Where it was read from.</summary>
    public string Path { get; }
    /// <summary>Its bytes.</summary>
    public byte[] Data { get; }
    /// <summary>SHA-256 of <see cref="Data"/>, lowercase hex.</summary>
    public string Sha256 { get; }
    /// <summary>Its own build-id (hex; empty when missing).</summary>
    public string BuildId { get; }
    /// <summary>The build-id it applies on top of (hex; empty when missing).</summary>
    public string Depends { get; }
    /// <summary>The hypervisor build-id it was made for (hex; empty when missing, as in seed-2016 payloads).</summary>
    public string XenDepends { get; }
    /// <summary>Its <c>.modinfo</c> strings.</summary>
    public IReadOnlyList<string> Metadata { get; }
    /// <summary>The functions it patches (by name; empty for one given by address only).</summary>
    public IReadOnlyList<string> Functions { get; }
    /// <summary>True when it has pre/post apply/revert hooks (REPLACE refuses such a payload).</summary>
    public bool HasVetoingHooks { get; }

    /// <summary>
    /// The name Xen's <c>load</c> gives a file: its base name up to the last dot
    /// (<c>xen_hello_world.livepatch</c> is <c>xen_hello_world</c>).
    /// </summary>
    public static string NameOf(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        string b = System.IO.Path.GetFileName(path.TrimEnd('/'));
        int dot = b.LastIndexOf('.');
        return dot > 0 ? b[..dot] : b;
    }

    /// <summary>
    /// Reads <paramref name="path"/> (under <paramref name="name"/>, default <see cref="NameOf"/>); false with a
    /// message naming the file when it cannot be read or is not a payload this tool can read.
    /// </summary>
    public static bool TryRead(string path, string? name, [NotNullWhen(true)] out PayloadFile? file, [NotNullWhen(false)] out string? error)
    {
        ArgumentNullException.ThrowIfNull(path);
        file = null;
        byte[] data;
        try
        {
            data = File.ReadAllBytes(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            error = $"{path}: cannot read it: {e.Message}";
            return false;
        }
        return TryCreate(path, name ?? NameOf(path), data, out file, out error);
    }

    /// <summary>A payload from bytes already read.</summary>
    public static bool TryCreate(string path, string name, byte[] data, [NotNullWhen(true)] out PayloadFile? file, [NotNullWhen(false)] out string? error)
    {
        ArgumentNullException.ThrowIfNull(name);
        ArgumentNullException.ThrowIfNull(data);
        file = null;
        if (!IsValidName(name, out string? why))
        {
            error = $"{path}: {why}";
            return false;
        }
        if (!PayloadInfo.TryRead(System.IO.Path.GetFileName(path), data, out var info, out string? problem))
        {
            error = $"{path}: {problem}";
            return false;
        }
        if (info.BuildId.IsEmpty)
        {
            error = $"{path}: it has no build-id (.note.gnu.build-id): Xen refuses such a payload (EINVAL); rebuild it";
            return false;
        }
        file = new PayloadFile(name, path, data, info);
        error = null;
        return true;
    }

    /// <summary>Whether Xen takes <paramref name="name"/> as a payload name: 1 to 127 bytes, no NUL, no '/'.</summary>
    public static bool IsValidName(string name, [NotNullWhen(false)] out string? why)
    {
        ArgumentNullException.ThrowIfNull(name);
        int bytes = System.Text.Encoding.UTF8.GetByteCount(name);
        why = bytes == 0 ? "the payload name is empty"
            : bytes >= Abi.Livepatch.NameSize ? $"the payload name '{name}' is longer than Xen's {Abi.Livepatch.NameSize - 1} bytes"
            : name.Contains('\0', StringComparison.Ordinal) || name.Contains('/', StringComparison.Ordinal) ? $"the payload name '{name}' holds a NUL or a '/'"
            : name.StartsWith('.') ? $"the payload name '{name}' starts with a dot"
            : null;
        return why == null;
    }
}
