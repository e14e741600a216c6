namespace XenLivepatch.Abi;

/// <summary>
/// Where one C member lives in a structure: its C path (<c>name.size</c>, <c>u.list.nr</c>), offset and size.
/// The encoders read and write exactly these offsets; the tests compare them with what gcc lays out.
/// </summary>
public readonly record struct AbiField(string Path, int Offset, int Size)
{
    /// <summary>Prefixes the path and shifts the offset (for nested structures).</summary>
    public AbiField Within(string parent, int offset) => new(parent + "." + Path, Offset + offset, Size);
}
