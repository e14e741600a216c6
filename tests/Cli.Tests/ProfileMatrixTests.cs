using System.Text;
using XenLivepatch.Abi;
using XenLivepatch.Control;
using XenLivepatch.Hypervisor;
using XenLivepatch.Sandbox;
using XenLivepatch.TestKit;

namespace XenLivepatch.Cli.Tests;

/// <summary>
/// Every generation of the ABI end to end: the seed's 2016 layout, Xen 4.17 and Xen 4.22, each behind the sandbox
/// socket and in this process, reached the way a tool reaches it (the control library probes the interface version
/// and picks the layout). Every sub-op and every Xen command of the CLI, each answering as its profile does: the
/// same texts and exit codes where the versions agree, and each one's own where they do not (FORCE, NODEPS,
/// metadata, LIST's buffer sizes, the 2016 name slots).
/// </summary>
public class ProfileMatrixTests
{
    public static TheoryData<string, string> Cells()
    {
        var data = new TheoryData<string, string>();
        foreach (var p in LivepatchProfile.All)
        {
            data.Add(p.Name, "in-process");
            data.Add(p.Name, "socket");
        }
        return data;
    }

    /// <summary>The payloads of one profile: version 1 functions without .livepatch.xen_depends for the seed.</summary>
    private sealed record ProfilePayloads(string Hello, string Bye, string Nop, string Counter);

    private static readonly Dictionary<string, Lazy<ProfilePayloads>> s_payloads = LivepatchProfile.All.ToDictionary(p => p.Name,
        p => new Lazy<ProfilePayloads>(() => Build(p)));

    private static ProfilePayloads Build(LivepatchProfile profile)
    {
        var image = LivepatchFixtures.Image();
        string[] seed = profile.RequiresXenDepends ? [] : ["--cflags", "-DLIVEPATCH_V1", "--no-xen-depends"];
        string hello = LivepatchFixtures.BuildPayload(image, "xen_hello_world", ["hello_world.c"], [.. seed, "--modinfo", "LIVEPATCH_RULEZ"]);
        string bye = LivepatchFixtures.BuildPayload(image, "xen_bye_world", ["bye_world.c"], [.. seed, "--depends-on", hello]);
        string nop = LivepatchFixtures.BuildPayload(image, "xen_nop", ["nop.c"], seed);
        string counter = LivepatchFixtures.BuildPayload(image, "xen_counter", [LivepatchFixtures.SourceFile(Payloads.CounterSource)], seed);
        return new ProfilePayloads(hello, bye, nop, counter);
    }

    /// <summary>One hypervisor of a profile and how a tool reaches it.</summary>
    private sealed class Cell : IAsyncDisposable
    {
        private readonly SysctlSocketServer? _server;
        private readonly string? _directory;

        public Cell(string profileName, string transport)
        {
            Profile = LivepatchProfile.FromName(profileName)!;
            Xen = OfflineXen.Create(profile: Profile);
            Payloads = s_payloads[profileName].Value;
            if (transport == "socket")
            {
                // Unix socket paths are short (107 bytes): not under the test's deep temporary folder.
                _directory = Path.Combine("/tmp", "xlp-" + Guid.NewGuid().ToString("N")[..12]);
                Directory.CreateDirectory(_directory);
                SocketPath = Path.Combine(_directory, "sandbox.sock");
                _server = SysctlSocketServer.Start(Xen.Handler, SocketPath, OwnGroup.Value);
            }
        }

        public LivepatchProfile Profile { get; }
        public OfflineXen Xen { get; }
        public ProfilePayloads Payloads { get; }
        public string? SocketPath { get; }

        /// <summary>Opens a transport as a tool does: the interface version is probed.</summary>
        public Task<TransportOpenResult> Open(CancellationToken ct = default) => SocketPath != null
            ? LivepatchTransports.OpenAsync(TransportChoice.Sandbox, SocketPath, null, ct)
            : InProcessTransport.OpenAsync(Xen.Sysctl, null, "the offline test hypervisor", cancellationToken: ct);

