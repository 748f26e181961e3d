using System.Text.Json;
using ScottPlot;

// bench-plot SYNTH_JSON PNG — start-up time against relocations, one line per row of the
// synthetic benchmark (bench/synth/scaling.py writes SYNTH_JSON). x is logarithmic: R spans 10k..1M.
if (args.Length != 2)
{
    Console.Error.WriteLine("usage: bench-plot synth_scaling.json out.png");
    return 2;
}

using var doc = JsonDocument.Parse(File.ReadAllText(args[0]));
var machine = doc.RootElement.GetProperty("machine");
var points = doc.RootElement.GetProperty("results").EnumerateArray().ToList();

var plot = new Plot();
string[] rows = ["normal", "LD_BIND_NOW=1", "resident", "static"];
foreach (string row in rows)
{
    // a row can be missing at some R (resident bench leaves out an unverified resident row)
    var present = points.Where(p => p.TryGetProperty(row, out var v) && v.ValueKind == JsonValueKind.Number).ToList();
    double[] xs = present.Select(p => Math.Log10(p.GetProperty("relocs").GetDouble())).ToArray();
    double[] ys = present.Select(p => p.GetProperty(row).GetDouble()).ToArray();
    var line = plot.Add.Scatter(xs, ys);
    line.LegendText = row;
    line.LineWidth = 2;
    line.MarkerSize = 7;
}

plot.Axes.Bottom.TickGenerator = new ScottPlot.TickGenerators.NumericAutomatic
{
    MinorTickGenerator = new ScottPlot.TickGenerators.LogMinorTickGenerator(),
    IntegerTicksOnly = true,
    LabelFormatter = x => $"{Math.Pow(10, x):N0}",
};
plot.Axes.Bottom.Label.Text = "symbol relocations R (log scale)";
plot.Axes.Left.Label.Text = "ms per start (wall)";
int libs = points.Count > 0 ? points[0].GetProperty("libs").GetInt32() : 0;
plot.Title($"Start-up time vs relocations: synthetic program, {libs} shared libraries\n" +
    $"{machine.GetProperty("cpu").GetString()}, kernel {machine.GetProperty("kernel").GetString()}, " +
    $"glibc {machine.GetProperty("glibc").GetString()}, {machine.GetProperty("date").GetString()}, load {machine.GetProperty("load").GetDouble():0.0}");
plot.Axes.SetLimitsY(0, points.SelectMany(p => rows.Select(r => p.TryGetProperty(r, out var v) && v.ValueKind == JsonValueKind.Number ? v.GetDouble() : 0)).DefaultIfEmpty(1).Max() * 1.1);
plot.ShowLegend(Alignment.UpperLeft);
plot.SavePng(args[1], 1000, 600);
Console.WriteLine($"bench-plot: wrote {args[1]}");
return 0;
