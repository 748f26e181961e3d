using System.Runtime.InteropServices;

namespace Resident;

internal static partial class Interop
{
    internal const int RLIMIT_STACK = 3;

    [StructLayout(LayoutKind.Sequential)]
    internal struct RLimit
    {
        public ulong Cur;
        public ulong Max;
    }

    [LibraryImport(Libraries.Libc, EntryPoint = "prlimit", SetLastError = true)]
    private static unsafe partial int prlimit(int pid, int resource, RLimit* newLimit, RLimit* oldLimit);

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
