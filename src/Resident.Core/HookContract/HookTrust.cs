using System.Runtime.InteropServices;

namespace Resident.HookContract;

/// <summary>
/// The hook's trust rule for its own file, a registry directory and an image (native/hook.c,
/// open_in() and trusted()): owned by this euid or root, and not writable by group or others —
/// else someone else could hand the hook an address space, or replace the hook itself. An
/// image must be a regular file reached without a symlink (the hook opens it O_NOFOLLOW); a
/// registry is a directory, the hook a regular file, both reached through symlinks as the
/// hook and ld.so reach them. tests/Resident.Tests/HookContract/TrustRuleTests.cs feeds the hook
/// and this class the same files.
/// </summary>
public static class HookTrust
{
    const uint S_IFLNK = 0xa000;

    public enum Kind { Image, Directory, File }

    /// <summary>Null when <paramref name="path"/> is trusted as a <paramref name="kind"/>, else why not, naming it.</summary>
    public static string? Problem(string path, Kind kind)
    {
        if ((kind == Kind.Image ? Interop.LStat(path, out var st) : Interop.Stat(path, out st)) != 0)
            return $"{path}: {Marshal.GetLastPInvokeErrorMessage()}";
        uint type = st.Mode & Interop.S_IFMT;
        if (kind == Kind.Image && type == S_IFLNK)
            return $"{path} is a symlink (the hook opens images without following one)";
        if (type != (kind == Kind.Directory ? Interop.S_IFDIR : Interop.S_IFREG))
            return $"{path} is not a {(kind == Kind.Directory ? "directory" : "regular file")}";
        if (st.Uid != Interop.GetEuid() && st.Uid != 0)
            return $"{path} belongs to uid {st.Uid}, neither you nor root";
        if ((st.Mode & 0x12) != 0)   // S_IWGRP | S_IWOTH
            return $"{path} is group- or world-writable (chmod go-w it)";
        return null;
    }
}
