using System.Text;
using System.Text.RegularExpressions;

namespace XenLivepatch.Cli;

/// <summary>
/// <c>xen-livepatch man</c> and <c>xen-livepatch completion bash</c>: the manual page and the bash completion,
/// made from the same help texts the commands print (./build.sh writes both next to the binary), so that they
/// never say something the tool does not do.
/// </summary>
internal static partial class DocsCommand
{
    public const string ManHelp = """
        Usage: xen-livepatch man
        Prints the manual page xen-livepatch(1) in troff, made from the commands' help texts:
          xen-livepatch man > xen-livepatch.1 && man ./xen-livepatch.1

        """;

    public const string CompletionHelp = """
        Usage: xen-livepatch completion bash
        Prints the bash completion script (commands, their options, payload names from the hypervisor and the
        install store, files where a file is expected):
          xen-livepatch completion bash > /usr/share/bash-completion/completions/xen-livepatch

        """;

    /// <summary>Our commands with their help texts, from the command table, and 'list --installed' (an option of Xen's list).</summary>
    private static IReadOnlyList<(string Name, string Help)> Commands =>
    [
        .. CommandTable.Ours.Where(c => c.Help != null).Select(c => (c.Name, c.Help!)),
        ("list --installed", StoreCommands.ListInstalledHelp),
    ];

    private static string[] XenCommandNames => [.. CommandTable.Xen.Select(c => c.Name)];

    public static int Man(string[] args, TextWriter stdout, TextWriter stderr)
    {
        if (args.Length != 0)
            return CommandInput.Usage("man", stderr, $"unexpected argument '{args[0]}'");
        stdout.Write(ManPage());
        return 0;
    }

    public static int Completion(string[] args, TextWriter stdout, TextWriter stderr)
    {
        if (args is not ["bash"])
            return CommandInput.Usage("completion", stderr, "give the shell: 'completion bash' (bash is the one supported)");
        stdout.Write(BashCompletion());
        return 0;
    }

    // troff: a backslash is \e, a line may not start with '.' or '\'', '-' in options is \-.
    private static string Escape(string line)
    {
        string s = line.Replace("\\", "\\e", StringComparison.Ordinal).Replace("-", "\\-", StringComparison.Ordinal);
        return s.StartsWith('.') || s.StartsWith('\'') ? "\\&" + s : s;
    }

    private static void Verbatim(StringBuilder sb, string text)
    {
        sb.Append(".nf\n");
        foreach (string line in text.TrimEnd('\n').Split('\n'))
            sb.Append(Escape(line)).Append('\n');
        sb.Append(".fi\n");
    }

    /// <summary>The manual page.</summary>
    public static string ManPage()
    {
        var sb = new StringBuilder();
        sb.Append(".TH XEN-LIVEPATCH 1 \"\" \"xen-livepatch\" \"System Administration\"\n");
        sb.Append(".SH NAME\nxen\\-livepatch \\- Xen live patching: upload, apply, revert and replace payloads; install them for boot; converge a host\n");
        sb.Append(".SH SYNOPSIS\n.B xen\\-livepatch\n[\\fB\\-\\-force\\fR] [\\fB\\-\\-xen\\fR | \\fB\\-\\-sandbox\\fR \\fIPATH\\fR] [\\fB\\-\\-json\\fR] \\fIcommand\\fR [\\fIargs\\fR]\n");
        sb.Append(".SH DESCRIPTION\n");
        sb.Append("Xen's live patching tool, with Xen's commands, texts and exit codes, and commands of its own for payloads and for the host:\n");
        sb.Append("the running hypervisor's build\\-id, an install store applied at every boot, converging the loaded and applied payloads to a desired set,\n");
        sb.Append("and the state as Xen's debug key 'x' prints it. It talks to real Xen through /dev/xen/privcmd, or to the sandbox hypervisor's socket.\n");
        sb.Append(".SH XEN'S COMMANDS\n");
        Verbatim(sb, Usage.Help);
        sb.Append(".SH OPTIONS AND OUR COMMANDS\n");
        Verbatim(sb, XenLivepatchTool.Listing());
        foreach (var (name, help) in Commands)
        {
            sb.Append(".SS ").Append(Escape(name)).Append('\n');
            Verbatim(sb, help);
        }
        sb.Append(".SH FILES\n");
        sb.Append(".TP\n.I /var/lib/xen\\-livepatch/BUILD\\-ID/\nThe install store of the hypervisor with that build\\-id: one file per payload and installed.json, its index.\n");
        sb.Append(".TP\n.I /lib/systemd/system/xen\\-livepatch.service\nApplies the installed payloads at boot, before guests start, unless the kernel command line has xen\\-livepatch.enable=0.\n");
        sb.Append(".TP\n.I PREFIX/lib/xen\\-livepatch/xen\\-livepatch\\-full\nThe whole tool: xen\\-livepatch runs Xen's commands itself and every other command line through it (or through the copy it carries when this one is missing).\n");
        sb.Append(".TP\n.I PREFIX/lib/xen\\-livepatch/sandbox/xen\\-syms\nThe sandbox hypervisor's image, and its sample payloads beside it.\n");
        sb.Append(".SH ENVIRONMENT\n");
        sb.Append(".TP\n.B XEN_LIVEPATCH_SANDBOX\nThe sandbox socket (default /run/xen\\-livepatch/sandbox.sock).\n");
        sb.Append(".TP\n.B XEN_LIVEPATCH_STORE\nThe install stores' root (default /var/lib/xen\\-livepatch).\n");
        sb.Append(".TP\n.B XEN_LIVEPATCH_SANDBOX_IMAGE\nAnother sandbox image.\n");
        sb.Append(".SH EXIT STATUS\n");
        Verbatim(sb, XenLivepatchTool.ExitCodesHelp);
        sb.Append(".SH SEE ALSO\n.BR xl (1),\n.BR kpatch (1)\n");
        return sb.ToString();
    }

