using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace Resident;

internal static partial class Interop
{
    // A pidfd names one process for good: signalling through it can never hit an unrelated
    // process that reused the pid after a reap. Linux 5.3; glibc wraps the calls only from 2.36,
    // so they are made through syscall(2).
    const long SYS_pidfd_send_signal = 424;
    const long SYS_pidfd_open = 434;

    [LibraryImport(Libraries.Libc, EntryPoint = "syscall", SetLastError = true)]
    private static partial long syscall_pidfd_open(long nr, long pid, long flags);

    [LibraryImport(Libraries.Libc, EntryPoint = "syscall", SetLastError = true)]
    private static partial long syscall_pidfd_send_signal(long nr, SafeFileHandle pidfd, long signal, nint info, long flags);

    /// <summary>A pidfd (O_CLOEXEC) for a child that has not been reaped yet.</summary>
    internal static SafeFileHandle PidfdOpen(int pid) =>
        new((nint)Check(() => syscall_pidfd_open(SYS_pidfd_open, pid, 0), $"pidfd_open({pid})"), ownsHandle: true);

    /// <summary>Signals the process; ESRCH (it has exited) is ignored.</summary>
    internal static void PidfdKill(SafeFileHandle pidfd, int signal)
    {
        try { Check(() => syscall_pidfd_send_signal(SYS_pidfd_send_signal, pidfd, signal, 0, 0), "pidfd_send_signal"); }
        catch (ErrnoException e) when (e.Errno == ESRCH) { }
    }
}
