using System.Runtime.InteropServices;

namespace Resident.Proc;

/// <summary>A program as the kernel would exec it: resolved absolute path and its st_dev/st_ino.</summary>
public sealed record ProgramFile(string Path, ulong Dev, ulong Ino)
{
    /// <summary>
    /// Resolves <paramref name="program"/> like a shell does (a name without '/' is searched on PATH),
    /// follows symlinks, and stats it. Throws <see cref="RefusalException"/> if it does not exist.
    /// The image key is st_dev/st_ino of the result, exactly what the hook gets from /proc/self/exe.
    /// </summary>
    public static ProgramFile Identify(string program)
    {
        string path = program.Contains('/') ? System.IO.Path.GetFullPath(program) : SearchPath(program)
            ?? throw new RefusalException($"{program}: not found on PATH");
        if (!File.Exists(path) && !Directory.Exists(path))
            throw new RefusalException($"{path}: no such file");
        string real = Interop.RealPath(path) ?? throw new RefusalException($"{path}: {Marshal.GetLastPInvokeErrorMessage()}");
        if (Interop.Stat(real, out var st) != 0)
            throw new RefusalException($"{real}: {Marshal.GetLastPInvokeErrorMessage()}");
        return new ProgramFile(real, st.Dev, st.Ino);
    }

    static string? SearchPath(string name)
    {
        foreach (string dir in (Environment.GetEnvironmentVariable("PATH") ?? "/usr/local/bin:/usr/bin:/bin").Split(':'))
        {
            string candidate = System.IO.Path.Combine(dir.Length == 0 ? "." : dir, name);
            if (File.Exists(candidate) && (File.GetUnixFileMode(candidate) & (UnixFileMode.UserExecute | UnixFileMode.GroupExecute | UnixFileMode.OtherExecute)) != 0)
                return System.IO.Path.GetFullPath(candidate);
        }
        return null;
    }
}