        public async Task<LivepatchClient> Client()
        {
            var opened = await Open();
            Assert.True(opened.Transport != null, opened.Problem);
            return new LivepatchClient(opened.Transport);
        }

        public ToolHost Host => new() { OpenTransport = (_, _, ct) => Open(ct), Delay = (_, _) => Task.CompletedTask };

        public CliRun Run(params string[] args) => CliRun.With(Host, args);

        public async ValueTask DisposeAsync()
        {
            if (_server != null)
                await _server.DisposeAsync();
            if (_directory != null)
                Directory.Delete(_directory, recursive: true);
        }

    }

    /// <summary>Our group: sockets serve it too, so that the tests work without root.</summary>
    internal static readonly Lazy<uint> OwnGroup = new(() => uint.Parse(Tool.Run("id", "-g").EnsureSuccess().Stdout.Trim(), System.Globalization.CultureInfo.InvariantCulture));

    private static string Row(string name, string state, string metadata) => $"{name.PadRight(40)}| {state,-7}    | {metadata}\n";

    private const string Header = " ID                                     | status     | metadata\n----------------------------------------+------------+---------------\n";

    [Theory, MemberData(nameof(Cells))]
    public async Task Every_xen_command_prints_what_the_profile_answers(string profileName, string transport)
    {
        await using var c = new Cell(profileName, transport);
        var p = c.Profile;
        var (hello, bye, nop, counter) = (c.Payloads.Hello, c.Payloads.Bye, c.Payloads.Nop, c.Payloads.Counter);
        // Only a 4.14+ hypervisor keeps .modinfo, shown by list.
        string rulez = p.SupportsActionHooks ? "LIVEPATCH_RULEZ" : "", counterMeta = p.SupportsActionHooks ? "A=1;B=2" : "";
        void Step(string what, CliRun expected, params string[] args)
        {
            var got = c.Run(args);
            Assert.True(expected == got, $"{p.Name} {transport}, {what}: 'xen-livepatch {string.Join(' ', args)}'\n  expected {expected}\n  got      {got}");
        }

        Step("an empty list", new(0, "Nothing to list\n", ""), "list");
        Step("upload", new(0, $"Uploading {hello}... completed\n", ""), "upload", "xen_hello_world", hello);
        Step("the same name again", new(1, $"Uploading {hello}... failed\n", "Error 17: File exists\n"), "upload", "xen_hello_world", hello);

        // --force: LIVEPATCH_FLAG_FORCE in the op's flags word, which only Xen 4.19+ has (before, it is pad: EINVAL).
        if (p.AcceptsOpFlags)
        {
            Step("--force upload", new(0, $"Uploading {bye}... completed\n", ""), "--force", "upload", "xen_bye_world", bye);
        }
        else
        {
            Step("--force upload", new(1, $"Uploading {bye}... failed\n",
                "Error 22: Invalid argument\nxen-livepatch: note: hypervisors before Xen 4.19 refuse --force (their sysctl has a pad word there); retry without --force\n"),
                "--force", "upload", "xen_bye_world", bye);
            Step("upload", new(0, $"Uploading {bye}... completed\n", ""), "upload", "xen_bye_world", bye);
        }
        Step("list", new(0, Header + Row("xen_hello_world", "CHECKED", rulez) + Row("xen_bye_world", "CHECKED", ""), ""), "list");
        // get prints Xen's state line, then the payload's details (build-id, dependencies, memory), which are ours.
        var got = c.Run("get", "xen_hello_world");
        Assert.True((0, "") == (got.ExitCode, got.Stderr) && got.Stdout.StartsWith("xen_hello_world: CHECKED\n  build-id ", StringComparison.Ordinal),
            $"{p.Name} {transport}, get: {got}");
        Step("get of nothing", new(1, "", "Failed to get status of xen_none.\nError 2: No such file or directory\n"), "get", "xen_none");

        // The stack: bye depends on hello's build-id.
        Step("apply out of order", new(1, "Applying xen_bye_world... failed\n", "Error 22: Invalid argument\n"), "apply", "xen_bye_world");
        Step("apply", new(0, "Applying xen_hello_world... completed\n", ""), "apply", "xen_hello_world");
        Step("apply again", new(0, "No action needed.\n", ""), "apply", "xen_hello_world");
        Step("apply on top", new(0, "Applying xen_bye_world... completed\n", ""), "apply", "xen_bye_world");
        Step("list of a stack", new(0, Header + Row("xen_hello_world", "APPLIED", rulez) + Row("xen_bye_world", "APPLIED", ""), ""), "list");
        Step("revert below the top", new(2, "Reverting xen_hello_world... failed\n", "Error 16: Device or resource busy\n"), "revert", "xen_hello_world");
        Step("unload while applied", new(1, "", "xen_hello_world is in the wrong state.\nCurrent state: APPLIED\nExpected state: CHECKED\n"), "unload", "xen_hello_world");
        Step("revert the top", new(0, "Reverting xen_bye_world... completed\n", ""), "revert", "xen_bye_world");
        Step("revert", new(0, "Reverting xen_hello_world... completed\n", ""), "revert", "xen_hello_world");
        Step("revert again", new(0, "No action needed.\n", ""), "revert", "xen_hello_world");

        // NODEPS: Xen 4.14+; the 2016 action has no flags word, so the library refuses it before any hypercall.
        if (p.SupportsNoDeps)
            Step("apply --nodeps", new(0, "Applying xen_bye_world... completed\n", ""), "apply", "xen_bye_world", "--nodeps");
        else
            Step("apply --nodeps", new(1, "Applying xen_bye_world... failed\n", "Error 95: Operation not supported\n"), "apply", "xen_bye_world", "--nodeps");
        Step("a flag apply does not have", new(1, "", "Unsupported flag: --bogus.\n"), "apply", "xen_bye_world", "--bogus");

        // REPLACE reverts every applied payload (bye, where NODEPS applied it), then applies xen_nop.
        Step("upload", new(0, $"Uploading {nop}... completed\n", ""), "upload", "xen_nop", nop);
        Step("replace", new(0, "Replacing all live patches with xen_nop... completed\n", ""), "replace", "xen_nop");
        Step("list after replace", new(0, Header + Row("xen_hello_world", "CHECKED", rulez) + Row("xen_bye_world", "CHECKED", "") + Row("xen_nop", "APPLIED", ""), ""), "list");
        Step("unload", new(0, "Unloading xen_bye_world... completed\n", ""), "unload", "xen_bye_world");
        Step("unload again", new(1, "", "Failed to get status of xen_bye_world.\nError 2: No such file or directory\n"), "unload", "xen_bye_world");
        Step("revert", new(0, "Reverting xen_nop... completed\n", ""), "revert", "xen_nop");
        Step("unload", new(0, "Unloading xen_nop... completed\n", ""), "unload", "xen_nop");

        // load: upload under the file's name, then apply; data makes a reverted payload unfit to apply again.
        Step("load", new(0, $"Uploading {counter}... completed\nApplying xen_counter... completed\n", ""), "load", counter);
        Step("load again", new(1, $"Uploading {counter}... failed\n", "Error 17: File exists\n"), "load", counter);
        Step("revert", new(0, "Reverting xen_counter... completed\n", ""), "revert", "xen_counter");
        Step("apply after a revert, with data", new(1, "Applying xen_counter... failed\n", "Error 22: Invalid argument\n"), "apply", "xen_counter");
        Step("list with an rc", new(0, Header + Row("xen_hello_world", "CHECKED", rulez) + $"{"xen_counter",-40}| CHECKED (22, Invalid argument)    | {counterMeta}\n", ""), "list");
        Step("unload", new(0, "Unloading xen_counter... completed\n", ""), "unload", "xen_counter");
        Step("unload", new(0, "Unloading xen_hello_world... completed\n", ""), "unload", "xen_hello_world");
        Step("an empty list again", new(0, "Nothing to list\n", ""), "list");
    }

