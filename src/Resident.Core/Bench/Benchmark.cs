using Resident.Proc;

namespace Resident.Bench;

/// <summary>The measurement behind `resident bench`, once the program is registered in the temporary registry.</summary>
public static class Benchmark
{
    /// <summary>
    /// Verifies the resident row with RESIDENT_DEBUG=1 and drops it when the hook did not restore,
    /// runs every remaining variant once (warm-up; each must end like the normal start), then times
    /// RUNS runs of each remaining variant in ROUNDS alternating rounds.
    /// <paramref name="afterRun"/> is called after every timed run, with the total count first known
    /// from <paramref name="totalRuns"/>.
    /// </summary>
    public static BenchReport Run(BenchTarget target, IReadOnlyDictionary<string, string> environment,
        int runs, int rounds, string? capture, Action<int>? totalRuns = null, Action? afterRun = null)
    {
        var variants = BenchPlan.Variants(target, environment).ToList();
        var check = ResidentCheck.Verify(variants.Single(v => v.Name == BenchPlan.Resident), target.StdinPath);
        if (!check.Restored)
            variants.RemoveAll(v => v.Name == BenchPlan.Resident);
        var initCheck = variants.FirstOrDefault(v => v.Name == BenchPlan.ResidentInit) is { } init ? ResidentCheck.Verify(init, target.StdinPath) : null;
        if (initCheck is { Restored: false })
            variants.RemoveAll(v => v.Name == BenchPlan.ResidentInit);
        int expected = WarmUp(variants, target.StdinPath);
        totalRuns?.Invoke(runs * variants.Count);
        var times = AlternatingRunner.Run(variants, target.StdinPath, runs, rounds, expected, afterRun);
        double normalWall = times[0].WallSeconds;
        var rows = variants.Zip(times, (v, t) => new BenchRow(v.Name, v.Path, t.UserSeconds, t.SysSeconds, t.WallSeconds,
            t.WallSeconds * 1000 / t.Runs, t.WallSeconds / normalWall,
            v.Name == BenchPlan.Resident ? check.Lines : v.Name == BenchPlan.ResidentInit ? initCheck!.Lines : null)).ToList();
        return new BenchReport(DateTime.Now.ToString("yyyy-MM-dd HH:mm:ss"), MachineInfo.Current(), target.Argv,
            target.StaticPath, target.StdinPath, runs, rounds, capture, check.Lines, rows) { InitCheck = initCheck?.Lines };
    }

    /// <summary>One run of each variant; returns the normal start's wait status, which all must share.</summary>
    static int WarmUp(IReadOnlyList<BenchVariant> variants, string stdinPath)
    {
        int? expected = null;
        foreach (var v in variants)
        {
            using var launcher = new ChildLauncher(v.Path, v.Argv, v.Env, stdinPath);
            int status = launcher.Run().Status;
            expected ??= status;
            if (status != expected)
                throw new BenchException($"{v.Name}: {string.Join(' ', v.Argv)} ended with {ChildLauncher.Describe(status)}, " +
                    $"the normal start with {ChildLauncher.Describe(expected.Value)}");
        }
        return expected!.Value;
    }
}
