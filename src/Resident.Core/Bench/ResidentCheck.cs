using Resident.Proc;

namespace Resident.Bench;

/// <summary>What the hook said about one run with RESIDENT_DEBUG=1.</summary>
public sealed record ResidentCheckResult(bool Restored, string Lines);

/// <summary>
/// A resident row means nothing unless the hook really restored the program: a fallback (stale
/// image, different environment) would time the hook plus a normal start. One run with
/// RESIDENT_DEBUG=1 before any timing decides whether the row is measured at all.
/// </summary>
public static class ResidentCheck
{
    const string Prefix = "resident: ";

    public static ResidentCheckResult Verify(BenchVariant resident, string stdinPath)
    {
        string stderrFile = Path.GetTempFileName();
        try
        {
            using (var child = new ChildLauncher(resident.Path, resident.Argv, [.. resident.Env, "RESIDENT_DEBUG=1"], stdinPath, stderrPath: stderrFile))
                child.Run();
            return Judge(File.ReadAllLines(stderrFile));
        }
        finally
        {
            File.Delete(stderrFile);
        }
    }

    /// <summary>Restored when the hook printed at least one line and every one of them is "resident: restored PATH".</summary>
    internal static ResidentCheckResult Judge(IEnumerable<string> stderrLines)
    {
        var lines = stderrLines.Where(l => l.StartsWith(Prefix, StringComparison.Ordinal)).ToList();
        bool restored = lines.Count > 0 && lines.All(l => l.StartsWith(Prefix + "restored ", StringComparison.Ordinal));
        return new(restored, lines.Count == 0 ? "(the hook printed no resident: line)" : string.Join("; ", lines));
    }
}
