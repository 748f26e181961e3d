using System.Text.Json.Serialization;

namespace Resident.Bench;

/// <summary>
/// One row of the seed's table. <paramref name="Ratio"/> is wall time relative to the normal row;
/// <paramref name="Verified"/> is the hook's RESIDENT_DEBUG=1 line for the resident row (null for others).
/// </summary>
public sealed record BenchRow(string Name, string Program, double UserSeconds, double SysSeconds,
    double WallSeconds, double MsPerRun, double Ratio, string? Verified);

/// <summary>
/// A whole `resident bench` result. <paramref name="ResidentCheck"/> is what the hook printed in
/// the verification run; the resident row is in <paramref name="Rows"/> only if that was a restore.
/// </summary>
public sealed record BenchReport(string Date, MachineInfo Machine, IReadOnlyList<string> Command, string? Static,
    string Stdin, int Runs, int Rounds, string? Capture, string ResidentCheck, IReadOnlyList<BenchRow> Rows)
{
    public bool ResidentVerified => Rows.Any(r => r.Name == BenchPlan.Resident);

    /// <summary>--init: what `resident add --level init` printed (the level it got, or why it was refused).</summary>
    public string? InitCapture { get; init; }

    /// <summary>--init: what the hook said of one run of the resident init row (it is timed only if "restored").</summary>
    public string? InitCheck { get; init; }
}

[JsonSourceGenerationOptions(WriteIndented = true, PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase)]
[JsonSerializable(typeof(BenchReport))]
public sealed partial class BenchJsonContext : JsonSerializerContext;
