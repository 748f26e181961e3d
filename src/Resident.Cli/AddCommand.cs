using System.CommandLine;
using Resident.Capture;
using Resident.Registry;
using Resident.Trace;

namespace Resident.Cli;

/// <param name="ThroughWrapper">-f: each PROG is a wrapper; capture the first dynamically linked program it execs.</param>
/// <param name="System">RegistryDir is the system registry (root only; images 0644).</param>
/// <param name="StackLimit">--stack-limit: the soft RLIMIT_STACK to capture with (bytes; ulong.MaxValue: unlimited).</param>
/// <param name="HookPath">the hook to time starts with (null: no timing, as --no-measure).</param>
/// <param name="Force">--force: register even a program that starts slower restored.</param>
public sealed record AddSettings(IReadOnlyList<string> Programs, string RegistryDir, bool ThroughWrapper = false, bool System = false,
    bool Quiet = false, ulong? StackLimit = null, string? HookPath = null, bool Force = false, bool Init = false, uint Variants = 1);

/// <summary>
/// resident add PROG... — captures each program right after ld.so relocated it and stores the
/// image in the registry. One line per program; exit status 1 if any program failed. A failed
/// capture never touches an existing image of that program.
/// </summary>
public static class AddCommand
{
    public static Command Create(TextWriter stdout, TextWriter stderr)
    {
        var programs = new Argument<string[]>("program") { Arity = ArgumentArity.OneOrMore, Description = "program name (searched on PATH) or path" };
        var wrapper = new Option<bool>("--through-wrapper", "-f")
        {
            Description = "PROG is a wrapper (e.g. a shell script): register the first dynamically linked program it execs",
        };
        var system = Cli.SystemOption();
        var quiet = Cli.QuietOption();
        var stack = new Option<string>("--stack-limit")
        {
            Description = "capture under this soft stack limit (e.g. 64M, 8192K, unlimited) instead of resident's own: for programs "
                + "always run under another one, as gcc runs cc1, as and collect2 under 64M. glibc sizes default thread stacks "
                + "from it, so an image restores under another limit only where it can set that size as a normal start would",
            HelpName = "SIZE",
        };
        stack.Validators.Add(r => { if (ParseSize(r.GetValueOrDefault<string>()) is null) r.AddError("--stack-limit: a size such as 64M, 8192K or unlimited"); });
        var force = new Option<bool>("--force")
        {
            Description = "register even a program that starts slower restored than normally (add times both and refuses it otherwise)",
        };
        var level = new Option<string>("--level")
        {
            Description = "link (default): snapshot once ld.so has loaded and relocated the libraries; the constructors run at every "
                + "start. init: snapshot at main, after the constructors, so a start skips them too - only when the capture proves "
                + "their result is the same for every exec (no pid, time, random bytes, threads, sockets, writes, kept fds; the files "
                + "they read and the variables they look up become dependencies). A refused init level says why and registers the "
                + "link level",
            HelpName = "link|init",
            DefaultValueFactory = _ => "link",
        };
        level.AcceptOnlyFromAmong("link", "init");
        var variants = new Option<uint>("--variants")
        {
            Description = "capture K images of the program, each in another address layout (at most 256); every exec is restored "
                + "from the one its AT_RANDOM picks: log2(K) bits of layout entropy for the executable, libraries and ld.so, "
                + "where one image has none. Costs K captures and K times the private pages on disk (docs/benchmarks.md)",
            HelpName = "K",
            DefaultValueFactory = _ => 1,
        };
        variants.Validators.Add(r => { if (r.GetValueOrDefault<uint>() is < 1 or > 256) r.AddError("--variants: from 1 to 256"); });
        var noMeasure = new Option<bool>("--no-measure")
        {
            Description = "do not time the starts (about a second per program): register without knowing the gain",
        };
        var cmd = new Command("add",
            "Register programs: capture each one once and store its image.\n" +
            "Examples: resident add /usr/bin/perl python3.11 clang-format\n" +
            "          resident add -f ~/bin/launcher.sh    (registers what the script execs)\n" +
            "          resident add --stack-limit 64M /usr/lib/gcc/x86_64-linux-gnu/12/cc1\n" +
            "After each capture, starts to main are timed normal against restored for about a second (main never runs, the\n" +
            "constructors do, as at capture); a program that starts slower restored is not registered unless --force.")
        { programs, wrapper, system, quiet, stack, level, variants, force, noMeasure };
        cmd.SetAction(r => Run(new AddSettings(r.GetValue(programs)!, Cli.RegistryDirFor(r.GetValue(system)), r.GetValue(wrapper),
            r.GetValue(system), r.GetValue(quiet), r.GetValue(stack) is { } size ? ParseSize(size) : null,
            r.GetValue(noMeasure) ? null : Cli.HookPath, r.GetValue(force), r.GetValue(level) == "init", r.GetValue(variants)), stdout, stderr));
        return cmd;
    }

