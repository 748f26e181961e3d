using System.Runtime.InteropServices;

namespace Resident;

internal static partial class Interop
{
    /// <summary>struct timeval of x86_64: seconds and microseconds, both 64-bit.</summary>
    [StructLayout(LayoutKind.Sequential)]
    internal struct TimeVal
    {
        public long Sec;
        public long Usec;

        public readonly TimeSpan ToTimeSpan() => TimeSpan.FromTicks(Sec * TimeSpan.TicksPerSecond + Usec * 10);
    }

    /// <summary>struct rusage (x86_64): two timevals, then 14 longs this code never reads.</summary>
    [StructLayout(LayoutKind.Sequential)]
    internal unsafe struct RUsage
    {
        public TimeVal UserTime;
        public TimeVal SystemTime;
        private fixed long rest[14];
    }

    [LibraryImport(Libraries.Libc, EntryPoint = "wait4", SetLastError = true)]
    private static unsafe partial int wait4(int pid, int* status, int options, RUsage* usage);

    /// <summary>
    /// wait4(2) for one pid: its wait status and the CPU time of that child alone (the kernel fills
    /// the rusage of the reaped child only, unlike getrusage(RUSAGE_CHILDREN), which sums them all).
    /// </summary>
    internal static unsafe int Wait4(int pid, out RUsage usage)
    {
        int status = 0;
        RUsage u = default;
        int* s = &status;
        RUsage* pu = &u;
        Check(() => wait4(pid, s, 0, pu), "wait4");
        usage = u;
        return status;
    }
}