    [Theory, MemberData(nameof(Cells))]
    public async Task Every_sub_op_answers_as_the_profile_does(string profileName, string transport)
    {
        await using var c = new Cell(profileName, transport);
        var p = c.Profile;
        await using var client = await c.Client();
        string cell = $"{p.Name} {transport}";

        // The probe found the profile's dialect: its interface version and layout.
        Assert.True(p.Abi == client.Abi, $"{cell}: the probe found {client.Abi}");
        Assert.Equal(p.Name switch { "seed-2016" => 0x0Du, "xen-4.17" => 0x15u, _ => 0x16u }, client.Abi.InterfaceVersion);

        // UPLOAD, with and without FORCE.
        byte[] hello = File.ReadAllBytes(c.Payloads.Hello), bye = File.ReadAllBytes(c.Payloads.Bye);
        Assert.Equal(0, (await client.UploadAsync("xen_hello_world", hello)).Rc);
        Assert.Equal(p.AcceptsOpFlags ? 0 : -(int)XenErrno.EINVAL, (await client.UploadAsync("xen_bye_world", bye, force: true)).Rc);
        if (!p.AcceptsOpFlags)
            Assert.Equal(0, (await client.UploadAsync("xen_bye_world", bye)).Rc);
        // The flags word: FORCE alone, an unknown bit alone (EINVAL), and Xen's quirk: any bits pass with FORCE.
        Assert.Equal(p.AcceptsOpFlags ? -(int)XenErrno.ENOENT : -(int)XenErrno.EINVAL, await RawGet(client, "xen_none", flags: 1));
        Assert.Equal(-(int)XenErrno.EINVAL, await RawGet(client, "xen_none", flags: 2));
        Assert.Equal(p.AcceptsOpFlags ? 0 : -(int)XenErrno.EINVAL, await RawGet(client, "xen_hello_world", flags: 3));

        // GET.
        var get = await client.GetAsync("xen_hello_world");
        Assert.Equal((0, (uint)LivepatchState.Checked, 0), (get.Result.Rc, get.Status.State, get.Status.Rc));
        Assert.Equal(-(int)XenErrno.ENOENT, (await client.GetAsync("xen_none")).Result.Rc);

        // LIST: the size probe (the 2016 structure has no sizes), then the entries.
        var sizes = await client.GetListSizesAsync();
        uint names = (uint)("xen_hello_world".Length + 1 + "xen_bye_world".Length + 1);
        uint meta = p.SupportsActionHooks ? (uint)"LIVEPATCH_RULEZ\0".Length : 0;
        Assert.Equal((0, 2u), (sizes.Result.Rc, sizes.Count));
        Assert.Equal(p.Abi.Layout == SysctlLayout.Seed2016 ? (0u, 0u) : (names, meta), (sizes.NameTotalSize, sizes.MetadataTotalSize));
        var all = await client.ListAllAsync();
        Assert.Equal(0, all.Result.Rc);
        Assert.Equal(["xen_hello_world", "xen_bye_world"], all.Entries.Select(e => e.Name));
        Assert.Equal(meta == 0 ? "" : "LIVEPATCH_RULEZ\0", Encoding.ASCII.GetString(all.Entries[0].Metadata));

        // Buffers too small for the list: Xen 4.21+ says so (ENOBUFS, before copying anything); 4.17 checks the
        // name buffer it writes to (EINVAL); the 2016 layout has a slot per name, whatever the sizes say.
        var small = await client.ListAsync(2, 0, 4, meta);
        int expected = p.Abi.ListSizesAreInputs ? -(int)XenErrno.ENOBUFS : p.Abi.Layout == SysctlLayout.Xen414 ? -(int)XenErrno.EINVAL : 0;
        Assert.True(expected == small.Result.Rc, $"{cell}: a LIST into 4 bytes answered {small.Result.Rc}");
        // One entry of two, in room for exactly one: what comes back is that entry's size, and one is left.
        var (rc, nr, nameOut, metaOut) = await RawList(client, idx: 1, nr: 1, nameIn: (uint)"xen_bye_world".Length + 1);
        Assert.Equal((1, 0u), (rc, nr));
        Assert.Equal(p.Abi.Layout == SysctlLayout.Seed2016 ? 0u : (uint)"xen_bye_world".Length + 1, nameOut);
        // One byte short: 4.21+ refuses the entry and reports nothing copied; 4.17 refuses at the buffer's end,
        // reporting the entry it tried.
        (rc, nr, nameOut, metaOut) = await RawList(client, idx: 1, nr: 1, nameIn: (uint)"xen_bye_world".Length);
        var want = p.Abi.ListSizesAreInputs ? (-(int)XenErrno.ENOBUFS, 0u, 0u)
            : p.Abi.Layout == SysctlLayout.Xen414 ? (-(int)XenErrno.EINVAL, 0u, (uint)"xen_bye_world".Length + 1)
            : (1, 0u, 0u);
        Assert.True(want == (rc, nr, nameOut), $"{cell}: a LIST one byte short answered {(rc, nr, nameOut)}");
        Assert.Equal(0u, metaOut);

        // ACTION: each command, NODEPS, the pad word, an unknown command; an unknown sub-op.
        Assert.Equal(-(int)XenErrno.EINVAL, (await client.ApplyAsync("xen_bye_world")).Rc);
        var nodeps = await client.ApplyAsync("xen_bye_world", 0, LivepatchActionFlags.ApplyNoDeps);
        Assert.Equal(p.SupportsNoDeps ? (0, false) : (-(int)XenErrno.EOPNOTSUPP, true), (nodeps.Rc, nodeps.Local));
        if (p.SupportsNoDeps)
            Assert.Equal(0, (await client.RevertAsync("xen_bye_world")).Rc);
        Assert.Equal(0, (await client.ApplyAsync("xen_hello_world")).Rc);
        Assert.Equal((uint)LivepatchState.Applied, (await client.GetAsync("xen_hello_world")).Status.State);
        // bye depends on hello, not on the hypervisor: REPLACE refuses it.
        Assert.Equal(-(int)XenErrno.EINVAL, (await client.ReplaceAsync("xen_bye_world")).Rc);
        Assert.Equal((uint)LivepatchState.Checked, (await client.GetAsync("xen_bye_world")).Status.State);
        Assert.Equal(-(int)XenErrno.EINVAL, (await client.UnloadAsync("xen_hello_world")).Rc);
        Assert.Equal(0, (await client.RevertAsync("xen_hello_world")).Rc);
        if (p.Abi.Layout == SysctlLayout.Xen414)
            Assert.Equal(-(int)XenErrno.EINVAL, await RawAction(client, "xen_hello_world", LivepatchAction.Unload, pad: 1));
        Assert.Equal(-(int)XenErrno.EOPNOTSUPP, (await client.ActionAsync("xen_hello_world", (LivepatchAction)9)).Rc);
        Assert.Equal(-(int)XenErrno.EOPNOTSUPP, await RawCall(client, new SysctlLivepatchOp { Cmd = (LivepatchSubOp)7 }, []));
        Assert.Equal(0, (await client.UnloadAsync("xen_hello_world")).Rc);
        Assert.Equal(0, (await client.UnloadAsync("xen_bye_world")).Rc);
        Assert.Equal(0u, (await client.GetListSizesAsync()).Count);
    }

