using System.Runtime.InteropServices;

namespace Resident;

internal static partial class Interop
{
    const int UtsFieldLength = 65; // __NEW_UTS_LEN + 1 on Linux

    [LibraryImport(Libraries.Libc, EntryPoint = "uname", SetLastError = true)]
    private static unsafe partial int uname(byte* buf);

    /// <summary>uname(2)'s release and version, byte for byte what the hook compares at restore.</summary>
    internal static unsafe (string Release, string Version) Uname()
    {
        byte* buf = stackalloc byte[UtsFieldLength * 6];
        Check(() => uname(buf), "uname");
        return (Field(buf, 2), Field(buf, 3));
    }

    static unsafe string Field(byte* buf, int index) =>
        Marshal.PtrToStringUTF8((nint)(buf + index * UtsFieldLength)) ?? "";
}
