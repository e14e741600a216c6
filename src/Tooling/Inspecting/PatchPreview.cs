using System.Buffers.Binary;
using System.Globalization;
using Iced.Intel;
using XenLivepatch.Elf;
using XenLivepatch.Hypervisor;

namespace XenLivepatch.Tooling;

/// <summary>One decoded instruction.</summary>
/// <param name="Address">Where it is.</param>
/// <param name="Bytes">Its bytes.</param>
/// <param name="Text">Its text (AT&amp;T syntax on x86-64, as objdump shows Xen's code).</param>
public sealed record Instruction(ulong Address, byte[] Bytes, string Text);

/// <summary>What applying one function would do to the hypervisor's code.</summary>
public sealed class FunctionPreview
{
    /// <summary>The old function's name (or its address when unnamed).</summary>
    public required string Name { get; init; }
    /// <summary>old_addr after loading.</summary>
    public required ulong OldAddress { get; init; }
    /// <summary>old_size.</summary>
    public required uint OldSize { get; init; }
    /// <summary>new_addr after loading (0 for NOPs).</summary>
    public required ulong NewAddress { get; init; }
    /// <summary>Bytes skipped before the patch (an ENDBR64 on x86).</summary>
    public required int PatchOffset { get; init; }
    /// <summary>The bytes the patch writes at <c>OldAddress + PatchOffset</c>.</summary>
    public required byte[] Patch { get; init; }
    /// <summary>The old code the patch covers, whole instructions; empty when the target has no code bytes.</summary>
    public required IReadOnlyList<Instruction> Before { get; init; }
    /// <summary>The same place once patched: the skipped bytes, then the patch.</summary>
    public required IReadOnlyList<Instruction> After { get; init; }
    /// <summary>Bytes of the last old instruction left after the patch (never reached), 0 when it ends exactly there.</summary>
    public required int Leftover { get; init; }
    /// <summary>A remark (no code bytes, expectation result), or null.</summary>
    public string? Note { get; init; }
}

/// <summary>The payload loaded into an offline hypervisor: its verdict and, per function, the code before and after.</summary>
public sealed class TargetPreview
{
    /// <summary>The hypervisor, as given.</summary>
    public required string Target { get; init; }
    /// <summary>Its build-id.</summary>
    public required ReadOnlyMemory<byte> BuildId { get; init; }
    /// <summary>The profile used.</summary>
    public required LivepatchProfile Profile { get; init; }
    /// <summary>The upload's refusal, or null when the payload loads.</summary>
    public LivepatchError? UploadError { get; init; }
    /// <summary>What the payload's .livepatch.depends matches: "the hypervisor" or "another payload".</summary>
    public string? DependsOn { get; init; }
    /// <summary>Per function.</summary>
    public IReadOnlyList<FunctionPreview> Functions { get; init; } = [];

    /// <summary>How many old-code bytes are shown at most per function.</summary>
    public const int MaxBytes = 64;

