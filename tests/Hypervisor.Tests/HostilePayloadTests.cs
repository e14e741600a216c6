using CsCheck;
using XenLivepatch.Abi;
using XenLivepatch.TestKit;

namespace XenLivepatch.Hypervisor.Tests;

/// <summary>
/// Random mutations of valid payloads (byte flips, truncations, hostile values in header, section, symbol and
/// relocation fields) never crash the loader and never leave anything behind: each upload is accepted (and
/// then unloads cleanly) or refused with an errno, with the registry, the version and the memory as before,
/// and with memory use bounded by the payload's size.
/// </summary>
public class HostilePayloadTests
{
    private static readonly Lazy<byte[][]> s_seeds = new(() =>
    [
        .. new[] { ("hello", "hello_world.c"), ("extern", "extern_refs.c"), ("nop", "nop.c"), ("hooks", "hooks_only.c") }
            .Select(p => File.ReadAllBytes(LivepatchFixtures.BuildPayload(LivepatchFixtures.Image(), p.Item1, [p.Item2], "--modinfo", "A=B"))),
    ]);

    private static readonly ulong[] s_hostile = [0, 1, 3, 7, 8, 23, 24, 63, 64, 0xff, 0xfff1, 0xfff2, 0xffff, 0x7fffffff, 0xffffffff, 1UL << 32, ulong.MaxValue, ulong.MaxValue - 7, 2 * 1024 * 1024];

    private static readonly XenErrno[] s_allowed =
        [XenErrno.EINVAL, XenErrno.EOPNOTSUPP, XenErrno.ENOENT, XenErrno.EEXIST, XenErrno.EOVERFLOW, XenErrno.ENOMEM, XenErrno.ENODATA];

    private static long Iterations => long.TryParse(Environment.GetEnvironmentVariable("XLP_MUTATIONS"), out long n) ? n : 4000;

    private static byte[] Mutate(byte[] seed, Random rnd)
    {
        byte[] b = (byte[])seed.Clone();
        void Write(int at, ulong v, int width)
        {
            for (int i = 0; i < width && at + i >= 0 && at + i < b.Length; i++)
                b[at + i] = (byte)(v >> (8 * i));
        }
        int rounds = rnd.Next(1, 4);
        for (int r = 0; r < rounds; r++)
        {
            switch (rnd.Next(6))
            {
                case 0:
                    b[rnd.Next(b.Length)] ^= (byte)rnd.Next(1, 256);
                    break;
                case 1:
                    return b[..rnd.Next(b.Length)];
                case 2:
                    Write(rnd.Next(16, 64), s_hostile[rnd.Next(s_hostile.Length)], rnd.Next(2) == 0 ? 2 : 8);
                    break;
                default:
                {
                    // A field of some section header, symbol or relocation entry.
                    ulong shoff = BitConverter.ToUInt64(seed, 40);
                    int shnum = BitConverter.ToUInt16(seed, 60);
                    int section = rnd.Next(1, shnum);
                    int at = (int)shoff + section * 64;
                    if (rnd.Next(2) == 0)
                    {
                        int[] fields = [0, 4, 8, 16, 24, 32, 40, 44, 48, 56];
                        int f = fields[rnd.Next(fields.Length)];
                        Write(at + f, s_hostile[rnd.Next(s_hostile.Length)], f is 0 or 4 or 40 or 44 ? 4 : 8);
                    }
                    else
                    {
                        long off = BitConverter.ToInt64(seed, at + 24);
                        long size = BitConverter.ToInt64(seed, at + 32);
                        if (size > 0 && off > 0 && off + size <= b.Length)
                        {
                            int entry = (int)off + rnd.Next((int)size) / 8 * 8;
                            Write(entry, s_hostile[rnd.Next(s_hostile.Length)], rnd.Next(3) switch { 0 => 2, 1 => 4, _ => 8 });
                        }
                    }
                    break;
                }
            }
        }
        return b;
    }

    [Fact]
    public void Mutated_payloads_are_accepted_or_refused_cleanly()
    {
        var seeds = s_seeds.Value;
        var (core, target) = Targets.Core();
        Assert.Null(core.Upload("resident", seeds[0]));
        Gen.Int[0, int.MaxValue].Sample(seed =>
        {
            var rnd = new Random(seed);
            byte[] input = Mutate(seeds[rnd.Next(seeds.Length)], rnd);
            uint version = core.Version;
            var before = Targets.Snapshot(core, target);
            var afterUnload = Targets.Snapshot(core, target, versionBump: 2);
            long allocated = GC.GetAllocatedBytesForCurrentThread();
            var error = core.Upload("mutant", input);
            allocated = GC.GetAllocatedBytesForCurrentThread() - allocated;
            if (error == null)
            {
                // Accepted: it unloads, and the registry is as before but for two version bumps.
                Assert.Equal(version + 1, core.Version);
                Assert.Equal(0, core.Action("mutant", LivepatchAction.Unload));
                before = afterUnload;
            }
            else
            {
                Assert.Contains(error.Errno, s_allowed);
                Assert.StartsWith("mutant: ", error.Message, StringComparison.Ordinal);
            }
            Assert.Equal(before, Targets.Snapshot(core, target));
            Assert.True(allocated < (long)OfflineHypervisor.MaxPayloadMemory + 200L * input.Length + (1 << 20), $"seed {seed}: {allocated} bytes allocated for a {input.Length}-byte payload");
        }, iter: Iterations, threads: 1);
    }
}
