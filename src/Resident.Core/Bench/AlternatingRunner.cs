using System.Diagnostics;
using Resident.Proc;

namespace Resident.Bench;

/// <summary>CPU and wall seconds of RUNS runs of one variant (user and sys from wait4, per child).</summary>
public sealed record BenchTimes(double UserSeconds, double SysSeconds, double WallSeconds, int Runs);

/// <summary>
/// Times the variants side by side. The machine is noisy (shared cores, other builds), so no
/// variant runs all of its runs in one stretch: the runs are split into rounds, every round runs
/// a block of each variant, and the order of the variants rotates from round to round, so a change
/// in background load hits every row alike.
/// </summary>
public static class AlternatingRunner
{
    /// <summary>
    /// RUNS runs of every variant in ROUNDS rounds. Every run must end with EXPECTED_STATUS (what the
    /// normal start returned); anything else throws, because a crashing variant would be fast for
    /// the wrong reason. <paramref name="afterRun"/> is called after every run (progress).
    /// </summary>
    public static IReadOnlyList<BenchTimes> Run(IReadOnlyList<BenchVariant> variants, string stdinPath,
        int runs, int rounds, int expectedStatus, Action? afterRun = null)
    {
        var launchers = variants.Select(v => new ChildLauncher(v.Path, v.Argv, v.Env, stdinPath)).ToList();
        try
        {
            var totals = variants.Select(_ => new Accumulator()).ToArray();
            for (int round = 0; round < rounds; round++)
            {
                int block = runs * (round + 1) / rounds - runs * round / rounds;
                for (int k = 0; k < variants.Count; k++)
                {
                    int i = (k + round) % variants.Count;
                    totals[i].Add(TimeBlock(variants[i], launchers[i], block, expectedStatus, afterRun));
                }
            }
            return totals.Select(t => t.ToTimes()).ToList();
        }
        finally
        {
            launchers.ForEach(l => l.Dispose());
        }
    }

    static BenchTimes TimeBlock(BenchVariant variant, ChildLauncher launcher, int count, int expectedStatus, Action? afterRun)
    {
        var user = TimeSpan.Zero;
        var sys = TimeSpan.Zero;
        var wall = Stopwatch.StartNew();
        for (int n = 0; n < count; n++)
        {
            var (status, usage) = launcher.Run();
            if (status != expectedStatus)
                throw new BenchException($"{variant.Name}: {string.Join(' ', variant.Argv)} ended with {ChildLauncher.Describe(status)} " +
                    $"during timing (the normal start: {ChildLauncher.Describe(expectedStatus)})");
            user += usage.UserTime.ToTimeSpan();
            sys += usage.SystemTime.ToTimeSpan();
            afterRun?.Invoke();
        }
        return new(user.TotalSeconds, sys.TotalSeconds, wall.Elapsed.TotalSeconds, count);
    }

    sealed class Accumulator
    {
        double user, sys, wall;
        int runs;

        public void Add(BenchTimes t) => (user, sys, wall, runs) = (user + t.UserSeconds, sys + t.SysSeconds, wall + t.WallSeconds, runs + t.Runs);

        public BenchTimes ToTimes() => new(user, sys, wall, runs);
    }
}
