using System.CommandLine;
using Spectre.Console;

namespace Resident.Cli;

/// <summary>Builds the command tree. Each verb lives in its own file with a Create() factory.</summary>
public static class Cli
{
    public static int Main(string[] args, TextWriter stdout, TextWriter stderr)
    {
        // "exec PROG ARGS..." passes everything after PROG through untouched, options included,
        // so it is handled before the parser sees tokens like "-e" or "--version".
        if (args.Length >= 2 && args[0] == "exec" && !args[1].StartsWith('-'))
            return ExecCommand.Run(new ExecSettings(args[1], args[2..], HookPath), stderr);
        if (args.Length >= 3 && args[0] == "exec" && args[1] == "--")
            return ExecCommand.Run(new ExecSettings(args[2], args[3..], HookPath), stderr);

        var root = new RootCommand(
            "resident: make dynamically linked programs start as if they were resident.\n" +
            "A registered program's address space is saved right after ld.so loaded and relocated\n" +
            "its libraries; every later exec of it (with the hook enabled) maps that image back\n" +
            "instead of linking again. Stale images are never used: the program then starts normally.\n\n" +
            "Environment:\n" +
            "  RESIDENT_DIR    registry directory (default $XDG_CACHE_HOME/resident, else ~/.cache/resident)\n" +
            "  RESIDENT_DEBUG  1: the hook prints one line per exec of a registered program\n" +
            "                  (restored, or fallback with the reason); 2: also for programs without an\n" +
            "                  image, with the takeover time; 3: with the time of each takeover stage")
        {
            AddCommand.Create(stdout, stderr),
            ListCommand.Create(stdout, stderr),
            RemoveCommand.Create(stdout, stderr),
            ExecCommand.Create(stderr),
            ShellInitCommand.Create(stdout, stderr),
            BenchCommand.Create(stdout, stderr),
        };
        var config = new InvocationConfiguration { Output = stdout, Error = stderr };
        return root.Parse(args).Invoke(config);
    }

    /// <summary>The registry directory from this process's environment ("" when none applies).</summary>
    internal static string RegistryDir => Registry.RegistryPaths.ResolveFromProcess() ?? "";

    /// <summary>The registry in <paramref name="dir"/>, or null after a one-line error.</summary>
    internal static Registry.ImageRegistry? OpenRegistry(string dir, TextWriter stderr)
    {
        if (dir.Length == 0)
        {
            stderr.WriteLine("resident: no registry directory: set RESIDENT_DIR, XDG_CACHE_HOME or HOME to an absolute path");
            return null;
        }
        return new Registry.ImageRegistry(dir);
    }

    /// <summary>dist/libresident.so, next to this executable.</summary>
    internal static string HookPath => Path.Combine(AppContext.BaseDirectory, "libresident.so");

    /// <summary>A Spectre console writing to <paramref name="writer"/>; colour only on a terminal, never with NO_COLOR.</summary>
    /// When the output is not a terminal, lines are never wrapped, so scripts can grep whole paths.
    internal static IAnsiConsole Console(TextWriter writer)
    {
        var console = AnsiConsole.Create(new AnsiConsoleSettings
        {
            Out = new AnsiConsoleOutput(writer),
            Ansi = AnsiSupport.Detect,
            ColorSystem = ColorSystemSupport.Detect,
        });
        if (writer != System.Console.Out || System.Console.IsOutputRedirected)
            console.Profile.Width = 4096;
        return console;
    }

    internal static string FormatSize(long bytes) => bytes switch
    {
        < 1024 => $"{bytes} B",
        < 1024 * 1024 => $"{bytes / 1024.0:0.0} KB",
        _ => $"{bytes / (1024.0 * 1024):0.0} MB",
    };
}
