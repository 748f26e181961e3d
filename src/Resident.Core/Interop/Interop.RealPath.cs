using System.Runtime.InteropServices;

namespace Resident;

internal static partial class Interop
{
    [LibraryImport(Libraries.Libc, EntryPoint = "realpath", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial IntPtr RealPathNative(string path, IntPtr resolved);

    /// <summary>realpath(3): absolute, every symlink resolved; null (errno set) on failure.</summary>
    internal static unsafe string? RealPath(string path)
    {
        IntPtr p = RealPathNative(path, IntPtr.Zero);
        if (p == IntPtr.Zero) return null;
        try { return Marshal.PtrToStringUTF8(p); }
        finally { NativeMemory.Free((void*)p); } // realpath mallocs the result; NativeMemory.Free is free(3)
    }
}
