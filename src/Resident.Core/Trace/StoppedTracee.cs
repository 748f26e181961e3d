using Resident.Proc;

namespace Resident.Trace;

/// <summary>
/// The <see cref="IStoppedProcess"/> the tracer hands out. Owns the tracer thread: the
/// process stays ptrace-stopped until <see cref="Dispose"/> kills and reaps it there.
/// </summary>
internal sealed class StoppedTracee : IStoppedProcess
{
    readonly TracerThread _thread;
    readonly Microsoft.Win32.SafeHandles.SafeFileHandle _pidfd;   // signals this process, never a reused pid
    int _disposed;
    bool _ended;   // reaped by RunTo

    public StoppedTracee(TracerThread thread, Microsoft.Win32.SafeHandles.SafeFileHandle pidfd, string programPath, StopState stop,
        SyscallLog log, bool lazyBind)
    {
        _thread = thread;
        _pidfd = pidfd;
        Pid = stop.Pid;
        ProgramPath = programPath;
        Environment = stop.Environment;
        LazyBind = lazyBind;
        var r = stop.Regs;
        Registers = new StopRegisters(r.Rip, r.Rsp, r.Rax, r.FsBase, r.GsBase);
        ResumePc = stop.Resume.ResumePc;
        ResumeCont = stop.Resume.ResumeCont;
        Kernel = log.KernelState(r.FsBase);
        Syscalls = log.Records;
        ProbedAbsent = log.ProbedAbsent;
        Opened = log.Opened;
    }

    public int Pid { get; }
    public string ProgramPath { get; }
    public IReadOnlyList<string> Environment { get; }
    public bool LazyBind { get; }
    public StopRegisters Registers { get; }
    public ulong ResumePc { get; }
    public ulong ResumeCont { get; }
    public KernelThreadState Kernel { get; }
    public IReadOnlyList<SyscallRecord> Syscalls { get; }
    public IReadOnlyList<string> ProbedAbsent { get; }
    public IReadOnlyList<string> Opened { get; }

    public void ReadMemory(ulong addr, Span<byte> buffer)
    {
        ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);
        RemoteMemory.Read(Pid, addr, buffer);
    }

    public RunToResult RunTo(ulong pc, TimeSpan timeout, ulong gadget, IReadOnlyList<PageTrap> traps, IReadOnlyList<ulong> watchedCalls)
    {
        ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);
        var log = new SyscallLog();
        var run = _thread.Post(() => Tracee.ContinueToBreakpoint(Pid, pc, gadget, traps, log, watchedCalls));
        bool finished;
        try { finished = run.Wait(timeout); }
        catch (AggregateException) { finished = true; }
        if (!finished && !Tracer.KillUntilDone(run, () => { Interop.PidfdKill(_pidfd, Interop.SIGKILL); return true; }))
            throw new RefusalException("the program would not die after its constructors ran too long");
        if (!run.IsCompletedSuccessfully)
            return new RunToResult(null, [], [], []);
        var outcome = run.Result;
        _ended |= outcome.Ended;
        log.EndRun();
        return new RunToResult(finished ? outcome.Rdi : null, outcome.Touched, log.Records, outcome.Calls) { At = finished ? outcome.At : null };
    }

    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
            return;
        try
        {
            if (!_ended)   // a reaped pid may name another process by now
                _thread.Invoke(() => Tracee.KillAndReap(Pid));
        }
        finally
        {
            _thread.Dispose();
            _pidfd.Dispose();
        }
    }
}