    /// <summary>Loads <paramref name="data"/> as <paramref name="name"/> into a fresh copy of <paramref name="target"/> and previews each patch.</summary>
    public static TargetPreview Create(string name, ReadOnlyMemory<byte> data, OfflineTarget target, LivepatchProfile profile)
    {
        ArgumentNullException.ThrowIfNull(target);
        ArgumentNullException.ThrowIfNull(profile);
        var hypervisor = target.Create();
        var arch = LivepatchArch.Get(target.Machine);
        var core = new LivepatchCore(profile, arch, hypervisor, hypervisor);
        if (core.Upload(name, data) is { } refused)
            return new TargetPreview { Target = target.Description, BuildId = target.BuildId, Profile = profile, UploadError = refused };
        var payload = core.Find(name)!;
        string? expectation = profile.SupportsExpectations && core.CheckExpectations(payload) is { } ee ? ee.ToString() : null;
        var functions = new List<FunctionPreview>();
        foreach (var f in payload.Functions)
        {
            byte[]? code = target.ReadCode(f.OldAddress, (int)Math.Min(f.Entry.OldSize, MaxBytes));
            // arch_livepatch_apply: after an ENDBR64 (or its poison) on x86 with CET-IBT handling.
            int offset = arch.PatchOffset(profile, code);
            int length = arch.PatchBytes(f.Entry, offset);
            var patch = new byte[length];
            arch.EncodePatch(f.Entry, f.OldAddress + (ulong)offset, patch);
            ulong end = f.OldAddress + (ulong)(offset + length);
            IReadOnlyList<Instruction> before = code == null ? [] : Decode(target.Machine, f.OldAddress, code, end);
            ulong covered = before.Count == 0 ? end : before[^1].Address + (ulong)before[^1].Bytes.Length;
            var patched = new byte[offset + length];
            code?.AsSpan(0, offset).CopyTo(patched);
            patch.CopyTo(patched, offset);
            var after = Decode(target.Machine, f.OldAddress, patched, end);
            string? note = code == null
                ? "no code bytes (a symbols-only target): the patch is shown as if the function had no ENDBR64"
                : expectation != null && f.Entry.Expect.Enabled ? expectation : null;
            functions.Add(new FunctionPreview
            {
                Name = f.Name.Length > 0 ? f.Name : string.Create(CultureInfo.InvariantCulture, $"0x{f.OldAddress:x}"),
                OldAddress = f.OldAddress,
                OldSize = f.Entry.OldSize,
                NewAddress = f.NewAddress,
                PatchOffset = offset,
                Patch = patch,
                Before = before,
                After = after,
                Leftover = code == null ? 0 : (int)(covered - end),
                Note = note,
            });
        }
        return new TargetPreview
        {
            Target = target.Description,
            BuildId = target.BuildId,
            Profile = profile,
            DependsOn = payload.Depends.Span.SequenceEqual(target.BuildId.Span) ? "the hypervisor" : "another payload",
            Functions = functions,
        };
    }

    /// <summary>Decodes <paramref name="code"/> at <paramref name="address"/> until an instruction reaches <paramref name="until"/>.</summary>
    public static IReadOnlyList<Instruction> Decode(ElfMachine machine, ulong address, byte[] code, ulong until)
    {
        ArgumentNullException.ThrowIfNull(code);
        var list = new List<Instruction>();
        if (machine == ElfMachine.AArch64)
        {
            for (int at = 0; at + 4 <= code.Length && address + (ulong)at < until; at += 4)
                list.Add(new Instruction(address + (ulong)at, code[at..(at + 4)], Arm64Text(address + (ulong)at, BinaryPrimitives.ReadUInt32LittleEndian(code.AsSpan(at)))));
            return list;
        }
        var reader = new ByteArrayCodeReader(code);
        var decoder = Decoder.Create(64, reader, address);
        var formatter = new GasFormatter();
        formatter.Options.BranchLeadingZeros = false;
        formatter.Options.UppercaseHex = false;
        var output = new StringOutput();
        ulong stop = address + (ulong)code.Length;
        while (decoder.IP < stop && decoder.IP < until)
        {
            ulong at = decoder.IP;
            decoder.Decode(out var instruction);
            int length = instruction.Length;
            string text;
            if (instruction.IsInvalid || length == 0)
            {
                // Cut short by the end of the bytes shown, or not an instruction at all.
                length = decoder.LastError == DecoderError.NoMoreBytes ? (int)(stop - at) : 1;
                text = "(bad)";
                reader.Position = (int)(at - address) + length;
                decoder.IP = at + (ulong)length;
            }
            else
            {
                formatter.Format(instruction, output);
                text = output.ToStringAndReset();
            }
            int from = (int)(at - address);
            list.Add(new Instruction(at, code[from..Math.Min(code.Length, from + length)], text));
        }
        return list;
    }

    // The two arm64 instructions a patch writes; other words are shown as data (Iced decodes x86 only).
    private static string Arm64Text(ulong address, uint word)
    {
        if (word == 0xD503201F)
            return "nop";
        if ((word & 0xFC000000) == 0x14000000)
        {
            long offset = (int)((word & 0x03FFFFFF) << 6) >> 4; // imm26, sign-extended, times 4
            return string.Create(CultureInfo.InvariantCulture, $"b 0x{address + (ulong)offset:x}");
        }
        return string.Create(CultureInfo.InvariantCulture, $".inst 0x{word:x8}");
    }
}
