using System.CommandLine;
using System.Text;
using Spectre.Console;
using Resident.HookContract;
using Resident.Registry;

namespace Resident.Cli;

/// <summary>Builds the command tree. Each verb lives in its own file with a Create() factory.</summary>
public static class Cli
{
    public static int Run(string[] args, TextWriter stdout, TextWriter stderr)
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
            "DragonFly form: resident [-l] [-f] [-x id] [-d] [-R] program ...\n" +
            "  (register; -l list, -x remove by id, -R remove all, -d remove the programs, -f through a wrapper)\n\n" +
            "Environment:\n" +
            "  RESIDENT_DIR         registry directory (default $XDG_CACHE_HOME/resident, else ~/.cache/resident)\n" +
            "  RESIDENT_SYSTEM_DIR  system registry (default /var/cache/resident), used after yours\n" +
            "  RESIDENT_DEBUG       1: the hook prints one line per exec of a registered program\n" +
            "                       (restored, or fallback with the reason); 2: also for programs without an\n" +
            "                       image, with the takeover time; 3: with the time of each takeover stage\n" +
            "  NO_COLOR             no colour in tables and doctor's marks")
        {
            AddCommand.Create(stdout, stderr),
            ListCommand.Create(stdout, stderr),
            ShowCommand.Create(stdout, stderr),
            RemoveCommand.Create(stdout, stderr),
            RefreshCommand.Create(stdout, stderr),
            SyncCommand.Create(stdout, stderr),
            DoctorCommand.Create(stdout, stderr),
            ExecCommand.Create(stderr),
            ShellInitCommand.Create(stdout, stderr),
            BenchCommand.Create(stdout, stderr),
            ExportCommand.Create(stdout, stderr),
        };
        // DragonFly's resident(8) takes flags and programs without a verb; mapped onto the verbs.
        if (DragonflyCommand.Applies(args, root))
            return DragonflyCommand.Run(DragonflyCommand.Parse(args, RegistryDir) with { HookPath = HookPath }, stdout, stderr);
        var config = new InvocationConfiguration { Output = stdout, Error = stderr };
        return root.Parse(args).Invoke(config);
    }

    /// <summary>The user's registry directory from this process's environment ("" when none applies).</summary>
    internal static string RegistryDir => HookContract.RegistryPaths.ResolveFromProcess() ?? "";

    /// <summary>The registry a verb works on: the system's with --system, else the user's.</summary>
    internal static string RegistryDirFor(bool system) =>
        system ? HookContract.RegistryPaths.ResolveSystem(Environment.GetEnvironmentVariable) : RegistryDir;

    /// <summary>--system, the same on every verb that works on a registry.</summary>
    internal static Option<bool> SystemOption() => new("--system")
    {
        Description = "the system registry ($RESIDENT_SYSTEM_DIR, else /var/cache/resident; writing it needs root)",
    };

    /// <summary>--quiet / -q: only errors are printed.</summary>
    internal static Option<bool> QuietOption() => new("--quiet", "-q") { Description = "print nothing but errors" };

    /// <summary>
    /// The registry in <paramref name="dir"/> (the system's when <paramref name="system"/>), or
    /// null after a one-line error. <paramref name="writable"/>: created if needed and checked
    /// to be one the hook will trust (<see cref="Registry.ImageRegistry.EnsureWritable"/>).
    /// </summary>
    internal static Registry.ImageRegistry? OpenRegistry(string dir, TextWriter stderr, bool system = false, bool writable = false)
    {
        if (dir.Length == 0)
        {
            stderr.WriteLine("resident: no registry directory: set RESIDENT_DIR, XDG_CACHE_HOME or HOME to an absolute path");
            return null;
        }
        var registry = new Registry.ImageRegistry(dir, system);
        if (!writable)
            return registry;
        try { registry.EnsureWritable(); }
        catch (Registry.RegistryException e) { stderr.WriteLine($"resident: {e.Message}"); return null; }
        return registry;
    }

    /// <summary>dist/libresident.so, next to this executable.</summary>
    internal static string HookPath => Path.Combine(AppContext.BaseDirectory, "libresident.so");

    /// <summary>True when <paramref name="writer"/> is this process's stdout and that is a terminal.</summary>
    internal static bool IsTerminal(TextWriter writer) => writer == System.Console.Out && !System.Console.IsOutputRedirected;

    /// <summary>A Spectre console writing to <paramref name="writer"/>; colour only on a terminal, never with NO_COLOR.</summary>
    /// When the output is not a terminal, lines are never wrapped, so scripts can grep whole paths.
    internal static IAnsiConsole Console(TextWriter writer)
    {
        var console = AnsiConsole.Create(new AnsiConsoleSettings
        {
            Out = new AnsiConsoleOutput(writer),
            Ansi = IsTerminal(writer) ? AnsiSupport.Detect : AnsiSupport.No,
            ColorSystem = IsTerminal(writer) && Environment.GetEnvironmentVariable("NO_COLOR") is null or ""
                ? ColorSystemSupport.Detect : ColorSystemSupport.NoColors,
        });
        if (!IsTerminal(writer))
            console.Profile.Width = 4096;
        return console;
    }

    /// <summary>
    /// Runs <paramref name="each"/> for every item. On a terminal, unless quiet, a progress bar
    /// shows which one runs (a large program's capture takes seconds, and a refresh may capture
    /// dozens); the lines each item writes then go above the bar, which is cleared at the end.
    /// Elsewhere the lines go straight to <paramref name="stdout"/>.
    /// </summary>
    internal static void ForEachWithProgress<T>(IReadOnlyList<T> items, Func<T, string> name, bool quiet, TextWriter stdout,
        Action<T, TextWriter> each)
    {
        if (quiet || items.Count == 0 || !IsTerminal(stdout))
        {
            foreach (var item in items)
                each(item, stdout);
            return;
        }
        var console = Console(stdout);
        console.Progress().AutoClear(true).Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new RemainingTimeColumn())
            .Start(ctx =>
            {
                var task = ctx.AddTask("capturing", maxValue: items.Count);
                var lines = new LineWriter(console);
                foreach (var item in items)
                {
                    task.Description = Markup.Escape(name(item));
                    each(item, lines);
                    task.Increment(1);
                }
            });
    }

    /// <summary>Hands whole lines to a Spectre console (which keeps them above a live progress bar).</summary>
    sealed class LineWriter(IAnsiConsole console) : TextWriter
    {
        readonly StringBuilder _line = new();

        public override Encoding Encoding => Encoding.UTF8;

        public override void Write(char value)
        {
            if (value != '\n') { _line.Append(value); return; }
            console.WriteLine(_line.ToString());
            _line.Clear();
        }
    }

    internal static string FormatSize(long bytes) => bytes switch
    {
        < 1024 => $"{bytes} B",
        < 1024 * 1024 => $"{bytes / 1024.0:0.0} KB",
        _ => $"{bytes / (1024.0 * 1024):0.0} MB",
    };
}