    private static async Task<int> RawCall(LivepatchClient client, SysctlLivepatchOp op, IReadOnlyList<WireBuffer> buffers, byte[]? sysctl = null)
    {
        sysctl ??= XenSysctl.EncodeLivepatch(client.Abi, op);
        return await client.Transport.CallAsync(sysctl, buffers);
    }

    private static WireBuffer NameBuffer(string name) => new(0x10000, Encoding.ASCII.GetBytes(name + "\0"), In: true, Out: false);

    private static Task<int> RawGet(LivepatchClient client, string name, uint flags)
    {
        var n = NameBuffer(name);
        return RawCall(client, new SysctlLivepatchOp { Cmd = LivepatchSubOp.Get, Flags = flags, Get = new SysctlLivepatchGet(new XenLivepatchName(n.Address, (ushort)n.Data.Length), default) }, [n]);
    }

    private static Task<int> RawAction(LivepatchClient client, string name, LivepatchAction action, uint pad)
    {
        var n = NameBuffer(name);
        var op = new SysctlLivepatchOp
        {
            Cmd = LivepatchSubOp.Action,
            Action = new SysctlLivepatchAction { Name = new XenLivepatchName(n.Address, (ushort)n.Data.Length), Cmd = (uint)action, Pad = pad },
        };
        return RawCall(client, op, [n]);
    }

