using System.Runtime.InteropServices;

namespace Resident;

internal static partial class Interop
{
    internal const uint S_IFMT = 0xf000;
    internal const uint S_IFREG = 0x8000;
    internal const uint S_IFDIR = 0x4000;
    internal const uint S_ISUID = 0x800;
    internal const uint S_ISGID = 0x400;
    internal const int X_OK = 1;

    /// <summary>struct stat of x86_64 Linux (the kernel's and glibc's layout are the same there).</summary>
    [StructLayout(LayoutKind.Sequential)]
    internal struct StatBuf
    {
        public ulong Dev;
        public ulong Ino;
        public ulong Nlink;
        public uint Mode;
        public uint Uid;
        public uint Gid;
        public int Pad0;
        public ulong Rdev;
        public long Size;
        public long Blksize;
        public long Blocks;
        public long AtimeSec, AtimeNsec;
        public long MtimeSec, MtimeNsec;
        public long CtimeSec, CtimeNsec;
        private long reserved0, reserved1, reserved2;
    }

    const long SYS_newfstatat = 262;
    const long AT_FDCWD = -100;
    const long AT_SYMLINK_NOFOLLOW = 0x100;

    // glibc exports stat and lstat as functions only from 2.33 (before, they were inline
    // wrappers of __xstat): the system call itself works with every glibc.
    [LibraryImport(Libraries.Libc, EntryPoint = "syscall", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial long syscall_newfstatat(long nr, long dirfd, string path, out StatBuf buf, long flags);

    /// <summary>stat(2) (follows symlinks); returns 0 or -1 with errno (SetLastError).</summary>
    internal static int Stat(string path, out StatBuf buf) => (int)syscall_newfstatat(SYS_newfstatat, AT_FDCWD, path, out buf, 0);

    /// <summary>lstat(2) (does not follow a final symlink).</summary>
    internal static int LStat(string path, out StatBuf buf) => (int)syscall_newfstatat(SYS_newfstatat, AT_FDCWD, path, out buf, AT_SYMLINK_NOFOLLOW);

    [LibraryImport(Libraries.Libc, EntryPoint = "access", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int access(string path, int mode);

    /// <summary>access(2) with the real uid: true when allowed, false on any error.</summary>
    internal static bool Access(string path, int mode) => access(path, mode) == 0;
}
