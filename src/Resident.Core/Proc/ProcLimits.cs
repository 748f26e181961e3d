using System.Globalization;

namespace Resident.Proc;

/// <summary>Parser for /proc/PID/limits.</summary>
public static class ProcLimits
{
    /// <summary>RLIM_INFINITY as the kernel and rs_header.rlimit_stack spell it.</summary>
    public const ulong Infinity = ulong.MaxValue;

    public static ulong StackSoftLimit(int pid) => StackSoftLimit(File.ReadAllText($"/proc/{pid}/limits"));

    /// <summary>
    /// The soft column of "Max stack size" ("unlimited" → <see cref="Infinity"/>). glibc sizes
    /// default thread stacks from it during early init, before the stop point.
    /// </summary>
    public static ulong StackSoftLimit(string limitsText)
    {
        const string Row = "Max stack size";
        foreach (var line in limitsText.Split('\n'))
        {
            if (!line.StartsWith(Row, StringComparison.Ordinal))
                continue;
            string soft = line[Row.Length..].Split(' ', StringSplitOptions.RemoveEmptyEntries)[0];
            return soft == "unlimited" ? Infinity : ulong.Parse(soft, CultureInfo.InvariantCulture);
        }
        throw new FormatException("/proc/PID/limits has no \"Max stack size\" row");
    }
}
