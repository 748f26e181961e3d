using System.Runtime.InteropServices;

namespace Resident;

internal static partial class Interop
{
    [LibraryImport(Libraries.Libc, EntryPoint = "gnu_get_libc_version")]
    private static partial nint gnu_get_libc_version();

    /// <summary>The version of the glibc this process runs on, e.g. "2.36" (a static string, never freed).</summary>
    internal static string LibcVersion() => Marshal.PtrToStringUTF8(gnu_get_libc_version()) ?? "?";
}
