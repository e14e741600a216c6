using XenLivepatch.Abi;
using XenLivepatch.Control;
using XenLivepatch.Hypervisor;

namespace XenLivepatch.TestKit;

/// <summary>
/// A whole hypervisor in the test process: the livepatch core over an offline target built from a test image
/// (tests/Data/hypervisor), behind the same <c>do_sysctl</c> entry point every transport reaches. Actions finish
/// at once (the offline CPUs run them immediately).
/// </summary>
public sealed class OfflineXen
{
    private OfflineXen(TestImage? image, OfflineHypervisor target, LivepatchCore core)
    {
        Image = image;
        Target = target;
        Core = core;
        Handler = new SysctlHandler(core);
    }

    /// <summary>The image the target was built from (null for a target made from a symbol listing).</summary>
    public TestImage? Image { get; }

    /// <summary>The offline target (memory, symbols, build-id).</summary>
    public OfflineHypervisor Target { get; }

    /// <summary>The livepatch core.</summary>
    public LivepatchCore Core { get; }

    /// <summary>The sysctl entry point.</summary>
    public SysctlHandler Handler { get; }

    /// <summary>Whether callers count as the control domain (false: every sub-op gets -EPERM, as for a domU).</summary>
    public bool Privileged { get; set; } = true;

    /// <summary>How many sysctls reached the hypervisor.</summary>
    public int Calls { get; private set; }

    /// <summary>
    /// A fresh hypervisor over the test image for <paramref name="arch"/>, following <paramref name="profile"/> (default
    /// Xen 4.17), with <paramref name="cpus"/> running actions (default: at once).
    /// </summary>
    public static OfflineXen Create(string arch = "x86_64", LivepatchProfile? profile = null, ILivepatchCpus? cpus = null)
    {
        var image = LivepatchFixtures.Image(arch);
        if (!OfflineHypervisor.TryFromImage(image.File, out var target, out var error))
            throw new InvalidOperationException($"{image.Path}: {error}");
        var core = new LivepatchCore(profile ?? LivepatchProfile.Xen417, LivepatchArch.Get(target.Machine), target, target, cpus);
        return new OfflineXen(image, target, core);
    }

    /// <summary>
    /// A hypervisor known only by its <c>/proc/xen/xensyms</c> listing and build-id (x86-64; Xen 4.17 unless
    /// <paramref name="profile"/> says), as a real one reports them: payloads load and apply against its symbols;
    /// expectations are not checked.
    /// </summary>
    public static OfflineXen FromXenSyms(string xensyms, string buildIdHex, LivepatchProfile? profile = null)
    {
        if (!OfflineHypervisor.TryFromXenSyms(xensyms, Convert.FromHexString(buildIdHex.Trim()), XenLivepatch.Elf.ElfMachine.X86_64, out var target, out string? error))
            throw new InvalidOperationException(error);
        return new OfflineXen(null, target, new LivepatchCore(profile ?? LivepatchProfile.Xen417, X86_64Arch.Instance, target, target));
    }

    /// <summary><c>do_sysctl</c> with the caller's buffers as guest memory.</summary>
    public int Sysctl(Span<byte> sysctl, IReadOnlyList<WireBuffer> buffers)
    {
        Calls++;
        return Handler.Handle(sysctl, new GuestBuffers(buffers), Privileged);
    }

    /// <summary><c>do_xen_version</c> with the caller's buffers as guest memory.</summary>
    public int XenVersion(int cmd, ulong arg, IReadOnlyList<WireBuffer> buffers) => Handler.XenVersion(cmd, arg, new GuestBuffers(buffers), Privileged);

    /// <summary>An in-process transport to this hypervisor, speaking its dialect.</summary>
    public InProcessTransport Transport() => InProcessTransport.Create(Sysctl, Core.Profile.Abi, "the offline test hypervisor", XenVersion);

    /// <summary>A client over <see cref="Transport"/>.</summary>
    public LivepatchClient Client() => new(Transport());
}
