using System.Runtime.InteropServices;

namespace Resident;

internal static partial class Interop
{
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

    /// <summary>stat(2) (follows symlinks); returns 0 or -1 with errno (SetLastError).</summary>
    [LibraryImport("libc", EntryPoint = "stat", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    internal static partial int Stat(string path, out StatBuf buf);

    /// <summary>lstat(2) (does not follow a final symlink).</summary>
    [LibraryImport("libc", EntryPoint = "lstat", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    internal static partial int LStat(string path, out StatBuf buf);
}
