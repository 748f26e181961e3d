using Resident.Proc;

namespace Resident.Capture;

/// <summary>
/// What <see cref="StartMeasure"/> found: median nanoseconds from exec to main, without and with
/// the image. Whole nanoseconds, the values the image header keeps, so that what `add` prints
/// and what `list` and `show` print later are computed from the same numbers.
/// </summary>
public sealed record StartMeasurement(ulong NormalNs, ulong ResidentNs)
{
    public double NormalMs => NormalNs / 1e6;
    public double ResidentMs => ResidentNs / 1e6;

    /// <summary>Resident time over normal time: below 1 is faster.</summary>
    public double Ratio => (double)ResidentNs / NormalNs;
}

/// <summary>
/// How `resident add` shows the gain: starts of the program to its main, normal and restored,
/// in alternating blocks for about a second. Both go through the hook (LD_AUDIT), as a user
/// with the hook enabled runs them; RESIDENT_MEASURE makes the hook end each process at main's
/// first instruction (main never runs: only the constructors, as at capture), the normal one
/// after finding no image in an empty registry (what an unregistered program costs with the
/// hook enabled), the resident one restored from the image in a directory of its own. Each run must end there (exit 0), and one restore is checked by its debug line.
/// </summary>
public static class StartMeasure
{
    const int BlockRuns = 5;
    const int MinRounds = 4;

    /// <summary>
    /// Measures <paramref name="program"/> (its image in <paramref name="imageDir"/>, main at
    /// <paramref name="mainOffset"/> from its first byte) for about <paramref name="budget"/>.
    /// Throws InvalidOperationException with a one-line reason when the starts do not reach
    /// main or the image is not used.
    /// </summary>
    public static StartMeasurement Measure(string program, string hookPath, string imageDir, ulong mainOffset,
        IReadOnlyDictionary<string, string> environment, TimeSpan budget)
    {
        var baseEnv = environment.Where(kv => kv.Key != "LD_AUDIT" && !kv.Key.StartsWith("RESIDENT_", StringComparison.Ordinal))
            .Select(kv => $"{kv.Key}={kv.Value}").ToList();
        // normal: the hook finds no image (an empty registry), as for a program not registered
        string none = Directory.CreateTempSubdirectory("resident-measure-").FullName;
        try
        {
            List<string> Env(string mode, params string[] more) =>
                [.. baseEnv, $"LD_AUDIT={hookPath}", $"RESIDENT_DIR={(mode == "normal" ? none : imageDir)}", $"RESIDENT_MEASURE={mode}:{mainOffset:x}", .. more];
            return Alternate(program, Env, budget);
        }
        finally { Directory.Delete(none, recursive: true); }
    }

    static StartMeasurement Alternate(string program, Func<string, string[], List<string>> Env, TimeSpan budget)
    {
        CheckRestored(program, Env("resident", ["RESIDENT_DEBUG=1"]));
        using var normal = new ChildLauncher(program, [program], Env("normal", []), "/dev/null");
        using var resident = new ChildLauncher(program, [program], Env("resident", []), "/dev/null");
        var times = new Dictionary<string, List<double>> { ["normal"] = [], ["resident"] = [] };
        var clock = System.Diagnostics.Stopwatch.StartNew();
        for (int round = 0; round < MinRounds || clock.Elapsed < budget; round++)
            foreach (var (mode, launcher) in round % 2 == 0 ? [("normal", normal), ("resident", resident)] : new[] { ("resident", resident), ("normal", normal) })
                times[mode].Add(Block(launcher, mode));
        return new StartMeasurement(Nanoseconds(Median(times["normal"])), Nanoseconds(Median(times["resident"])));
    }

    /// <summary>Milliseconds per run of <see cref="BlockRuns"/> runs, each of which must reach main.</summary>
    static double Block(ChildLauncher launcher, string mode)
    {
        var clock = System.Diagnostics.Stopwatch.StartNew();
        for (int i = 0; i < BlockRuns; i++)
        {
            var (status, _) = launcher.Run();
            if (status != 0)
                throw new InvalidOperationException($"a {mode} start did not reach main ({ChildLauncher.Describe(status)})");
        }
        return clock.Elapsed.TotalMilliseconds / BlockRuns;
    }

    static void CheckRestored(string program, List<string> env)
    {
        string stderr = Path.GetTempFileName();
        try
        {
            using var check = new ChildLauncher(program, [program], env, "/dev/null", stderrPath: stderr);
            var (status, _) = check.Run();
            string said = File.ReadAllText(stderr).Trim();
            if (!said.StartsWith("resident: restored ", StringComparison.Ordinal))
                throw new InvalidOperationException($"the image is not used: {(said.Length > 0 ? said : "the hook said nothing")}");
            if (status != 0)
                throw new InvalidOperationException($"a restored start did not reach main ({ChildLauncher.Describe(status)})");
        }
        finally { File.Delete(stderr); }
    }

    static ulong Nanoseconds(double ms) => Math.Max(1, (ulong)Math.Round(ms * 1e6));

    static double Median(List<double> v)
    {
        var s = v.Order().ToList();
        return s.Count % 2 == 1 ? s[s.Count / 2] : (s[s.Count / 2 - 1] + s[s.Count / 2]) / 2;
    }
}
