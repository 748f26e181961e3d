using System.Runtime.InteropServices;

namespace Resident;

internal static partial class Interop
{
    const int O_RDONLY_DIRECTORY_CLOEXEC = 0x10000 | 0x80000; // O_DIRECTORY | O_CLOEXEC (x86_64)

    [LibraryImport(Libraries.Libc, EntryPoint = "open", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int open_for_fsync(string path, int flags);

    [LibraryImport(Libraries.Libc, EntryPoint = "fsync", SetLastError = true)]
    private static partial int fsync_fd(int fd);

    [LibraryImport(Libraries.Libc, EntryPoint = "close", SetLastError = true)]
    private static partial int close_fsynced(int fd);

    /// <summary>
    /// fsync(2) of a directory, so a rename into it survives a crash. .NET cannot open a
    /// directory as a stream, hence the raw calls.
    /// </summary>
    internal static void FsyncDirectory(string path)
    {
        int fd = (int)Check(() => open_for_fsync(path, O_RDONLY_DIRECTORY_CLOEXEC), $"open {path}");
        try { Check(() => fsync_fd(fd), $"fsync {path}"); }
        finally { close_fsynced(fd); }
    }
}
