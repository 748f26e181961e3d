using System.CommandLine;
using Spectre.Console;
using Resident.Diagnosis;
using Resident.HookContract;
using Resident.Registry;

namespace Resident.Cli;

/// <param name="Program">null: check the machine, user and shell; else that program.</param>
/// <param name="Environment">the shell's environment (LD_AUDIT, and what the program would start with).</param>
public sealed record DoctorSettings(string? Program, string? RegistryDir, string SystemRegistryDir, string HookPath,
    IReadOnlyDictionary<string, string> Environment);

/// <summary>
/// resident doctor [PROG] — one line per check, ✓ or ✗ with the explanation (· for a plain
/// fact); exit status 1 if any check failed. Without PROG: ptrace, PR_GET_AUXV, vdso mremap, rseq, the ld.so entry
/// pattern, the registries, the hook in this shell and its file. With PROG: would it register
/// (a real trial capture), or, registered, would this environment restore it (the hook's answer).
/// </summary>
public static class DoctorCommand
{
    public static Command Create(TextWriter stdout, TextWriter stderr)
    {
        var program = new Argument<string?>("program") { Arity = ArgumentArity.ZeroOrOne, Description = "a program to diagnose (path or name on PATH)" };
        var cmd = new Command("doctor",
            "Check whether captures and restores can work here, and explain why not.\n" +
            "Examples: resident doctor   resident doctor perl   (would perl register / be restored, and why)")
        { program };
        cmd.SetAction(r => Run(new DoctorSettings(r.GetValue(program), RegistryPaths.ResolveFromProcess(),
            RegistryPaths.ResolveSystem(Environment.GetEnvironmentVariable), Cli.HookPath, Registrar.ProcessEnvironment()), stdout, stderr));
        return cmd;
    }

    public static int Run(DoctorSettings s, TextWriter stdout, TextWriter stderr)
    {
        var context = new DoctorContext(s.HookPath, s.Environment.GetValueOrDefault("LD_AUDIT"),
            s.RegistryDir is { Length: > 0 } dir ? new ImageRegistry(dir) : null, new ImageRegistry(s.SystemRegistryDir, system: true));
        var findings = s.Program is null
            ? SystemDoctor.Run(context)
            : ProgramDoctor.Run(s.Program, context, s.Environment);
        var console = Cli.Console(stdout);
        foreach (var f in findings)
        {
            string mark = f.Informational ? "·" : f.Ok ? "[green]✓[/]" : "[red]✗[/]";
            console.MarkupLine($"{mark} {Markup.Escape(f.Subject)}: {Markup.Escape(f.Detail)}");
        }
        return findings.All(f => f.Ok || f.Informational) ? 0 : 1;
    }
}
