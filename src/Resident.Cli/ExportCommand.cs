using System.CommandLine;
using Resident.Export;
using Resident.Registry;

namespace Resident.Cli;

/// <param name="StubPath">the export stub (dist/resident-stub, next to this executable).</param>
public sealed record ExportSettings(string Program, string Output, bool Init, string StubPath, bool Quiet = false);

/// <summary>
/// resident export PROG -o FILE — one static executable holding the program's snapshot, its
/// libraries' pages included: it runs where the libraries are not and starts without ld.so.
/// </summary>
public static class ExportCommand
{
    public static Command Create(TextWriter stdout, TextWriter stderr)
    {
        var program = new Argument<string>("program") { Description = "program name (searched on PATH) or path" };
        var output = new Option<string>("--output", "-o") { Description = "the executable to write (replaced atomically)", Required = true, HelpName = "FILE" };
        var level = new Option<string>("--level")
        {
            Description = "link (default): the snapshot once ld.so has relocated the libraries; the constructors run at every start. "
                + "init: the snapshot at main, when the capture proves the constructors' result the same for every exec (as add "
                + "--level init); refused for constructors that look up environment variables. A refused init level says why and "
                + "exports the link level",
            HelpName = "link|init",
            DefaultValueFactory = _ => "link",
        };
        level.AcceptOnlyFromAmong("link", "init");
        var quiet = Cli.QuietOption();
        var cmd = new Command("export",
            "Write a program as one self-contained static executable: every page of its snapshot, the libraries' included, as\n" +
            "segments the kernel maps at exec, and a stub that patches in this exec's arguments, environment, auxv, canary\n" +
            "and pointer guard and resumes the program. No ld.so, no library file and no registry are needed to run it.\n" +
            "Use it for containers and machines without the libraries, and for the fastest start.\n" +
            "What it gives up: the file IS the libraries, so a security update of any of them needs a new export (nothing\n" +
            "checks them against the system's); its address layout is fixed at export; it runs only on a kernel with the\n" +
            "export's vDSO and a CPU with every feature the export's had (else it exits 127 with the reason). What the\n" +
            "program reads from files at run time (locale, gconv and NSS modules, Python's .py files) it still reads.\n" +
            "Example: resident export /usr/bin/perl -o perl.static")
        { program, output, level, quiet };
        cmd.SetAction(r => Run(new ExportSettings(r.GetValue(program)!, r.GetValue(output)!, r.GetValue(level) == "init", StubPath,
            r.GetValue(quiet)), stdout, stderr));
        return cmd;
    }

    /// <summary>dist/resident-stub, next to this executable.</summary>
    internal static string StubPath => Path.Combine(AppContext.BaseDirectory, "resident-stub");

    public static int Run(ExportSettings s, TextWriter stdout, TextWriter stderr)
    {
        try
        {
            var e = Exporter.Export(s.Program, s.Output, s.Init, s.StubPath, Registrar.ProcessEnvironment());
            if (!s.Quiet)
            {
                string level = e.Level == Format.ImageFormat.LevelInit ? "init level"
                    : e.InitRefused is { } why ? $"link level (init level refused: {why})" : "link level";
                stdout.WriteLine($"exported {e.ProgramPath} to {e.OutputPath} ({level}): {Cli.FormatSize(e.Size)}, "
                    + $"{e.Segments} snapshot segments, in {e.Elapsed.TotalMilliseconds:0} ms");
            }
            return 0;
        }
        catch (Exception e) when (e is RefusalException or IOException or UnauthorizedAccessException)
        {
            stderr.WriteLine($"resident: cannot export {s.Program}: {e.Message}");
            return 1;
        }
    }
}