    [GeneratedRegex(@"(?<![\w-])--[a-z][a-z0-9-]*")]
    private static partial Regex OptionPattern();

    private static IEnumerable<string> OptionsOf(string help) =>
        OptionPattern().Matches(help).Select(m => m.Value).Where(o => o is not ("--xen" or "--sandbox" or "--force")).Distinct(StringComparer.Ordinal);

    // Options whose value is a file or a directory.
    private static readonly string[] s_fileOptions = ["--target", "--symbols", "--output", "--image", "--payload", "--applied", "--depends-on", "--cmdline", "--socket"];
    private static readonly string[] s_valueOptions = ["--build-id", "--arch", "--profile", "--name", "--depends", "--nop", "--expect", "--old-size",
        "--metadata", "--vcpus", "--group", "--timeout"];

    /// <summary>The bash completion script.</summary>
    public static string BashCompletion()
    {
        var ours = Commands.Select(c => c.Name.Split(' ')[0]).Where(n => n != "list").Distinct(StringComparer.Ordinal).ToList();
        var sb = new StringBuilder();
        sb.Append("# bash completion for xen-livepatch, made by 'xen-livepatch completion bash' from its help texts\n");
        sb.Append("_xen_livepatch_payloads() { xen-livepatch list 2>/dev/null | awk 'NR > 2 { print $1 }'; }\n");
        sb.Append("_xen_livepatch_installed() { xen-livepatch list --installed 2>/dev/null | awk '$1 ~ /^[0-9]+$/ { print $2 }'; }\n");
        sb.Append("_xen_livepatch() {\n");
        sb.Append("    local cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD-1]} cmd='' i\n");
        sb.Append("    for ((i = 1; i < COMP_CWORD; i++)); do\n");
        sb.Append("        case ${COMP_WORDS[i]} in\n");
        sb.Append("            --sandbox) ((i++)) ;;\n");
        sb.Append("            --force|--xen|--json) ;;\n");
        sb.Append("            *) cmd=${COMP_WORDS[i]}; break ;;\n");
        sb.Append("        esac\n");
        sb.Append("    done\n");
        sb.Append("    if [ -z \"$cmd\" ]; then\n");
        sb.Append("        if [ \"$prev\" = --sandbox ]; then COMPREPLY=($(compgen -f -- \"$cur\")); return; fi\n");
        sb.Append("        COMPREPLY=($(compgen -W \"--force --xen --sandbox --json --help --version ")
          .Append(string.Join(' ', XenCommandNames.Concat(ours))).Append("\" -- \"$cur\")); return\n");
        sb.Append("    fi\n");
        sb.Append("    case $prev in\n");
        sb.Append("        ").Append(string.Join('|', s_fileOptions)).Append("|-o) COMPREPLY=($(compgen -f -- \"$cur\")); return ;;\n");
        sb.Append("        --store) COMPREPLY=($(compgen -d -- \"$cur\")); return ;;\n");
        // build's --replace takes OLD=NEW; install's is a flag.
        sb.Append("        --replace) [ \"$cmd\" = build ] && return ;;\n");
        sb.Append("        ").Append(string.Join('|', s_valueOptions)).Append(") return ;;\n");
        sb.Append("    esac\n");
        sb.Append("    local opts=''\n");
        sb.Append("    case $cmd in\n");
        sb.Append("        apply) opts='--nodeps' ;;\n");
        sb.Append("        load) opts='--nodeps' ;;\n");
        sb.Append("        list) opts='").Append(string.Join(' ', OptionsOf(StoreCommands.ListInstalledHelp))).Append("' ;;\n");
        foreach (var (name, help) in Commands.Where(c => c.Name != "list --installed"))
            sb.Append("        ").Append(name).Append(") opts='").Append(string.Join(' ', OptionsOf(help).Append("--help"))).Append("' ;;\n");
        sb.Append("    esac\n");
        sb.Append("    if [[ $cur == -* ]]; then COMPREPLY=($(compgen -W \"$opts\" -- \"$cur\")); return; fi\n");
        sb.Append("    case $cmd in\n");
        sb.Append("        apply|revert|replace|unload|get) COMPREPLY=($(compgen -W \"$(_xen_livepatch_payloads)\" -- \"$cur\")) ;;\n");
        sb.Append("        uninstall) COMPREPLY=($(compgen -W \"$(_xen_livepatch_installed)\" -- \"$cur\")) ;;\n");
        sb.Append("        completion) COMPREPLY=($(compgen -W bash -- \"$cur\")) ;;\n");
        sb.Append("        buildid|dump|apply-installed|help|man|sandbox|demo) ;;\n");
        sb.Append("        *) COMPREPLY=($(compgen -f -- \"$cur\")) ;;\n");
        sb.Append("    esac\n");
        sb.Append("}\n");
        sb.Append("complete -o filenames -F _xen_livepatch xen-livepatch\n");
        return sb.ToString();
    }
}
