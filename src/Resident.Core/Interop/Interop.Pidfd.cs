using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace Resident;

internal static partial class Interop
{
    // glibc >= 2.36 wraps both. A pidfd names one process for good: signalling through it can
    // never hit an unrelated process that reused the pid after a reap.
    [LibraryImport(Libraries.Libc, EntryPoint = "pidfd_open", SetLastError = true)]
    private static partial int pidfd_open(int pid, uint flags);

    [LibraryImport(Libraries.Libc, EntryPoint = "pidfd_send_signal", SetLastError = true)]
    private static partial int pidfd_send_signal(SafeFileHandle pidfd, int signal, nint info, uint flags);

    /// <summary>A pidfd (O_CLOEXEC) for a child that has not been reaped yet.</summary>
    internal static SafeFileHandle PidfdOpen(int pid) =>
        new((nint)Check(() => pidfd_open(pid, 0), $"pidfd_open({pid})"), ownsHandle: true);

    /// <summary>Signals the process; ESRCH (it has exited) is ignored.</summary>
    internal static void PidfdKill(SafeFileHandle pidfd, int signal)
    {
        try { Check(() => pidfd_send_signal(pidfd, signal, 0, 0), "pidfd_send_signal"); }
        catch (ErrnoException e) when (e.Errno == ESRCH) { }
    }
}
