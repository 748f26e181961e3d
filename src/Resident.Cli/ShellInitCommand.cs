using System.CommandLine;

namespace Resident.Cli;

public sealed record ShellInitSettings(string Shell, string HookPath);

/// <summary>
/// resident shell-init bash|zsh|fish — prints the line that enables the hook in a shell:
/// LD_AUDIT = the absolute path of libresident.so (kept first, not added twice).
/// Usage: eval "$(resident shell-init bash)"
/// </summary>
public static class ShellInitCommand
{
    public static Command Create(TextWriter stdout, TextWriter stderr)
    {
        var shell = new Argument<string>("shell") { Description = "bash, zsh or fish" };
        shell.AcceptOnlyFromAmong("bash", "zsh", "fish");
        var cmd = new Command("shell-init",
            "Print shell code that enables the hook for this shell and its children.\n" +
            "Example: eval \"$(resident shell-init bash)\"   (fish: resident shell-init fish | source)") { shell };
        cmd.SetAction(r => Run(new ShellInitSettings(r.GetValue(shell)!, Cli.HookPath), stdout, stderr));
        return cmd;
    }

    public static int Run(ShellInitSettings s, TextWriter stdout, TextWriter stderr)
    {
        string hook = s.HookPath;
        if (!File.Exists(hook))
        {
            stderr.WriteLine($"resident: hook not found: {hook} (build it with ./setup.sh)");
            return 1;
        }
        if (hook.Contains('\'') || hook.Contains(':'))
        {
            stderr.WriteLine($"resident: cannot use hook path {hook}: it contains ' or :");
            return 1;
        }
        stdout.WriteLine(s.Shell == "fish"
            ? $"if not contains -- '{hook}' (string split : -- \"$LD_AUDIT\"); if test -n \"$LD_AUDIT\"; set -gx LD_AUDIT '{hook}:'\"$LD_AUDIT\"; else; set -gx LD_AUDIT '{hook}'; end; end"
            : $"case \":${{LD_AUDIT-}}:\" in *':{hook}:'*) ;; *) export LD_AUDIT='{hook}'\"${{LD_AUDIT:+:$LD_AUDIT}}\" ;; esac");
        return 0;
    }
}
