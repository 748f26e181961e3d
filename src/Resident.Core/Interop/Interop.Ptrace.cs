using System.Runtime.InteropServices;

namespace Resident;

internal static partial class Interop
{
    internal const int PTRACE_POKETEXT = 4;
    internal const int PTRACE_CONT = 7;
    internal const int PTRACE_SINGLESTEP = 9;
    internal const int PTRACE_GETREGS = 12;
    internal const int PTRACE_SETREGS = 13;
    internal const int PTRACE_SYSCALL = 24;
    internal const int PTRACE_SETOPTIONS = 0x4200;
    internal const int PTRACE_GETSIGINFO = 0x4202;
    internal const int PTRACE_SEIZE = 0x4206;
    internal const int PTRACE_LISTEN = 0x4208;
    internal const int PTRACE_GET_SYSCALL_INFO = 0x420e;
    internal const int PTRACE_GET_RSEQ_CONFIGURATION = 0x420f;

    internal const int PTRACE_O_TRACESYSGOOD = 0x01;
    internal const int PTRACE_O_TRACEFORK = 0x02;
    internal const int PTRACE_O_TRACEVFORK = 0x04;
    internal const int PTRACE_O_TRACEEXEC = 0x10;
    internal const int PTRACE_O_EXITKILL = 0x100000;

    internal const int PTRACE_EVENT_EXEC = 4;
    internal const int PTRACE_EVENT_STOP = 128;

    internal const byte PTRACE_SYSCALL_INFO_ENTRY = 1;
    internal const byte PTRACE_SYSCALL_INFO_EXIT = 2;

    /// <summary>struct user_regs_struct (x86_64, sys/user.h), 27 words.</summary>
    [StructLayout(LayoutKind.Sequential)]
    internal struct UserRegs
    {
        public ulong R15, R14, R13, R12, Rbp, Rbx, R11, R10, R9, R8;
        public ulong Rax, Rcx, Rdx, Rsi, Rdi, OrigRax, Rip, Cs, Eflags, Rsp, Ss;
        public ulong FsBase, GsBase, Ds, Es, Fs, Gs;
    }

    /// <summary>
    /// struct ptrace_syscall_info (linux/ptrace.h): op at 0, arch at 4, ip at 8, sp at 16,
    /// then a union: entry {nr, args[6]} or exit {rval, is_error}. Kept larger than the
    /// kernel's 88 bytes; the kernel copies at most what it has.
    /// </summary>
    [StructLayout(LayoutKind.Sequential)]
    internal unsafe struct PtraceSyscallInfo
    {
        public byte Op;
        private fixed byte _pad[3];
        public uint Arch;
        public ulong InstructionPointer;
        public ulong StackPointer;
        public fixed ulong Union[12];
    }

    /// <summary>struct ptrace_rseq_configuration (linux/ptrace.h).</summary>
    [StructLayout(LayoutKind.Sequential)]
    internal struct PtraceRseqConfiguration
    {
        public ulong RseqAbiPointer;
        public uint RseqAbiSize;
        public uint Signature;
        public uint Flags;
        public uint Pad;
    }

    // glibc declares ptrace variadic; all arguments here are integers/pointers, which the
    // x86_64 ABI passes identically. PEEK requests are never used: glibc rewrites their
    // data argument, and process_vm_readv reads memory without the errno ambiguity.
    [LibraryImport(Libraries.Libc, EntryPoint = "ptrace", SetLastError = true)]
    private static partial long ptrace(long request, int pid, nint addr, nint data);

    internal static void PtraceSeize(int pid, int options) =>
        Check(() => ptrace(PTRACE_SEIZE, pid, 0, options), "ptrace(PTRACE_SEIZE)");

    internal static void PtraceSetOptions(int pid, int options) =>
        Check(() => ptrace(PTRACE_SETOPTIONS, pid, 0, options), "ptrace(PTRACE_SETOPTIONS)");

    /// <summary>Resumes to the next syscall stop, delivering <paramref name="signal"/> (0 for none).</summary>
    internal static void PtraceSyscall(int pid, int signal) =>
        Check(() => ptrace(PTRACE_SYSCALL, pid, 0, signal), "ptrace(PTRACE_SYSCALL)");

    internal static void PtraceSingleStep(int pid, int signal) =>
        Check(() => ptrace(PTRACE_SINGLESTEP, pid, 0, signal), "ptrace(PTRACE_SINGLESTEP)");

    /// <summary>si_addr of the signal a tracee is stopped for (siginfo_t: si_signo, si_errno, si_code, pad, then the address).</summary>
    internal static unsafe ulong PtraceSigAddr(int pid)
    {
        var info = stackalloc ulong[16];
        nint p = (nint)info;
        Check(() => ptrace(PTRACE_GETSIGINFO, pid, 0, p), "ptrace(PTRACE_GETSIGINFO)");
        return info[2];
    }

    internal static void PtraceCont(int pid, int signal) =>
        Check(() => ptrace(PTRACE_CONT, pid, 0, signal), "ptrace(PTRACE_CONT)");

    /// <summary>Leaves a seized tracee in group-stop without running it.</summary>
    internal static void PtraceListen(int pid) =>
        Check(() => ptrace(PTRACE_LISTEN, pid, 0, 0), "ptrace(PTRACE_LISTEN)");

    internal static unsafe UserRegs PtraceGetRegs(int pid)
    {
        UserRegs regs = default;
        nint p = (nint)(&regs);
        Check(() => ptrace(PTRACE_GETREGS, pid, 0, p), "ptrace(PTRACE_GETREGS)");
        return regs;
    }

    internal static unsafe void PtraceSetRegs(int pid, in UserRegs regs)
    {
        UserRegs copy = regs;
        nint p = (nint)(&copy);
        Check(() => ptrace(PTRACE_SETREGS, pid, 0, p), "ptrace(PTRACE_SETREGS)");
    }

    /// <summary>Writes one word even into read-only text (the kernel forces the write).</summary>
    internal static void PtracePokeText(int pid, ulong addr, ulong word) =>
        Check(() => ptrace(PTRACE_POKETEXT, pid, (nint)addr, (nint)word), "ptrace(PTRACE_POKETEXT)");

    internal static unsafe PtraceSyscallInfo PtraceGetSyscallInfo(int pid)
    {
        PtraceSyscallInfo info = default;
        nint p = (nint)(&info);
        Check(() => ptrace(PTRACE_GET_SYSCALL_INFO, pid, sizeof(PtraceSyscallInfo), p),
            "ptrace(PTRACE_GET_SYSCALL_INFO)");
        return info;
    }

    /// <summary>The tracee's rseq registration as the kernel holds it; null on a kernel without
    /// the request (before 5.13: EIO).</summary>
    internal static unsafe PtraceRseqConfiguration? PtraceGetRseqConfiguration(int pid)
    {
        PtraceRseqConfiguration conf = default;
        nint p = (nint)(&conf);
        try
        {
            Check(() => ptrace(PTRACE_GET_RSEQ_CONFIGURATION, pid, sizeof(PtraceRseqConfiguration), p),
                "ptrace(PTRACE_GET_RSEQ_CONFIGURATION)");
        }
        catch (ErrnoException e) when (e.Errno == EIO)
        {
            return null;
        }
        return conf;
    }
}
