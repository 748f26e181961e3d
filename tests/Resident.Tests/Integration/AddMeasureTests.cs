using System.Globalization;
using System.Runtime.Versioning;
using System.Text.RegularExpressions;
using Xunit;
using Resident.Tests.Cli;
using Resident.Tests.Integration.Harness;

namespace Resident.Tests.Integration;

/// <summary>
/// `resident add` shows the gain: it times starts to main normal against restored and registers
/// only a program that starts faster restored, unless --force. The fixture `pace` makes the
/// outcome certain: its constructor sleeps 30 ms in the restored starts (PACE=restored) or in
/// the normal ones (PACE=normal); add passes its environment on to the starts it times.
/// </summary>
public sealed partial class AddMeasureTests(Fixtures fx) : IClassFixture<Fixtures>
{
    [GeneratedRegex(@"to main in ([0-9.]+) of the time \(([0-9.]+) → ([0-9.]+) ms\)")]
    private static partial Regex Timing();

    static (double Ratio, double Normal, double Resident) Parse(string line)
    {
        var m = Timing().Match(line);
        Assert.True(m.Success, "no timing in: " + line);
        double D(int g) => double.Parse(m.Groups[g].Value, CultureInfo.InvariantCulture);
        return (D(1), D(2), D(3));
    }

    static Dictionary<string, string> Pace(string mode) => new() { ["PACE"] = mode };

    [Fact]
    public void Faster_RegisteredWithItsRatio_InListAndShow()
    {
        using var s = new ResidentSession { MeasureAdds = true };
        var pace = fx.Path("pace");
        var add = s.Cli(["add", pace], Pace("normal"));
        Assert.True(add.ExitCode == 0, add.ToString());
        Assert.StartsWith($"registered {pace} (id 1): ", add.StdoutText);
        var (ratio, normal, resident) = Parse(add.StdoutText);
        Assert.True(normal > 30 && ratio < 0.5, $"the normal starts sleep 30 ms: {add.StdoutText}");
        Assert.Equal(ratio, resident / normal, 0.01);

        var item = Assert.Single(CliRun.ListJson(s.RegistryDir));
        Assert.Equal(ratio, item.StartRatio!.Value, 0.006);
        Assert.Equal(normal, item.NormalMs!.Value, 0.011); // add prints two decimals
        Assert.Equal(resident, item.ResidentMs!.Value, 0.011);
        Assert.Contains($"{ratio:0.00}×", s.Cli("list").StdoutText);
        Assert.Contains($"start       to main in {ratio:0.00} of a normal start's time", s.Cli("show", pace).StdoutText);
        s.AssertSameResident(s.Spec(pace), pace); // the image add measured is the one registered, and it restores
    }

    [Fact]
    public void Slower_NotRegistered_TheOldImageKept_ForceRegisters()
    {
        using var s = new ResidentSession { MeasureAdds = true };
        var pace = fx.Path("pace");
        var first = s.Cli(["add", "--no-measure", pace], Pace("restored"));
        Assert.True(first.ExitCode == 0, first.ToString());
        Assert.DoesNotContain("to main", first.StdoutText);
        var image = Assert.Single(s.ImageFiles());
        var before = File.ReadAllBytes(image);

        var add = s.Cli(["add", pace], Pace("restored"));
        Assert.True(add.ExitCode == 1, add.ToString());
        Assert.Equal("", add.StdoutText);
        var said = Assert.Single(add.StderrText.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.StartsWith($"resident: not registered {pace}: it starts slower restored: to main in ", said);
        Assert.EndsWith("; --force registers it anyway", said);
        Assert.True(Parse(said).Ratio > 2, said);
        Assert.Equal(image, Assert.Single(s.ImageFiles()));
        Assert.Equal(before, File.ReadAllBytes(image));
        Assert.Empty(Directory.GetDirectories(s.RegistryDir)); // no staging directory left
        Assert.Null(Assert.Single(CliRun.ListJson(s.RegistryDir)).StartRatio);

        var forced = s.Cli(["add", "--force", pace], Pace("restored"));
        Assert.True(forced.ExitCode == 0, forced.ToString());
        Assert.Contains(": slower, registered with --force", forced.StdoutText);
        var item = Assert.Single(CliRun.ListJson(s.RegistryDir));
        Assert.True(item.StartRatio > 2, forced.StdoutText);
        Assert.Equal(1UL, item.Id); // the same registration, its image replaced
    }

    [Fact]
    public void NoMeasure_RegistersWithoutTiming()
    {
        using var s = new ResidentSession { MeasureAdds = true };
        var pace = fx.Path("pace");
        var add = s.Cli(["add", "--no-measure", pace], Pace("restored"));
        Assert.True(add.ExitCode == 0, add.ToString());
        Assert.Matches(@"^registered \S+ \(id 1\): image [0-9.]+ KB, captured in \d+ ms\n$", add.StdoutText);
        Assert.Contains("start       not timed", s.Cli("show", pace).StdoutText);
    }

    /// <summary>RESIDENT_MEASURE: both ways, the constructors run and main does not; the process exits 0 there.</summary>
    [Fact]
    public void MeasureMode_EndsAtMain_NormalAndRestored()
    {
        using var s = new ResidentSession();
        var pace = fx.Path("pace");
        s.Register(pace);
        Assert.Equal("constructor ran\nmain ran\n", s.RunNormal(s.Spec(pace)).StdoutText);
        string nm = Capture.NativeBuild.Run("nm", pace);
        string main = Regex.Match(nm, @"^([0-9a-f]+) T main$", RegexOptions.Multiline).Groups[1].Value;
        Assert.NotEqual("", main);
        ulong offset = ulong.Parse(main, NumberStyles.HexNumber); // PIE: the first PT_LOAD is at 0
        foreach (var mode in new[] { "normal", "resident" })
        {
            var r = s.RunResident(s.Spec(pace, [], new Dictionary<string, string> { ["RESIDENT_MEASURE"] = $"{mode}:{offset:x}" }));
            Assert.True(r.ExitCode == 0, $"{mode}: {r}");
            Assert.Equal("constructor ran\n", r.StdoutText);
            Assert.Equal(mode == "resident", r.StderrText.Contains("resident: restored "));
        }
        // an offset outside the executable's code: never restored with main left to run unmarked
        var outside = s.RunResident(s.Spec(pace, [], new Dictionary<string, string> { ["RESIDENT_MEASURE"] = "resident:7fffffff0" }));
        Assert.Contains("main not in the executable's code", outside.StderrText);
    }
}
