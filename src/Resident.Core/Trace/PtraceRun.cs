using Resident.Elf;
using Resident.Proc;

namespace Resident.Trace;

/// <summary>The program ended (exited or was killed) before reaching the stop; it is reaped.</summary>
internal sealed class ProgramEndedException(string how) : Exception(how);

/// <summary>Where one run stopped, as seen from the tracer thread.</summary>
/// <param name="Rseq">the kernel's own view of the rseq registration, to cross-check the syscall log (null: a kernel before 5.13 cannot tell).</param>
/// <param name="File">the program the run stopped in (the chosen exec).</param>
internal sealed record StopState(int Pid, ProgramFileCheck.Result File, Interop.UserRegs Regs, LdSoEntry.ResumePoint Resume,
    IReadOnlyList<string> Environment, Interop.PtraceRseqConfiguration? Rseq);

/// <summary>
/// Decides at each exec event of the spawned process (<paramref name="index"/> 0 is the exec
/// of the launched path itself) whether <paramref name="exe"/> is the program to stop in:
/// its checked file, or null to let this exec run on to the next one. Throws
/// RefusalException to give up.
/// </summary>
internal delegate ProgramFileCheck.Result? ExecChoice(string exe, int index);

/// <summary>
/// One start of the program, from the spawn to the breakpoint at <c>_dl_start_user</c>.
/// Every method except <see cref="KillFromWatchdog"/> must run on the tracer thread.
/// </summary>
/// <param name="launchPath">what the stopping shell execs: the program, or a wrapper that execs it.</param>
/// <param name="choose">picks the exec to stop in (see <see cref="ExecChoice"/>).</param>
/// <param name="log">receives every syscall; outlives the run.</param>
/// <param name="stackLimit">the soft RLIMIT_STACK the program gets (set on the stopped shell before its exec), or null.</param>
/// <param name="variant">the verification run's arguments and layout (init level), or null for a capture.</param>
/// <param name="compatLayout">the legacy layout (CaptureOptions.CompatLayout), for the capture and its verification runs.</param>
internal sealed class PtraceRun(string launchPath, ExecChoice choose, SyscallLog log, ulong? stackLimit = null, CaptureVariant? variant = null,
    bool compatLayout = false) : IDisposable
{
    internal const int Options = Interop.PTRACE_O_TRACEEXEC | Interop.PTRACE_O_EXITKILL | Interop.PTRACE_O_TRACESYSGOOD;
    internal const int SyscallStop = Interop.SIGTRAP | 0x80;   // PTRACE_O_TRACESYSGOOD marks syscall stops

    // Set on the tracer thread right after the spawn, used by the watchdog thread.
    volatile Microsoft.Win32.SafeHandles.SafeFileHandle? _pidfd;

    bool _reaped;

    public SyscallLog Log => log;

    /// <summary>
    /// Spawns the program and runs it to the stop: registers equal ld.so's at the call of
    /// the user entry, the int3 removed. On any failure the process is killed and reaped.
    /// Throws ProgramEndedException when it ends first.
    /// </summary>
    public StopState RunToStop(IReadOnlyList<string> environment)
    {
        uint persona = (variant?.NoRandomize == true ? Interop.ADDR_NO_RANDOMIZE : 0) | (compatLayout ? Interop.ADDR_COMPAT_LAYOUT : 0);
        int pid = Spawner.Spawn(launchPath, environment, variant?.Arguments, persona, variant?.Inherited);
        try
        {
            _pidfd = Interop.PidfdOpen(pid);
            WaitForSelfStop(pid);
            SetStackLimit(pid);
            if (variant?.Inherited is { } inherited)
                Interop.SetSoftLimit(pid, Interop.RLIMIT_NOFILE, inherited.NofileSoft);
            Seize(pid);
            Interop.Kill(pid, Interop.SIGCONT);
            var (file, entry) = RunToChosenExec(pid);
            var resume = FindResumePoint(pid, file, entry);
            var actualEnvironment = ProcFs.ReadEnviron(pid);
            ulong original = Tracee.InsertBreakpoint(pid, resume.ResumePc);
            RecordSyscallsUntilBreakpoint(pid, resume.ResumePc);
            var regs = Tracee.RemoveBreakpoint(pid, resume.ResumePc, original);
            return new StopState(pid, file, regs, resume, actualEnvironment, Interop.PtraceGetRseqConfiguration(pid));
        }
        catch
        {
            // Once reaped by the wait that saw it end, the pid is no longer ours to signal or wait for.
            if (!_reaped)
                Tracee.KillAndReap(pid);
            throw;
        }
    }

    /// <summary>
    /// Any thread: ends a run that takes too long; the tracer thread then sees the death. False
    /// when there is no process to signal yet (the spawn has not opened its pidfd): call again.
    /// </summary>
    public bool KillFromWatchdog()
    {
        if (_pidfd is not { } pidfd)
            return false;
        Interop.PidfdKill(pidfd, Interop.SIGKILL);
        return true;
    }

    /// <summary>
    /// Hands the pidfd of the stopped process to its next owner (StoppedTracee), which signals
    /// through it: a pidfd names that process even once its pid is reaped and reused.
    /// </summary>
    public Microsoft.Win32.SafeHandles.SafeFileHandle TakePidfd() =>
        Interlocked.Exchange(ref _pidfd, null) ?? throw new InvalidOperationException("no pidfd: the run did not stop");

    /// <summary>Closes the pidfd unless handed over; call once the run's work has completed.</summary>
    public void Dispose() => _pidfd?.Dispose();

    void SetStackLimit(int pid)
    {
        if (stackLimit is not ulong limit)
            return;
        try { Interop.SetSoftLimit(pid, Interop.RLIMIT_STACK, limit); }
        catch (ErrnoException e)
        {
            throw new RefusalException($"cannot capture with a stack limit of {limit} bytes ({e.Message}): above the hard limit?");
        }
    }

    void Seize(int pid)
    {
        try { Interop.PtraceSeize(pid, Options); }
        catch (ErrnoException e) when (e.Errno == 1)   // EPERM
        {
            throw new RefusalException($"cannot trace it ({e.Message}): is resident itself being traced, "
                + "or does kernel.yama.ptrace_scope / a container forbid ptrace?");
        }
    }

    // Not traced yet: a plain WUNTRACED wait sees the shell's "kill -STOP $$".
    void WaitForSelfStop(int pid)
    {
        Interop.WaitPid(pid, out int status, Interop.WUNTRACED);
        ThrowIfEnded(status);
    }

    /// <summary>
    /// Lets execs run on until <c>choose</c> accepts one; returns its file and the registers'
    /// rip at its exec event (ld.so's _start). Execs in children of the process are not seen
    /// (no fork tracing): a wrapper must exec the program itself.
    /// </summary>
    (ProgramFileCheck.Result File, ulong Entry) RunToChosenExec(int pid)
    {
        for (int index = 0; ; index++)
        {
            var regs = RunToExecOf(pid, index);
            if (choose(ProcFs.Exe(pid), index) is { } file)
                return (file, regs.Rip);
            Interop.PtraceCont(pid, 0);
        }
    }

    /// <summary>The exec event's registers; a shell that ends first could not execute the program at all.</summary>
    Interop.UserRegs RunToExecOf(int pid, int index)
    {
        try { return RunToExec(pid); }
        catch (ProgramEndedException e) when (index == 0)
        {
            throw new RefusalException($"could not be executed (the shell's {e.Message})");
        }
        catch (ProgramEndedException e)
        {
            throw new RefusalException($"the wrapper ended ({e.Message}) without executing a dynamically linked program "
                + "(programs it runs in child processes are not followed: it must exec the program)");
        }
    }

    /// <summary>Lets the shell run into its exec; returns the registers at the exec event (rip = ld.so's _start).</summary>
    Interop.UserRegs RunToExec(int pid)
    {
        while (true)
        {
            int status = WaitStop(pid);
            int sig = Interop.WStopSig(status);
            switch (Interop.WPtraceEvent(status))
            {
                case Interop.PTRACE_EVENT_EXEC:
                    return Interop.PtraceGetRegs(pid);
                case Interop.PTRACE_EVENT_STOP:   // the seized group-stop: continue it
                    Interop.PtraceCont(pid, 0);
                    break;
                default:   // signal-delivery stop; our SIGCONT/SIGSTOP are not for the program
                    Interop.PtraceCont(pid, sig is Interop.SIGCONT or Interop.SIGSTOP ? 0 : sig);
                    break;
            }
        }
    }

    static LdSoEntry.ResumePoint FindResumePoint(int pid, ProgramFileCheck.Result file, ulong entry)
    {
        ulong expectedResumePc = file.ResumePoint.ResumePc;
        ulong ldsoBase = Auxv.Read(pid).Find(Auxv.AT_BASE) ?? 0;
        if (ldsoBase == 0)
            throw new RefusalException("the kernel loaded no interpreter (AT_BASE is 0)");
        Span<byte> code = stackalloc byte[LdSoEntry.WindowSize];
        RemoteMemory.Read(pid, entry, code);
        var resume = LdSoEntry.Decode(code, entry);
        // The loader in memory must be the file the pre-check decoded, at AT_BASE.
        if (resume.ResumePc != ldsoBase + expectedResumePc)
            throw new RefusalException($"ld.so entry at 0x{entry:x} does not match the loader file (AT_BASE 0x{ldsoBase:x})");
        return resume;
    }

    void RecordSyscallsUntilBreakpoint(int pid, ulong pc)
    {
        Interop.PtraceSyscall(pid, 0);
        while (true)
        {
            int status = WaitStop(pid);
            int sig = Interop.WStopSig(status), ev = Interop.WPtraceEvent(status);
            if (sig == SyscallStop)
                Tracee.RecordSyscallStop(pid, Log);
            else if (ev == Interop.PTRACE_EVENT_EXEC)
                throw new RefusalException("executed another program before ld.so finished");
            else if (ev == 0 && sig == Interop.SIGTRAP && Interop.PtraceGetRegs(pid).Rip == pc + 1)
                return;
            Interop.PtraceSyscall(pid, ev == 0 && sig != SyscallStop ? sig : 0);
        }
    }

    /// <summary>The next stop of <paramref name="pid"/>; throws ProgramEndedException if it ended instead.</summary>
    int WaitStop(int pid)
    {
        while (true)
        {
            Interop.WaitPid(pid, out int status, Interop.__WALL);
            ThrowIfEnded(status);
            if (Interop.WIfStopped(status))
                return status;
        }
    }

    void ThrowIfEnded(int status)
    {
        _reaped = Interop.WIfExited(status) || Interop.WIfSignaled(status);
        if (Interop.WIfExited(status))
            throw new ProgramEndedException($"exit status {Interop.WExitStatus(status)}");
        if (Interop.WIfSignaled(status))
            throw new ProgramEndedException($"killed by signal {Interop.WTermSig(status)}");
    }
}