    // A LIST of nr entries from idx with a name buffer of nameIn bytes (and room for any metadata): the result, and
    // what came back in nr, name_total_size and metadata_total_size.
    private static async Task<(int Rc, uint Nr, uint NameOut, uint MetaOut)> RawList(LivepatchClient client, uint idx, uint nr, uint nameIn)
    {
        bool seed = client.Abi.Layout == SysctlLayout.Seed2016;
        var status = new WireBuffer(0x10000, new byte[nr * 8], false, true);
        var name = new WireBuffer(0x20000, new byte[seed ? nr * Livepatch.NameSize : nameIn], false, true);
        var len = new WireBuffer(0x30000, new byte[nr * 4], false, true);
        var meta = new WireBuffer(0x40000, new byte[64], false, true);
        var metaLen = new WireBuffer(0x50000, new byte[nr * 4], false, true);
        var list = new SysctlLivepatchList
        {
            Idx = idx, Nr = nr, Status = status.Address, Name = name.Address, Len = len.Address,
            NameTotalSize = seed ? 0u : nameIn, MetadataTotalSize = seed ? 0u : 64u,
            Metadata = seed ? 0 : meta.Address, MetadataLen = seed ? 0 : metaLen.Address,
        };
        byte[] sysctl = XenSysctl.EncodeLivepatch(client.Abi, new SysctlLivepatchOp { Cmd = LivepatchSubOp.List, List = list });
        int rc = await client.Transport.CallAsync(sysctl, seed ? [status, name, len] : [status, name, len, meta, metaLen]);
        var back = XenSysctl.ReadLivepatch(sysctl, client.Abi.Layout).List;
        return (rc, back.Nr, back.NameTotalSize, back.MetadataTotalSize);
    }

