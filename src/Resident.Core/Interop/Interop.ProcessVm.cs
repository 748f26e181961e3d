using System.Runtime.InteropServices;

namespace Resident;

internal static partial class Interop
{
    [StructLayout(LayoutKind.Sequential)]
    internal struct IoVec
    {
        public nint Base;
        public nuint Length;
    }

    [LibraryImport(Libraries.Libc, EntryPoint = "process_vm_readv", SetLastError = true)]
    private static unsafe partial nint process_vm_readv(int pid, IoVec* local, ulong liovcnt, IoVec* remote, ulong riovcnt, ulong flags);

    /// <summary>
    /// Reads up to buffer.Length bytes at <paramref name="addr"/> of process <paramref name="pid"/>;
    /// returns the count, which is short when the range runs into an unmapped or unreadable
    /// page ([vvar] and [vsyscall] always are: EFAULT).
    /// </summary>
    internal static unsafe int ProcessVmRead(int pid, ulong addr, Span<byte> buffer)
    {
        fixed (byte* p = buffer)
        {
            IoVec local = new() { Base = (nint)p, Length = (nuint)buffer.Length };
            IoVec remote = new() { Base = (nint)addr, Length = (nuint)buffer.Length };
            IoVec* l = &local, r = &remote;
            return (int)Check(() => process_vm_readv(pid, l, 1, r, 1, 0), "process_vm_readv");
        }
    }
}
