using System.CommandLine;
using Resident.Activation;

namespace Resident.Cli;

public sealed record ExecSettings(string Program, string[] Args, string HookPath);

/// <summary>
/// resident exec PROG ARGS... — runs one program with the hook, without shell-init. resident
/// replaces itself with PROG (execve), so PROG's exit status and signals are its own.
/// </summary>
public static class ExecCommand
{
    public static Command Create(TextWriter stderr)
    {
        var program = new Argument<string>("program") { Description = "program to run (searched on PATH)" };
        var args = new Argument<string[]>("args") { Arity = ArgumentArity.ZeroOrMore, Description = "passed to the program unchanged" };
        var cmd = new Command("exec",
            "Run PROG with the hook enabled (LD_AUDIT), replacing resident itself.\n" +
            "Everything after PROG is passed to it unchanged. Example: resident exec perl -e 'print 42'")
        { program, args };
        cmd.SetAction(r => Run(new ExecSettings(r.GetValue(program)!, r.GetValue(args) ?? [], Cli.HookPath), stderr));
        return cmd;
    }

    public static int Run(ExecSettings s, TextWriter stderr)
    {
        string hook = s.HookPath;
        if (!File.Exists(hook))
        {
            stderr.WriteLine($"resident: hook not found: {hook} (build it with ./setup.sh)");
            return 127;
        }
        stderr.Flush();
        string error = HookActivation.Exec(hook, s.Program, s.Args);
        stderr.WriteLine($"resident: cannot execute {s.Program}: {error}");
        return 127;
    }
}