    [Fact]
    public void A_forced_upload_skips_what_the_profile_lets_FORCE_skip_and_nothing_else()
    {
        // Xen 4.22.0 lets FORCE skip nothing: a payload made for another hypervisor is refused either way.
        var image = LivepatchFixtures.Image();
        string other = LivepatchFixtures.BuildPayload(image, "xen_hello_world", ["hello_world.c"]);
        byte[] data = File.ReadAllBytes(other);
        int at = XenDependsId(data);
        data[at] ^= 0xff;
        var xen = OfflineXen.Create(profile: LivepatchProfile.Xen422);
        Assert.Equal(LivepatchCheck.XenBuildIdMismatchFirst, xen.Core.Upload("forced", data, UploadOptions.Force)?.Check);
        // A profile whose FORCE skips the hypervisor's build-id check takes it when forced, and only then.
        var lenient = OfflineXen.Create(profile: LivepatchProfile.Xen422 with { ForceSkips = new HashSet<LoadStep> { LoadStep.CheckXenBuildIdFirst } });
        Assert.Equal(LivepatchCheck.XenBuildIdMismatchFirst, lenient.Core.Upload("plain", data)?.Check);
        Assert.Null(lenient.Core.Upload("forced", data, UploadOptions.Force));
        Assert.Equal(LivepatchState.Checked, Assert.Single(lenient.Core.Payloads).State);
    }

    // The first build-id byte of .livepatch.xen_depends (after the 12-byte note header and "GNU\0").
    private static int XenDependsId(byte[] payload)
    {
        var elf = XenLivepatch.Elf.ElfFile.Read(payload);
        int i = elf.FindSection(PayloadSections.XenDepends);
        return (int)elf.SectionHeaders[i].Offset + 16;
    }
}

