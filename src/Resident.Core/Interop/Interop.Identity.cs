using System.Runtime.InteropServices;

namespace Resident;

internal static partial class Interop
{
    /// <summary>geteuid(2): never fails. The hook trusts files owned by this uid or root.</summary>
    [LibraryImport(Libraries.Libc, EntryPoint = "geteuid")]
    internal static partial uint GetEuid();
}
