namespace XenLivepatch.Cli;

/// <summary>The texts of Xen's tool (tools/misc/xen-livepatch.c as Debian ships it in Xen 4.17.7).</summary>
internal static class Usage
{
    /// <summary>
    /// What <c>xen-livepatch help</c> prints, on stderr. Xen 4.17.7's text: newer Xen also shows
    /// <c>[--force]</c> in the usage line; we accept <c>--force</c> as newer Xen does but keep 4.17.7's text,
    /// the version admins run today (reference §5.1).
    /// </summary>
    public const string Help = """
        xen-livepatch: live patching tool
        Usage: xen-livepatch <command> [args] [command-flags]
         <name> An unique name of payload. Up to 128 characters.
        Commands:
          help                   display this help
          upload <name> <file>   upload file <file> with <name> name
          list                   list payloads uploaded.
          apply <name> [flags]   apply <name> patch.
            Supported flags:
              --nodeps           Disable inter-module buildid dependency check.
                                 Check only against hypervisor buildid.
          revert <name>          revert name <name> patch.
          replace <name>         apply <name> patch and revert all others.
          unload <name>          unload name <name> patch.
          load <file> [flags]    upload and apply <file> with name as the <file> name
            Supported flags:
              --nodeps           Disable inter-module buildid dependency check.
                                 Check only against hypervisor buildid.

        """;

    /// <summary>The message for a command that is neither Xen's nor ours.</summary>
    public static string Unrecognised(string command) => $"Unrecognised command '{command}' -- try 'xen-livepatch help'\n";
}
