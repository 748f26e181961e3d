using System.Text.Json;
using Xunit;
using Resident.Bench;
using Resident.Cli;
using Resident.Tests.Integration.Harness;

namespace Resident.Tests.Bench;

/// <summary>
/// `resident bench` with a few runs of real programs (fixtures built dynamically and statically):
/// the shape of its table and JSON, and that a resident row appears only after the hook said
/// "restored". Nothing here looks at how long anything took.
/// </summary>
public sealed class BenchCommandTests(Fixtures fx) : IClassFixture<Fixtures>
{
    static (int Code, string Out, string Err) Bench(params string[] words)
    {
        Product.RequireHook();
        var parsed = BenchArgs.Parse(words, Product.Hook);
        Assert.True(parsed.Settings is not null, parsed.Error);
        var o = new StringWriter();
        var e = new StringWriter();
        int code = BenchCommand.Run(parsed.Settings, o, e);
        return (code, o.ToString(), e.ToString());
    }

    static BenchReport Report(string json) =>
        JsonSerializer.Deserialize(json, BenchJsonContext.Default.BenchReport) ?? throw new InvalidOperationException("null JSON");

    [Fact]
    public void JsonHasEveryRowAndTheVerifiedResidentRow()
    {
        var r = Bench(fx.Path("args"), "7", "-n", "3", "--rounds", "2", "--static", fx.Path("static_hello"), "--json");
        Assert.True(r.Code == 0, r.Err);
        var report = Report(r.Out);
        Assert.Equal([BenchPlan.Normal, BenchPlan.BindNow, BenchPlan.Resident, BenchPlan.Static], report.Rows.Select(x => x.Name));
        Assert.Equal([fx.Path("args"), "7"], report.Command);
        Assert.Equal((3, 2), (report.Runs, report.Rounds));
        var resident = report.Rows.Single(x => x.Name == BenchPlan.Resident);
        Assert.Equal($"resident: restored {fx.Path("args")}", resident.Verified);
        Assert.Equal(fx.Path("static_hello"), report.Rows.Single(x => x.Name == BenchPlan.Static).Program);
        Assert.All(report.Rows, x => Assert.True(x.WallSeconds > 0 && x.UserSeconds >= 0 && x.SysSeconds >= 0, $"{x}"));
        Assert.All(report.Rows, x => Assert.Equal(x.WallSeconds * 1000 / 3, x.MsPerRun, 9));
        Assert.Equal(1.0, report.Rows[0].Ratio);
        Assert.StartsWith("registered ", report.Capture);
        Assert.Equal(Interop.LibcVersion(), report.Machine.Glibc);
    }

    /// <summary>--init: one more row, the program captured with --level init into a registry of its own, verified as restored.</summary>
    [Fact]
    public void InitRowIsTheInitLevelCapture_VerifiedRestored()
    {
        var r = Bench(fx.Path("initstate"), "-n", "3", "--rounds", "2", "--init", "--json");
        Assert.True(r.Code == 0, r.Err);
        var report = Report(r.Out);
        Assert.Equal([BenchPlan.Normal, BenchPlan.BindNow, BenchPlan.Resident, BenchPlan.ResidentInit], report.Rows.Select(x => x.Name));
        Assert.Contains(" at the init level", report.InitCapture);
        Assert.DoesNotContain(" at the init level", report.Capture);
        Assert.Equal($"resident: restored {fx.Path("initstate")}", report.Rows.Single(x => x.Name == BenchPlan.ResidentInit).Verified);
        var table = Bench(fx.Path("initstate"), "-n", "2", "--init");
        Assert.True(table.Code == 0, table.Err);
        Assert.Contains("capture (--level init): registered ", table.Out);
        Assert.Contains(table.Out.Split('\n'), l => l.Trim().StartsWith(BenchPlan.ResidentInit + " "));
    }

    [Fact]
    public void TableNamesMachineCheckAndRows()
    {
        var r = Bench("/usr/bin/true", "-n", "2");
        Assert.True(r.Code == 0, r.Err);
        var lines = r.Out.Split('\n').Select(l => l.Trim()).ToList();
        Assert.StartsWith("resident bench: /usr/bin/true </dev/null, 2 runs per row in 2 alternating rounds", lines[0]);
        Assert.Matches(@"^machine: .+, \d+ cpus, kernel \S+, glibc 2\.\d+$", lines[1]);
        Assert.Equal("check:   resident: restored /usr/bin/true", lines[3]);
        Assert.Contains(lines, l => l.Split(' ', StringSplitOptions.RemoveEmptyEntries) is ["user", "s", "sys", "s", "wall", "s", "ms/run", "ratio"]);
        foreach (var row in new[] { BenchPlan.Normal, BenchPlan.BindNow, BenchPlan.Resident })
            Assert.Single(lines, l => l.StartsWith(row + " ") && l.Split(' ', StringSplitOptions.RemoveEmptyEntries).Length == 6);
        Assert.DoesNotContain(lines, l => l.StartsWith(BenchPlan.Static));
    }

    [Fact]
    public void NoResidentRowWhenTheHookDidNotRestore()
    {
        // A static program cannot be captured, so the hook never restores it: the resident row
        // must be missing (not timed as if it were one) and the exit status says so.
        var r = Bench(fx.Path("static_hello"), "-n", "2", "--json");
        Assert.Equal(1, r.Code);
        Assert.Contains("no resident row", r.Err);
        var report = Report(r.Out);
        Assert.False(report.ResidentVerified);
        Assert.Equal([BenchPlan.Normal, BenchPlan.BindNow], report.Rows.Select(x => x.Name));
        Assert.Contains("cannot register", report.Capture);
    }

    [Fact]
    public void ProgramOptionsKeepTheirOrderAndDoubleDashEndsBenchOptions()
    {
        var a = BenchArgs.Parse(["-n", "5", "perl", "-e", "print 1", "--json", "--static", "/s"], "/h").Settings!;
        Assert.Equal(("perl", "-e|print 1", 5, true, "/s"), (a.Program, string.Join('|', a.Args), a.Runs, a.Json, a.Static));
        var b = BenchArgs.Parse(["--rounds", "3", "--", "perl", "-n", "--json"], "/h").Settings!;
        Assert.Equal(("perl", "-n|--json", 3, false), (b.Program, string.Join('|', b.Args), b.Rounds, b.Json));
        Assert.Contains("positive number", BenchArgs.Parse(["-n", "0", "true"], "/h").Error);
        Assert.Contains("needs a value", BenchArgs.Parse(["true", "--static"], "/h").Error);
        Assert.Contains("no program", BenchArgs.Parse(["--json"], "/h").Error);
    }

    [Fact]
    public void ResidentCheckWantsOnlyRestoredLines()
    {
        Assert.True(ResidentCheck.Judge(["hello", "resident: restored /usr/bin/perl"]).Restored);
        Assert.False(ResidentCheck.Judge(["resident: fallback /usr/bin/perl: stale"]).Restored);
        Assert.False(ResidentCheck.Judge(["resident: restored /a", "resident: fallback /b: x"]).Restored);
        Assert.False(ResidentCheck.Judge([]).Restored);
    }
}
