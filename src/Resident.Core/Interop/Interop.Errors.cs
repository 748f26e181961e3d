using System.Runtime.InteropServices;

namespace Resident;

/// <summary>A libc call failed; <see cref="Errno"/> is the raw errno value.</summary>
public sealed class ErrnoException(string call, int errno)
    : IOException($"{call}: {Marshal.GetPInvokeErrorMessage(errno)} (errno {errno})")
{
    public int Errno { get; } = errno;
    public string Call { get; } = call;
}

internal static partial class Interop
{
    internal const int EINTR = 4;
    internal const int ENOENT = 2;
    internal const int ESRCH = 3;
    internal const int EIO = 5;
    internal const int ECHILD = 10;
    internal const int ENOTDIR = 20;
    internal const int ENODATA = 61;

    /// <summary>
    /// The one place that turns a -1/errno return into an exception and retries EINTR:
    /// <paramref name="call"/> must set errno (LibraryImport SetLastError = true) and be
    /// safe to repeat when it was interrupted before doing anything.
    /// </summary>
    internal static long Check(Func<long> call, string what)
    {
        while (true)
        {
            long result = call();
            if (result != -1)
                return result;
            int errno = Marshal.GetLastPInvokeError();
            if (errno != EINTR)
                throw new ErrnoException(what, errno);
        }
    }

    /// <summary>For calls that return an error number instead of setting errno (posix_spawn*).</summary>
    internal static void CheckReturnedError(int error, string what)
    {
        if (error != 0)
            throw new ErrnoException(what, error);
    }
}