/// <summary>
/// The sandbox command itself, in each profile: <c>xen-livepatch sandbox --profile P</c> serves its socket, and the
/// CLI in another process loads, lists (the 2016 layout's LIST included), reverts and unloads through it.
/// </summary>
[Collection("sandbox")]
public sealed class SandboxProfileTests
{
    /// <summary>
    /// The real surroundings, but the tool's 60 ms wait for an action lasts until the sandbox's action is done: on a
    /// busy machine its vCPU may not run within 60 ms, and the texts would differ for reasons of load alone.
    /// </summary>
    internal static ToolHost WaitingFor(SandboxHost host) => new()
    {
        Delay = (_, _) =>
        {
            Assert.True(host.Core.WaitIdle(TimeSpan.FromSeconds(30)), "the sandbox's action did not finish in 30 s");
            return Task.CompletedTask;
        },
    };

    public static TheoryData<string> Profiles() => [.. LivepatchProfile.All.Select(p => p.Name)];

    [Theory, MemberData(nameof(Profiles))]
    public async Task The_sandbox_in_each_profile_lists_its_loaded_payloads(string profileName)
    {
        var profile = LivepatchProfile.FromName(profileName)!;
        string dir = Path.Combine("/tmp", "xlp-" + Guid.NewGuid().ToString("N")[..12]);
        Directory.CreateDirectory(dir);
        try
        {
            // The sample hello world, built for this profile by our build (version 1 functions for the seed).
            string obj = Path.Combine(dir, "hello.o");
            Tool.Run("gcc", "-O2", "-ffreestanding", "-fno-common", "-fno-stack-protector", "-fno-asynchronous-unwind-tables", "-ffunction-sections",
                "-fpic", "-mno-red-zone", "-fcf-protection=none", "-I" + Repo.Path("src", "Sandbox", "payloads"), "-c",
                Repo.Path("src", "Sandbox", "payloads", "hello_world.c"), "-o", obj).EnsureSuccess();
            string payload = Path.Combine(dir, "xen_hello_world.livepatch");
            var built = CliRun.Ours("build", "--profile", profileName, "--target", SandboxBuild.Image, "--metadata", "LIVEPATCH_RULEZ", "-o", payload, obj);
            Assert.True(built.ExitCode == 0, built.Stderr);

            string socket = Path.Combine(dir, "sandbox.sock");
            using var host = SandboxHost.Start(new SandboxOptions { ImagePath = SandboxBuild.Image, Vcpus = 1, Profile = profile });
            var log = new StringWriter();
            await using var server = SysctlSocketServer.Start(new SysctlHandler(host.Core), socket, ProfileMatrixTests.OwnGroup.Value, TextWriter.Synchronized(log));
            {
                CliRun Run(params string[] args) => CliRun.With(WaitingFor(host), ["--sandbox", socket, .. args]);
                Assert.Equal(new CliRun(0, $"Uploading {payload}... completed\nApplying xen_hello_world... completed\n", ""), Run("load", payload));
                string rulez = profile.SupportsActionHooks ? "LIVEPATCH_RULEZ" : "";
                Assert.Equal(new CliRun(0, " ID                                     | status     | metadata\n----------------------------------------+------------+---------------\n" +
                    $"{"xen_hello_world",-40}| APPLIED    | {rulez}\n", ""), Run("list"));
                Assert.Equal(new CliRun(0, "Reverting xen_hello_world... completed\n", ""), Run("revert", "xen_hello_world"));
                Assert.Equal(new CliRun(0, "Unloading xen_hello_world... completed\n", ""), Run("unload", "xen_hello_world"));
                Assert.Equal(new CliRun(0, "Nothing to list\n", ""), Run("list"));
            }
            // The control library probes Xen 4.17's interface version first: the log (written before each reply) says
            // that is what was refused.
            string logged = log.ToString();
            Assert.DoesNotContain("LIST -> -EACCES", logged, StringComparison.Ordinal);
            if (profile.Abi.InterfaceVersion != LivepatchProfile.Xen417.Abi.InterfaceVersion)
                Assert.Contains($"interface version 0x15 -> -EACCES (this hypervisor speaks 0x{profile.Abi.InterfaceVersion:x2})", logged, StringComparison.Ordinal);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }
}
