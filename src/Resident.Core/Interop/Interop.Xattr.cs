using System.Runtime.InteropServices;

namespace Resident;

internal static partial class Interop
{
    [LibraryImport(Libraries.Libc, EntryPoint = "getxattr", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial nint getxattr(string path, string name, nint value, nuint size);

    /// <summary>True when the extended attribute exists (size query only). ENODATA/ENOTSUP mean absent.</summary>
    internal static bool HasXattr(string path, string name)
    {
        const int ENOTSUP = 95;
        try
        {
            Check(() => getxattr(path, name, 0, 0), $"getxattr({path}, {name})");
            return true;
        }
        catch (ErrnoException e) when (e.Errno is ENODATA or ENOTSUP)
        {
            return false;
        }
    }
}
