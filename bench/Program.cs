// Benchmarks with a plain harness: warm up, then time many runs and report percentiles. Run with
//   dotnet run -c Release --project bench -- <name>      (names: upload; 'all' runs every one)
using XenLivepatch.Bench;

string which = args.Length > 0 ? args[0] : "all";
if (which is "--help" or "-h")
{
    Console.WriteLine("usage: xlp-bench [upload|all]");
    Console.WriteLine("  upload   UPLOAD throughput (checks, placement, symbols, relocation) from 4 KiB to 2 MiB, and 1,000 functions");
    return 0;
}
if (which is "upload" or "all")
    UploadBench.Run(Console.Out);
return 0;