    /// <summary>"64M", "8192K", "1G", "4096" (bytes) or "unlimited"; null if it is none of these.</summary>
    internal static ulong? ParseSize(string? text)
    {
        if (text is null) return null;
        if (text == "unlimited") return ulong.MaxValue;
        ulong unit = text.Length > 0 ? char.ToUpperInvariant(text[^1]) switch { 'K' => 1UL << 10, 'M' => 1UL << 20, 'G' => 1UL << 30, _ => 1 } : 1;
        string digits = unit == 1 ? text : text[..^1];
        return ulong.TryParse(digits, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out ulong n)
            && n > 0 && n <= ulong.MaxValue / unit ? n * unit : null;
    }

    public static int Run(AddSettings s, TextWriter stdout, TextWriter stderr)
    {
        var registry = Cli.OpenRegistry(s.RegistryDir, stderr, s.System, writable: true);
        if (registry is null) return 1;
        var registrar = new Registrar(registry, Registrar.ProcessEnvironment());
        int failures = 0;
        Cli.ForEachWithProgress(s.Programs, p => p, s.Quiet, stdout, (program, output) =>
        {
            try
            {
                var options = new CaptureOptions(s.StackLimit, s.Init);
                if (s.HookPath is null)
                {
                    var summary = registrar.Add(program, s.ThroughWrapper, options, s.Variants);
                    if (!s.Quiet)
                        output.WriteLine(Describe(summary, s.ThroughWrapper ? program : null) + Layouts(s.Variants));
                    return;
                }
                var r = registrar.AddMeasured(program, s.HookPath, s.Force, s.ThroughWrapper, options, s.Variants);
                if (!r.Registered)
                {
                    stderr.WriteLine($"resident: not registered {r.Capture.ProgramPath}: it starts slower restored: {Timing(r.Measurement!)}; "
                        + "--force registers it anyway");
                    failures++;
                }
                else if (!s.Quiet)
                    output.WriteLine(Describe(r.Capture, s.ThroughWrapper ? program : null) + Layouts(s.Variants) + "; " + (r.Measurement is { } m
                        ? $"starts {Timing(m)}{(m.Ratio >= 1 ? ": slower, registered with --force" : "")}"
                        : $"not timed: {r.Unmeasured}"));
            }
            catch (Exception e) when (e is RefusalException or RegistryException or IOException or UnauthorizedAccessException)
            {
                stderr.WriteLine($"resident: cannot register {program}: {e.Message}");
                failures++;
            }
        });
        return failures == 0 ? 0 : 1;
    }

    /// <summary>", in 16 layouts (4 bits)" for layout variants, else nothing.</summary>
    static string Layouts(uint variants) => variants > 1 ? $", in {variants} layouts ({ListItem.BitsText(Math.Log2(variants))})" : "";

    /// <summary>"to main in 0.71 of the time (1.23 → 0.87 ms)".</summary>
    internal static string Timing(StartMeasurement m) =>
        $"to main in {m.Ratio:0.00} of the time ({m.NormalMs:0.00} → {m.ResidentMs:0.00} ms)";

    /// <summary>The one line of a successful capture (add, and the refreshes of refresh and sync).</summary>
    internal static string Describe(CaptureSummary summary, string? wrapper = null)
    {
        string via = wrapper is null ? "" : $" (exec'd by {wrapper})";
        string lazy = summary.LazyBind ? " (lazy binding: the program does not start with LD_BIND_NOW=1)" : "";
        string level = summary.Level == Format.ImageFormat.LevelInit ? " at the init level"
            : summary.InitRefused is { } why ? $" at the link level (init level refused: {why})" : "";
        return $"registered {summary.ProgramPath}{via} (id {summary.Id}){level}: image {Cli.FormatSize(summary.ImageSize)}, " +
            $"captured in {summary.Elapsed.TotalMilliseconds:0} ms{lazy}";
    }
}
