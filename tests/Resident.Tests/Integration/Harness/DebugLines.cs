using System.Text;

namespace Resident.Tests.Integration.Harness;

/// <summary>
/// Splits a resident run's stderr into the hook's RESIDENT_DEBUG lines ("resident: restored PATH",
/// "resident: fallback PATH: REASON") and everything else, byte for byte, so the rest can be
/// compared with a normal run's stderr.
/// </summary>
public sealed record DebugLines(IReadOnlyList<string> Lines, byte[] Rest)
{
    const string Prefix = "resident: ";

    public static DebugLines Split(byte[] stderr)
    {
        var lines = new List<string>();
        var rest = new MemoryStream();
        int start = 0;
        while (start < stderr.Length)
        {
            int nl = Array.IndexOf(stderr, (byte)'\n', start);
            int end = nl < 0 ? stderr.Length : nl + 1;
            var line = stderr.AsSpan(start, end - start);
            if (line.StartsWith(Encoding.ASCII.GetBytes(Prefix)))
                lines.Add(Encoding.UTF8.GetString(line).TrimEnd('\n'));
            else
                rest.Write(line);
            start = end;
        }
        return new DebugLines(lines, rest.ToArray());
    }

    public IEnumerable<string> Restored => Lines.Where(l => l.StartsWith(Prefix + "restored "));
    public IEnumerable<string> Fallbacks => Lines.Where(l => l.StartsWith(Prefix + "fallback "));

    /// <summary>The PATH of a "restored PATH" or "fallback PATH: REASON" line.</summary>
    public static string PathOf(string line)
    {
        var s = line[Prefix.Length..];
        s = s[(s.IndexOf(' ') + 1)..];
        return (line.StartsWith(Prefix + "fallback ") || line.StartsWith(Prefix + "level ")) && s.IndexOf(": ", StringComparison.Ordinal) is var c and >= 0 ? s[..c] : s;
    }
}
