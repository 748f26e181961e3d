using System.Runtime.InteropServices;

namespace Resident;

internal static partial class Interop
{
    /// <summary>personality(2)'s flag that turns off address-space randomization for the next exec.</summary>
    internal const uint ADDR_NO_RANDOMIZE = 0x0040000;

    /// <summary>personality(2)'s flag for the legacy layout: mmap bottom-up from a third of the address space, far below
    /// where any exec's stack and vdso go (the capture for export, docs/export.md).</summary>
    internal const uint ADDR_COMPAT_LAYOUT = 0x0200000;

    /// <summary>personality(0xffffffff) reads the calling thread's persona without changing it.</summary>
    internal const uint PersonalityQuery = 0xffffffff;

    /// <summary>personality(2): sets the calling thread's execution domain (inherited by the children it spawns); returns the old one.</summary>
    [LibraryImport(Libraries.Libc, EntryPoint = "personality", SetLastError = true)]
    internal static partial int Personality(uint persona);
}
