using System.Runtime.InteropServices;

namespace Resident.Registry;

/// <summary>
/// The hook's trust rule for its own file, a registry directory and an image (native/hook.c,
/// trusted()): owned by this euid or root, and not writable by group or others — else someone
/// else could hand the hook an address space, or replace the hook itself.
/// </summary>
public static class HookTrust
{
    /// <summary>Null when <paramref name="path"/> (symlinks followed) is trusted, else why not, naming it.</summary>
    public static string? Problem(string path)
    {
        if (Interop.Stat(path, out var st) != 0)
            return $"{path}: {Marshal.GetLastPInvokeErrorMessage()}";
        if (st.Uid != Interop.GetEuid() && st.Uid != 0)
            return $"{path} belongs to uid {st.Uid}, neither you nor root";
        if ((st.Mode & 0x12) != 0)   // S_IWGRP | S_IWOTH
            return $"{path} is group- or world-writable (chmod go-w it)";
        return null;
    }
}
