using System.CommandLine;
using System.CommandLine.Parsing;
using System.Text.Json;
using Spectre.Console;
using Resident.Bench;
using Resident.Proc;

namespace Resident.Cli;

/// <summary>
/// Settings of `resident bench`. <paramref name="Rounds"/> is capped at <paramref name="Runs"/>;
/// <paramref name="Stdin"/> is the file every run reads (the seed ran perl &lt;/dev/null).
/// </summary>
public sealed record BenchSettings(string Program, IReadOnlyList<string> Args, int Runs, int Rounds,
    string? Static, bool Json, string Stdin, string HookPath, bool Init = false);

/// <summary>
/// resident bench PROG [ARGS...] [-n N] [--rounds R] [--static STATIC_PROG] [--stdin FILE] [--json] —
/// the seed's table for any program: normal, LD_BIND_NOW=1, resident (captured into a temporary
/// registry and run through the hook, as users run it) and static when given. Exit status 1 when
/// the resident row could not be verified (it is then left out), 2 on bad usage.
/// </summary>
public static class BenchCommand
{
    internal const int DefaultRuns = 100;
    internal const int DefaultRounds = 10;

    public static Command Create(TextWriter stdout, TextWriter stderr)
    {
        // PROG's own options (perl -e, clang-format --version) must reach PROG in order, so the
        // parser only collects the words and BenchArgs reads them.
        var words = new Argument<string[]>("command") { Arity = ArgumentArity.ZeroOrMore, Description = "PROG [ARGS...] and bench's options" };
        var cmd = new Command("bench",
            "Time a program's start: normal, LD_BIND_NOW=1, resident (a temporary registry, the hook as\n" +
            "shell-init enables it) and optionally a static build, in alternating rounds.\n" +
            "Options (before or after PROG ARGS; after `--` everything goes to PROG):\n" +
            $"  -n N                 runs per row (default {DefaultRuns})\n" +
            $"  --rounds R           alternating rounds (default {DefaultRounds})\n" +
            "  --static STATIC_PROG the same program linked statically, run with the same ARGS\n" +
            "  --stdin FILE         stdin of every run (default /dev/null)\n" +
            "  --init               one more row: the program captured with --level init (after its\n" +
            "                       constructors, when that is proven the same for every exec)\n" +
            "  --json               print the result as JSON\n" +
            "Example: resident bench -n 1000 --static /usr/bin/perl -- ./perl-shared")
        { words };
        cmd.TreatUnmatchedTokensAsErrors = false;
        cmd.SetAction(r =>
        {
            var parsed = BenchArgs.Parse(WordsAfterVerb(r), Cli.HookPath);
            if (parsed.Error is { } error)
            {
                stderr.WriteLine($"resident bench: {error}");
                return 2;
            }
            return Run(parsed.Settings!, stdout, stderr);
        });
        return cmd;
    }

    /// <summary>The raw words after "bench", in order, options of PROG included.</summary>
    static List<string> WordsAfterVerb(ParseResult r) =>
        r.Tokens.SkipWhile(t => !(t.Type == TokenType.Command && t.Value == "bench")).Skip(1).Select(t => t.Value).ToList();

    public static int Run(BenchSettings s, TextWriter stdout, TextWriter stderr)
    {
        if (!File.Exists(s.HookPath))
        {
            stderr.WriteLine($"resident: hook not found: {s.HookPath} (build it with ./setup.sh)");
            return 1;
        }
        string tmp = Directory.CreateTempSubdirectory("resident-bench-").FullName;
        try
        {
            var target = Target(s, Path.Combine(tmp, "registry"), s.Init ? Path.Combine(tmp, "registry-init") : null);
            string capture = Capture(target.ProgramPath, target.RegistryDir, init: false);
            string? initCapture = target.InitRegistryDir is { } initDir ? Capture(target.ProgramPath, initDir, init: true) : null;
            var report = Measure(s, target, capture, stderr) with { InitCapture = initCapture };
            if (s.Json)
                stdout.WriteLine(JsonSerializer.Serialize(report, BenchJsonContext.Default.BenchReport));
            else
                WriteTable(report, capture, stdout);
            if (s.Init && !report.Rows.Any(r => r.Name == BenchPlan.ResidentInit))
                stderr.WriteLine($"resident bench: no resident init row: the hook did not restore {target.ProgramPath}: {report.InitCheck}");
            if (report.ResidentVerified)
                return 0;
            stderr.WriteLine($"resident bench: no resident row: the hook did not restore {target.ProgramPath}: {report.ResidentCheck}");
            return 1;
        }
        catch (Exception e) when (e is RefusalException or BenchException or IOException)
        {
            stderr.WriteLine($"resident bench: {e.Message}");
            return 1;
        }
        finally
        {
            Directory.Delete(tmp, recursive: true);
        }
    }

