using System.Runtime.InteropServices;

namespace Resident;

internal static partial class Interop
{
    /// <summary>PR_GET_AUXV (Linux 6.4+): copies this process's auxv; EINVAL on older kernels.</summary>
    internal const int PR_GET_AUXV = 0x41555856;

    /// <summary>prctl(2); returns -1 with errno (SetLastError) on failure.</summary>
    [LibraryImport(Libraries.Libc, EntryPoint = "prctl", SetLastError = true)]
    internal static partial int Prctl(int option, nuint arg2, nuint arg3, nuint arg4, nuint arg5);
}
