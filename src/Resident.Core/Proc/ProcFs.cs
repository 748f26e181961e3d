using System.Globalization;

namespace Resident.Proc;

/// <summary>What /proc tells about a (stopped) process. Plain file reads: any thread may call.</summary>
internal static class ProcFs
{
    /// <summary>The environment block of the current exec, "NAME=value" entries in order.</summary>
    public static List<string> ReadEnviron(int pid) =>
        File.ReadAllText($"/proc/{pid}/environ").Split('\0', StringSplitOptions.RemoveEmptyEntries).ToList();

    public static string Exe(int pid) => new FileInfo($"/proc/{pid}/exe").LinkTarget ?? "";

    public static string Cwd(int pid) => new DirectoryInfo($"/proc/{pid}/cwd").LinkTarget ?? "/";

    /// <summary>What fd <paramref name="fd"/> refers to, or null when it is not open.</summary>
    public static string? FdTarget(int pid, int fd)
    {
        try { return new FileInfo($"/proc/{pid}/fd/{fd}").LinkTarget; }
        catch (IOException) { return null; }
    }

    public static int ThreadCount(int pid) => Directory.GetDirectories($"/proc/{pid}/task").Length;

    public static IReadOnlyList<int> OpenFds(int pid) =>
        Directory.GetFileSystemEntries($"/proc/{pid}/fd")
            .Select(e => int.Parse(Path.GetFileName(e), CultureInfo.InvariantCulture))
            .Order().ToList();

    /// <summary>The SigCgt mask of /proc/PID/status: signals with a handler installed.</summary>
    public static ulong CaughtSignals(int pid)
    {
        foreach (var line in File.ReadLines($"/proc/{pid}/status"))
            if (line.StartsWith("SigCgt:", StringComparison.Ordinal))
                return ulong.Parse(line["SigCgt:".Length..].Trim(), NumberStyles.HexNumber, CultureInfo.InvariantCulture);
        throw new RefusalException($"/proc/{pid}/status has no SigCgt line");
    }

    /// <summary>
    /// The fields of /proc/PID/stat by their number in proc(5) (field 1 is the pid, 2 the
    /// command): the command may hold spaces and parentheses, so counting starts after its
    /// last ')'. Numeric fields only; fields 1 and 2 are left 0.
    /// </summary>
    public static ulong[] Stat(int pid)
    {
        var text = File.ReadAllText($"/proc/{pid}/stat");
        var rest = text[(text.LastIndexOf(')') + 2)..].Split(' ', StringSplitOptions.RemoveEmptyEntries);
        var fields = new ulong[rest.Length + 3];
        for (int i = 1; i < rest.Length; i++)   // field 3 is the state letter
            fields[i + 3] = ulong.TryParse(rest[i], NumberStyles.Integer, CultureInfo.InvariantCulture, out var v) ? v : 0;
        return fields;
    }

    /// <summary>Whether a process with this pid exists (a temporary file's writer may have died).</summary>
    public static bool Exists(int pid) => Directory.Exists($"/proc/{pid}");

    /// <summary>Yama's ptrace_scope (0-3), or null without Yama.</summary>
    public static string? YamaPtraceScope()
    {
        try { return File.ReadAllText("/proc/sys/kernel/yama/ptrace_scope").Trim(); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { return null; }
    }

    /// <summary>The first "model name" of /proc/cpuinfo ("?" where there is none, as on some VMs).</summary>
    public static string CpuModel()
    {
        foreach (string line in File.ReadLines("/proc/cpuinfo"))
            if (line.StartsWith("model name", StringComparison.Ordinal) && line.IndexOf(':') is var c and >= 0)
                return line[(c + 1)..].Trim();
        return "?";
    }

    public static bool HasHeap(int pid) =>
        File.ReadLines($"/proc/{pid}/maps").Any(l => l.EndsWith("[heap]", StringComparison.Ordinal));
}
