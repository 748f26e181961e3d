using Resident.Proc;

namespace Resident.Trace;

/// <summary>
/// What must hold at the stop for the restorer to recreate the process from its memory and
/// registers alone: one thread, no file open, no signal handler, no heap, and only syscalls
/// whose effect the restorer reproduces. Each failure is a one-line RefusalException.
/// </summary>
internal static class StopChecks
{
    public static void Verify(int pid, SyscallLog log)
    {
        string? reason = ProcessStateRefusal(pid) ?? log.FirstRefusal();
        if (reason is not null)
            throw new RefusalException(reason);
    }

    /// <summary>
    /// The rseq registration learnt from the syscalls must be the one the kernel holds;
    /// a difference means the log missed a syscall and the kernel state would be restored wrong.
    /// A kernel before 5.13 cannot say (null): the log is all there is, as for every other call.
    /// </summary>
    public static void VerifyKernelState(KernelThreadState fromLog, Interop.PtraceRseqConfiguration? kernelView)
    {
        if (kernelView is not { } kernel)
            return;
        if (fromLog.RseqAddr != kernel.RseqAbiPointer || (fromLog.RseqAddr != 0
            && (fromLog.RseqLen != kernel.RseqAbiSize || fromLog.RseqSig != kernel.Signature)))
            throw new RefusalException($"the kernel's rseq registration (0x{kernel.RseqAbiPointer:x}, len {kernel.RseqAbiSize}) "
                + $"differs from the recorded syscalls (0x{fromLog.RseqAddr:x}, len {fromLog.RseqLen})");
    }

    static string? ProcessStateRefusal(int pid)
    {
        int threads = ProcFs.ThreadCount(pid);
        if (threads != 1)
            return $"{threads} threads exist when ld.so finishes; only a single thread can be restored";
        foreach (int fd in ProcFs.OpenFds(pid))
            if (fd > 2)
                return $"fd {fd} ({ProcFs.FdTarget(pid, fd)}) is still open when ld.so finishes; open files cannot be restored";
        ulong caught = ProcFs.CaughtSignals(pid);
        if (caught != 0)
            return $"a signal handler is installed before the constructors run (SigCgt 0x{caught:x}); it cannot be restored";
        if (ProcFs.HasHeap(pid))
            return "a [heap] exists when ld.so finishes (brk was moved); the link level does not handle a heap yet";
        return null;
    }
}
