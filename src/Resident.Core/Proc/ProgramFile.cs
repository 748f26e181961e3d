using System.Runtime.InteropServices;

namespace Resident.Proc;

/// <summary>
/// A program as the kernel would exec it: its absolute path with symlinks resolved, and what one
/// stat(2) of that path said. The image key is <see cref="Dev"/>-<see cref="Ino"/>, exactly what the
/// hook gets from the executable it runs. Resolved once per command and carried from there.
/// </summary>
public sealed record ProgramFile(string Path, ulong Dev, ulong Ino, uint Mode)
{
    /// <summary>
    /// Resolves <paramref name="program"/> like a shell does (a name without '/' is searched on PATH),
    /// follows symlinks and stats the result. Throws <see cref="RefusalException"/> naming it when it
    /// does not exist or cannot be resolved.
    /// </summary>
    public static ProgramFile Identify(string program)
    {
        string path = program.Contains('/') ? System.IO.Path.GetFullPath(program) : SearchPath(program)
            ?? throw new RefusalException($"{program}: not found on PATH");
        try { return Resolve(path); }
        catch (RefusalException e) { throw new RefusalException($"{path}: {e.Message}"); }
    }

    /// <summary>
    /// <paramref name="path"/> (absolute or relative to the working directory) resolved and
    /// stat'ed; the RefusalException's reason does not name it ("no such file").
    /// </summary>
    public static ProgramFile Resolve(string path)
    {
        if (!File.Exists(path) && !Directory.Exists(path))
            throw new RefusalException("no such file");
        string real = Interop.RealPath(path) ?? throw new RefusalException(Marshal.GetLastPInvokeErrorMessage());
        if (Interop.Stat(real, out var st) != 0)
            throw new RefusalException(Marshal.GetLastPInvokeErrorMessage());
        return new ProgramFile(real, st.Dev, st.Ino, st.Mode);
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
