using System.Runtime.InteropServices;

namespace Resident;

internal static partial class Interop
{
    internal const int WNOHANG = 1;
    internal const int WUNTRACED = 2;
    /// <summary>Wait for every kind of child, clone children and ptrace stops included.</summary>
    internal const int __WALL = 0x40000000;

    [LibraryImport(Libraries.Libc, EntryPoint = "waitpid", SetLastError = true)]
    private static partial int waitpid(int pid, out int status, int options);

    /// <summary>waitpid for one pid (never -1: other children belong to other code). Returns 0 only with WNOHANG.</summary>
    internal static int WaitPid(int pid, out int status, int options)
    {
        int st = 0;
        int got = (int)Check(() => waitpid(pid, out st, options), "waitpid");
        status = st;
        return got;
    }

    internal static bool WIfExited(int status) => (status & 0x7f) == 0;
    internal static int WExitStatus(int status) => (status >> 8) & 0xff;
    internal static bool WIfSignaled(int status) => ((sbyte)((status & 0x7f) + 1) >> 1) > 0;
    internal static int WTermSig(int status) => status & 0x7f;
    internal static bool WIfStopped(int status) => (status & 0xff) == 0x7f;
    internal static int WStopSig(int status) => (status >> 8) & 0xff;
    /// <summary>The PTRACE_EVENT_* of a ptrace event stop, 0 for other stops.</summary>
    internal static int WPtraceEvent(int status) => status >> 16;
}
