using System.Runtime.InteropServices;

namespace Resident;

internal static partial class Interop
{
    /// <summary>
    /// execvpe(3): searches PATH like a shell. argv and envp must end with a null entry (the caller
    /// adds it). Returns only on failure, -1 with errno.
    /// </summary>
    [LibraryImport(Libraries.Libc, EntryPoint = "execvpe", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    internal static partial int Execvpe(string file, string?[] argv, string?[] envp);
}