    static BenchTarget Target(BenchSettings s, string registry, string? initRegistry)
    {
        string program = ProgramFile.Identify(s.Program).Path;
        string? staticProgram = s.Static is null ? null : ProgramFile.Identify(s.Static).Path;
        return new BenchTarget(program, [s.Program, .. s.Args], staticProgram, Path.GetFullPath(s.HookPath), registry, s.Stdin, initRegistry);
    }

    /// <summary>Registers the program in a temporary registry the way `resident add` does (--level init with
    /// <paramref name="init"/>); returns add's line (or its error).</summary>
    static string Capture(string program, string registry, bool init)
    {
        var output = new StringWriter();
        var errors = new StringWriter();
        AddCommand.Run(new AddSettings([program], registry, Init: init), output, errors);
        return (output.ToString() + errors.ToString()).Trim();
    }

    /// <summary>The measurement, with a progress bar when stderr is a terminal (never in tests or pipes).</summary>
    static BenchReport Measure(BenchSettings s, BenchTarget target, string capture, TextWriter stderr)
    {
        var env = Environment.GetEnvironmentVariables().Cast<System.Collections.DictionaryEntry>()
            .ToDictionary(e => (string)e.Key, e => (string?)e.Value ?? "");
        int rounds = Math.Clamp(s.Rounds, 1, s.Runs);
        if (stderr != System.Console.Error || System.Console.IsErrorRedirected)
            return Benchmark.Run(target, env, s.Runs, rounds, capture);
        return Cli.Console(stderr).Progress().AutoClear(true).Start(ctx =>
        {
            var task = ctx.AddTask("timing");
            return Benchmark.Run(target, env, s.Runs, rounds, capture, total => task.MaxValue = total, () => task.Increment(1));
        });
    }

    /// <summary>A word as a shell would need it, so the header line can be pasted back.</summary>
    static string Quote(string word) =>
        word.Length > 0 && word.All(c => char.IsAsciiLetterOrDigit(c) || "-_./=:,+@%".Contains(c)) ? word : "'" + word.Replace("'", "'\\''") + "'";

    static void WriteTable(BenchReport r, string capture, TextWriter stdout)
    {
        stdout.WriteLine($"resident bench: {string.Join(' ', r.Command.Select(Quote))} <{r.Stdin}, {r.Runs} runs per row in {r.Rounds} alternating rounds, {r.Date}");
        stdout.WriteLine($"machine: {r.Machine}");
        stdout.WriteLine($"capture: {capture}");
        stdout.WriteLine($"check:   {r.ResidentCheck}");
        if (r.InitCapture is { } init)
        {
            stdout.WriteLine($"capture (--level init): {init}");
            stdout.WriteLine($"check (--level init):   {r.InitCheck}");
        }
        var table = new Table().Border(TableBorder.Simple)
            .AddColumns("", "user s", "sys s", "wall s", "ms/run", "ratio");
        foreach (int c in new[] { 1, 2, 3, 4, 5 })
            table.Columns[c].RightAligned();
        foreach (var row in r.Rows)
            table.AddRow(Markup.Escape(row.Name), $"{row.UserSeconds:0.000}", $"{row.SysSeconds:0.000}", $"{row.WallSeconds:0.000}",
                $"{row.MsPerRun:0.000}", $"{row.Ratio:0.000}");
        Cli.Console(stdout).Write(table);
    }
}

/// <summary>
/// The words of `resident bench` read in order: bench's own options may stand before PROG or
/// anywhere after it; after "--" the next word is PROG and everything that follows goes to PROG
/// (the way to pass PROG an option named like one of bench's, e.g. perl -n).
/// </summary>
public sealed record BenchArgs(BenchSettings? Settings, string? Error)
{
    public static BenchArgs Parse(IReadOnlyList<string> words, string hookPath)
    {
        string? program = null, staticProgram = null, stdin = "/dev/null";
        int runs = BenchCommand.DefaultRuns, rounds = BenchCommand.DefaultRounds;
        bool json = false, rest = false, init = false;
        var args = new List<string>();
        for (int i = 0; i < words.Count; i++)
        {
            string w = words[i];
            if (rest) { if (program is null) program = w; else args.Add(w); continue; }
            switch (w)
            {
                case "--": rest = true; break;
                case "--json": json = true; break;
                case "--init": init = true; break;
                case "-n" or "--rounds" or "--static" or "--stdin":
                    if (i + 1 == words.Count) return Fail($"{w} needs a value");
                    string value = words[++i];
                    if (w is "--static") staticProgram = value;
                    else if (w is "--stdin") stdin = value;
                    else if (!int.TryParse(value, out int count) || count < 1) return Fail($"{w} needs a positive number, not '{value}'");
                    else if (w is "-n") runs = count;
                    else rounds = count;
                    break;
                default:
                    if (program is null) program = w; else args.Add(w);
                    break;
            }
        }
        return program is null
            ? Fail("no program given (resident bench PROG [ARGS...] [-n N] [--static STATIC_PROG] [--json])")
            : new(new BenchSettings(program, args, runs, rounds, staticProgram, json, stdin, hookPath, init), null);
    }

    static BenchArgs Fail(string error) => new(null, error);
}
