namespace Resident;

internal static partial class Interop
{
    internal static class Libraries
    {
        // The full soname: "libc" alone makes the runtime probe libc.so, which on a system with
        // libc6-dev is a linker script that dlopen rejects. Resident supports glibc only.
        internal const string Libc = "libc.so.6";
    }
}
