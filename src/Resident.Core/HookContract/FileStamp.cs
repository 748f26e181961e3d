using Resident.Format;

namespace Resident.HookContract;

/// <summary>
/// What a file's stamp is and when it still holds: device, inode, size, mtime and ctime, as
/// stat(2) reports them for the path (symlinks followed: ld.so opened the name). The hook
/// applies the same comparison (native/files.c same_file, check_file); StalenessRuleTests
/// runs both on the same files.
/// </summary>
public static class FileStamp
{
    /// <summary>Stats <paramref name="path"/> now: an entry with <paramref name="flags"/>, or null if it cannot be stat'ed.</summary>
    public static FileEntry? Of(string path, uint flags) =>
        Interop.Stat(path, out var st) != 0 ? null
            : new FileEntry(path, flags, st.Dev, st.Ino, (ulong)st.Size, st.MtimeSec, st.MtimeNsec, st.CtimeSec, st.CtimeNsec);

    /// <summary>Same file, same contents as far as stat can tell.</summary>
    public static bool Same(FileEntry recorded, FileEntry now) =>
        recorded.Dev == now.Dev && recorded.Ino == now.Ino && recorded.Size == now.Size && recorded.MtimeSec == now.MtimeSec
        && recorded.MtimeNsec == now.MtimeNsec && recorded.CtimeSec == now.CtimeSec && recorded.CtimeNsec == now.CtimeNsec;

    /// <summary>As the hook decides: only ENOENT and ENOTDIR prove absence (EACCES could hide a library).</summary>
    public static bool Absent(string path)
    {
        if (Interop.Stat(path, out _) == 0)
            return false;
        int errno = System.Runtime.InteropServices.Marshal.GetLastPInvokeError();
        return errno is Interop.ENOENT or Interop.ENOTDIR;
    }
}
