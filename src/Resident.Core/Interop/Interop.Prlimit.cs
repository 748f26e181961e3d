using System.Runtime.InteropServices;

namespace Resident;

internal static partial class Interop
{
    internal const int RLIMIT_STACK = 3;
    internal const int RLIMIT_NOFILE = 7;

    [StructLayout(LayoutKind.Sequential)]
    internal struct RLimit
    {
        public ulong Cur;
        public ulong Max;
    }

    [LibraryImport(Libraries.Libc, EntryPoint = "prlimit", SetLastError = true)]
    private static unsafe partial int prlimit(int pid, int resource, RLimit* newLimit, RLimit* oldLimit);

    /// <summary>The soft and hard limit of <paramref name="resource"/> of this process.</summary>
    internal static unsafe (ulong Soft, ulong Hard) GetLimits(int resource)
    {
        var limit = (RLimit*)NativeMemory.AllocZeroed(1, (nuint)sizeof(RLimit));
        try
        {
            Check(() => prlimit(0, resource, null, limit), "prlimit");
            return (limit->Cur, limit->Max);
        }
        finally { NativeMemory.Free(limit); }
    }

    /// <summary>Sets the soft limit of <paramref name="resource"/> of <paramref name="pid"/>, the hard one unchanged.</summary>
    internal static unsafe void SetSoftLimit(int pid, int resource, ulong soft)
    {
        var limits = (RLimit*)NativeMemory.AllocZeroed(2, (nuint)sizeof(RLimit));
        try
        {
            Check(() => prlimit(pid, resource, null, limits), "prlimit");
            limits[1] = new RLimit { Cur = soft, Max = limits[0].Max };
            Check(() => prlimit(pid, resource, limits + 1, null), "prlimit");
        }
        finally { NativeMemory.Free(limits); }
    }
}
