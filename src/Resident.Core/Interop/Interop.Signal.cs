using System.Runtime.InteropServices;

namespace Resident;

internal static partial class Interop
{
    internal const int SIGKILL = 9;
    internal const int SIGTRAP = 5;
    internal const int SIGSEGV = 11;
    internal const int SIGCONT = 18;
    internal const int SIGSTOP = 19;

    [LibraryImport(Libraries.Libc, EntryPoint = "kill", SetLastError = true)]
    private static partial int kill(int pid, int signal);

    internal static void Kill(int pid, int signal) => Check(() => kill(pid, signal), $"kill({pid}, {signal})");

    /// <summary>kill that ignores ESRCH: the process may already be gone (exited or reaped).</summary>
    internal static void KillIfAlive(int pid, int signal)
    {
        try { Kill(pid, signal); }
        catch (ErrnoException e) when (e.Errno == ESRCH) { }
    }
}
