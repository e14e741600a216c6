// Benchmarks with a plain harness: warm up, then time many runs and report percentiles. Run with
//   dotnet run -c Release --project bench -- <name>      (names: upload; 'all' runs every one)
using XenLivepatch.Bench;

string which = args.Length > 0 ? args[0] : "all";
if (which is "--help" or "-h")
{
    Console.WriteLine("usage: xlp-bench [upload|quiesce [ROUNDS]|signature|diff|build-source [RUNS]|list-scale [N,N,...] [RUNS]|all]");
    Console.WriteLine("  upload    UPLOAD throughput (checks, placement, symbols, relocation) from 4 KiB to 2 MiB, and 1,000 functions");
    Console.WriteLine("  quiesce   pause of apply/revert in the sandbox with 2 busy vCPUs (1 and 1,000 functions), beside a bare");
    Console.WriteLine("            rendezvous and the naive mprotect + membarrier way; patched-call overhead (ROUNDS default 5000)");
    Console.WriteLine("  signature verification of a 2040 KiB payload (RSA-2048, SHA-256), both formats, and UPLOAD under policy require");
    Console.WriteLine("  diff      diff of one Xen 4.17 object (XSA-449's pci.o) and of the largest objects against themselves");
    Console.WriteLine("  build-source  XSA-449 from source on the 4.17 tree, its base build given (RUNS default 3)");
    Console.WriteLine("  list-scale N payloads uploaded into the sandbox (time, memory per payload), then our NativeAOT 'list' over its");
    Console.WriteLine("            socket (default N 1000,10000,50000; RUNS 10)");
    Console.WriteLine("  needs ./build.sh first (the sandbox image, artifacts/sandbox/xen-syms); diff and build-source build");
    Console.WriteLine("  Xen 4.17 trees into artifacts/xen-4.17 the first time (minutes; tests/xen-source/trees.sh); 'all' skips them");
    return 0;
}
if (which is not ("upload" or "quiesce" or "signature" or "diff" or "build-source" or "list-scale" or "all"))
{
    Console.Error.WriteLine($"xlp-bench: unknown benchmark '{which}'; try --help");
    return 64;
}
if (which is "upload" or "all")
    UploadBench.Run(Console.Out);
if (which is "signature" or "all")
    SignatureBench.Run(Console.Out);
if (which is "quiesce" or "all")
    QuiesceBench.Run(Console.Out, args.Length > 1 ? int.Parse(args[1], System.Globalization.CultureInfo.InvariantCulture) : 5000);
if (which is "diff")
    SourceBench.Diff(Console.Out);
if (which is "build-source")
    SourceBench.BuildSource(Console.Out, args.Length > 1 ? int.Parse(args[1], System.Globalization.CultureInfo.InvariantCulture) : 3);
if (which is "list-scale" or "all")
{
    int[] counts = args.Length > 1 && which == "list-scale"
        ? [.. args[1].Split(',').Select(n => int.Parse(n, System.Globalization.CultureInfo.InvariantCulture))]
        : [1000, 10000, 50000];
    ListScaleBench.Run(Console.Out, counts, args.Length > 2 ? int.Parse(args[2], System.Globalization.CultureInfo.InvariantCulture) : 10);
}
return 0;
