using Resident.Proc;

namespace Resident.Trace;

/// <summary>
/// What the tracer thread does to a traced process between system calls, for the first run
/// (<see cref="PtraceRun"/>: its breakpoint, its end) and for a stopped tracee's later runs
/// (<see cref="StoppedTracee"/>: the constructor run's page traps, injected system calls).
/// Every method must run on the tracer thread.
/// </summary>
internal static class Tracee
{
    /// <summary>
    /// How a <see cref="ContinueToBreakpoint"/> run ended. Calls: each hit of a watched
    /// function, in order, with the string its first argument (rdi) points at.
    /// </summary>
    public sealed record RunOutcome(ulong? Rdi, bool Ended, List<ulong> Touched, List<(ulong At, string Arg)> Calls)
    {
        /// <summary>The registers at the breakpoint, once memory was put back as the program left it; null if not reached.</summary>
        public StopRegisters? At { get; init; }
    }

    /// <summary>
    /// SIGKILL and reap, so no zombie stays. Only for a child not reaped yet (a stopped tracee
    /// is one: only this thread reaps it), else the pid could name another process by now.
    /// </summary>
    public static void KillAndReap(int pid)
    {
        Interop.KillIfAlive(pid, Interop.SIGKILL);
        Reap(pid);
    }

    static void Reap(int pid)
    {
        while (true)
        {
            int status;
            try { Interop.WaitPid(pid, out status, Interop.__WALL); }
            catch (ErrnoException e) when (e.Errno == Interop.ECHILD) { return; }
            if (Interop.WIfExited(status) || Interop.WIfSignaled(status))
                return;
        }
    }

    /// <summary>
    /// A tracee stopped by PtraceRun: an int3 at <paramref name="pc"/>, then
    /// PTRACE_SYSCALL until it is hit (rdi returned, Ended false) or the process ends (reaped:
    /// Ended true) or execs or something below fails (Rdi null). Every system call on the way
    /// goes into <paramref name="log"/>. Each of <paramref name="watchedCalls"/> (a function's
    /// first instruction) gets an int3 too: a hit records rdi's string and steps over it.
    /// Signals for the program are passed on; the int3s are left in place (the process is
    /// killed afterwards). A child a
    /// constructor forks is traced from its birth and never let run: it dies with this thread
    /// (PTRACE_O_EXITKILL), so a capture leaves no process behind.
    /// Each of <paramref name="traps"/> is made PROT_NONE first; a page of it the program then
    /// touches faults, is listed in Touched and gets its protection back, and the faulting
    /// instruction runs again. mprotect runs in the tracee through <paramref name="gadget"/>,
    /// a "syscall; ret" in its memory (which no trap may cover).
    /// </summary>
    public static RunOutcome ContinueToBreakpoint(int pid, ulong pc, ulong gadget, IReadOnlyList<PageTrap> traps,
        SyscallLog log, IReadOnlyList<ulong> watchedCalls)
    {
        var touched = new List<ulong>();
        var calls = new List<(ulong, string)>();
        RunOutcome Outcome(ulong? rdi, bool ended) => new(rdi, ended, touched, calls);
        ulong atPc = InsertBreakpoint(pid, pc);
        var originals = watchedCalls.Where(a => a != pc).Distinct().ToDictionary(a => a, a => InsertBreakpoint(pid, a));
        Interop.PtraceSetOptions(pid, PtraceRun.Options | Interop.PTRACE_O_TRACEFORK | Interop.PTRACE_O_TRACEVFORK);
        try
        {
            var set = new List<PageTrap>();
            foreach (var t in traps)
                if (InjectSyscall(pid, gadget, SyscallMprotect, t.Start, t.End - t.Start, 0) == 0)
                    set.Add(t);
                else if (!t.Optional)
                    return Outcome(null, false);
            traps = set;
            Interop.PtraceSyscall(pid, 0);
            while (true)
            {
                Interop.WaitPid(pid, out int status, Interop.__WALL);
                if (Interop.WIfExited(status) || Interop.WIfSignaled(status))
                    return Outcome(null, true);
                if (!Interop.WIfStopped(status))
                    continue;
                int sig = Interop.WStopSig(status), ev = Interop.WPtraceEvent(status);
                if (ev == Interop.PTRACE_EVENT_EXEC)
                    return Outcome(null, false);
                if (ev == 0 && sig == PtraceRun.SyscallStop)
                {
                    RecordSyscallStop(pid, log);
                    Interop.PtraceSyscall(pid, 0);
                    continue;
                }
                if (ev == 0 && sig == Interop.SIGTRAP)
                {
                    var regs = Interop.PtraceGetRegs(pid);
                    if (regs.Rip == pc + 1)
                        return Outcome(regs.Rdi, false) with { At = PutBack(pid, pc, atPc, originals, traps, gadget) };
                    if (originals.TryGetValue(regs.Rip - 1, out ulong original))
                    {
                        calls.Add((regs.Rip - 1, ReadArgument(pid, regs.Rdi)));
                        if (!StepOver(pid, regs.Rip - 1, original))
                            return Outcome(null, false);
                        Interop.PtraceSyscall(pid, 0);
                        continue;
                    }
                }
                if (ev == 0 && sig == Interop.SIGSEGV && traps.Count > 0 && Interop.PtraceSigAddr(pid) is var addr
                    && traps.FirstOrDefault(t => addr >= t.Start && addr < t.End) is { End: > 0 } trap)
                {
                    var (start, length) = trap.Whole ? (trap.Start, trap.End - trap.Start) : (addr & ~(ulong)(Page - 1), (ulong)Page);
                    if (InjectSyscall(pid, gadget, SyscallMprotect, start, length, trap.Prot) != 0)
                        return Outcome(null, false);
                    touched.Add(start);
                    Interop.PtraceSyscall(pid, 0);   // the faulting instruction runs again
                    continue;
                }
                Interop.PtraceSyscall(pid, ev == 0 && sig != Interop.SIGTRAP ? sig : 0);
            }
        }
        catch (ProgramEndedException)
        {
            return Outcome(null, true);
        }
        catch (ErrnoException e) when (e.Errno == Interop.ESRCH)
        {
            // killed while stopped (a thread it started took the process down): not reaped yet
            return Outcome(null, false);
        }
    }

    /// <summary>
    /// At the breakpoint: every int3 out, every trap's protection back, rip at
    /// <paramref name="pc"/>: memory and registers as the program made them, for a snapshot
    /// there. Null if a protection would not come back.
    /// </summary>
    static StopRegisters? PutBack(int pid, ulong pc, ulong atPc, Dictionary<ulong, ulong> originals, IReadOnlyList<PageTrap> traps, ulong gadget)
    {
        foreach (var (at, original) in originals)
            Interop.PtracePokeText(pid, at, original);
        foreach (var t in traps)
            if (InjectSyscall(pid, gadget, SyscallMprotect, t.Start, t.End - t.Start, t.Prot) != 0)
                return null;
        var r = RemoveBreakpoint(pid, pc, atPc);
        return new StopRegisters(r.Rip, r.Rsp, r.Rax, r.FsBase, r.GsBase, r.Rdi, r.Rsi, r.Rdx);
    }

    /// <summary>The string at <paramref name="addr"/> in the tracee ("" if unreadable).</summary>
    static string ReadArgument(int pid, ulong addr)
    {
        try { return addr == 0 ? "" : RemoteMemory.ReadCString(pid, addr); }
        catch (RefusalException) { return ""; }
    }

    /// <summary>
    /// At a hit of the int3 at <paramref name="at"/>: runs the instruction it covers (the
    /// original word back, one single step) and puts the int3 back. False if the step stopped
    /// for anything else.
    /// </summary>
    static bool StepOver(int pid, ulong at, ulong original)
    {
        RemoveBreakpoint(pid, at, original);
        if (!SingleStep(pid, "a single step"))
            return false;
        InsertBreakpoint(pid, at);
        return true;
    }

    /// <summary>One instruction; true when it stopped as a step does (SIGTRAP). Throws ProgramEndedException if the process ended in it.</summary>
    static bool SingleStep(int pid, string during)
    {
        Interop.PtraceSingleStep(pid, 0);
        Interop.WaitPid(pid, out int status, Interop.__WALL);
        if (Interop.WIfExited(status) || Interop.WIfSignaled(status))
            throw new ProgramEndedException("ended during " + during);
        return Interop.WIfStopped(status) && Interop.WStopSig(status) == Interop.SIGTRAP;
    }

    const long SyscallMprotect = 10;
    const int Page = Interop.PageSize;

    /// <summary>
    /// Runs one system call in a stopped tracee: rip at <paramref name="gadget"/> ("syscall;
    /// ret"), one single step, the result from rax, the registers put back. -1 if the step
    /// stopped for anything else (its registers are put back all the same).
    /// </summary>
    static long InjectSyscall(int pid, ulong gadget, long nr, ulong a, ulong b, ulong c)
    {
        var saved = Interop.PtraceGetRegs(pid);
        var r = saved;
        (r.Rip, r.Rax, r.OrigRax, r.Rdi, r.Rsi, r.Rdx) = (gadget, (ulong)nr, ulong.MaxValue, a, b, c);
        Interop.PtraceSetRegs(pid, r);
        bool trapped = SingleStep(pid, "an injected system call");
        var after = Interop.PtraceGetRegs(pid);
        bool stepped = trapped && after.Rip == gadget + 2;
        Interop.PtraceSetRegs(pid, saved);
        return stepped ? (long)after.Rax : -1;
    }

    public static ulong InsertBreakpoint(int pid, ulong pc)
    {
        Span<byte> word = stackalloc byte[8];
        RemoteMemory.Read(pid, pc, word);
        ulong original = BitConverter.ToUInt64(word);
        Interop.PtracePokeText(pid, pc, (original & ~0xffUL) | 0xcc);
        return original;
    }

    public static Interop.UserRegs RemoveBreakpoint(int pid, ulong pc, ulong original)
    {
        Interop.PtracePokeText(pid, pc, original);
        var regs = Interop.PtraceGetRegs(pid);
        regs.Rip = pc;
        Interop.PtraceSetRegs(pid, regs);
        return Interop.PtraceGetRegs(pid);
    }
    const int AT_FDCWD = -100;
    const int MaxOutputRead = 512;

    /// <summary>At a syscall stop (entry or exit): records it in <paramref name="log"/>, with its path argument made absolute and what it wrote to fd 1 or 2.</summary>
    public static unsafe void RecordSyscallStop(int pid, SyscallLog log)
    {
        var info = Interop.PtraceGetSyscallInfo(pid);
        if (info.Op == Interop.PTRACE_SYSCALL_INFO_EXIT)
        {
            log.Exit((long)info.Union[0]);
            return;
        }
        if (info.Op != Interop.PTRACE_SYSCALL_INFO_ENTRY)
            return;
        long nr = (long)info.Union[0];
        var args = new ulong[6];
        for (int i = 0; i < 6; i++)
            args[i] = info.Union[1 + i];
        if (nr is SyscallTable.Write or SyscallTable.Writev && args[0] is 1 or 2)
            log.AddOutput(nr == SyscallTable.Write ? ReadOutput(pid, args[1], args[2]) : ReadOutputV(pid, args[1], args[2]));
        string? path = ReadPathArgument(pid, nr, args);
        log.Entry(nr, args, path is null ? null : Absolute(pid, nr, args, path), relativePath: path is [not '/', ..] ? path : null,
            data: ReadInput(pid, nr, args));
    }

    /// <summary>The memory a call that sets kernel state reads (<see cref="SyscallTable.InputSize"/>), or null.</summary>
    static byte[]? ReadInput(int pid, long nr, ulong[] args)
    {
        if (SyscallTable.InputSize(nr, args) is not (int arg, int size))
            return null;
        var data = new byte[size];
        try { RemoteMemory.Read(pid, args[arg], data); }
        catch (RefusalException) { return null; }
        return data;
    }

    /// <summary>The syscall's path argument as passed, or null (none, empty, unreadable).</summary>
    static string? ReadPathArgument(int pid, long nr, ulong[] args)
    {
        var info = SyscallTable.Lookup(nr);
        if (info is null || info.PathArg < 0 || args[info.PathArg] == 0)
            return null;
        try
        {
            string path = RemoteMemory.ReadCString(pid, args[info.PathArg]);
            return path.Length == 0 ? null : path;
        }
        catch (RefusalException) { return null; }
    }

    static string Absolute(int pid, long nr, ulong[] args, string path)
    {
        if (path.StartsWith('/'))
            return path;
        var info = SyscallTable.Lookup(nr)!;
        int dirfd = info.DirFdArg < 0 ? AT_FDCWD : (int)args[info.DirFdArg];
        string? dir = dirfd == AT_FDCWD ? ProcFs.Cwd(pid) : ProcFs.FdTarget(pid, dirfd);
        // Joined, not normalised: ".." after a symlink means what the kernel says, and the
        // hook must later ask the kernel about exactly the path ld.so used.
        return dir is null ? path : Path.Join(dir, path);
    }

    static string ReadOutput(int pid, ulong addr, ulong count)
    {
        var buf = new byte[(int)Math.Min(count, MaxOutputRead)];
        try { RemoteMemory.Read(pid, addr, buf); }
        catch (RefusalException) { return ""; }
        return System.Text.Encoding.UTF8.GetString(buf);
    }

    /// <summary>writev's iovec array (ld.so's _dl_dprintf writes error messages this way).</summary>
    static string ReadOutputV(int pid, ulong iov, ulong count)
    {
        var text = new System.Text.StringBuilder();
        Span<byte> vec = stackalloc byte[16];
        for (ulong i = 0; i < Math.Min(count, 64) && text.Length < MaxOutputRead; i++)
        {
            try { RemoteMemory.Read(pid, iov + i * 16, vec); }
            catch (RefusalException) { break; }
            text.Append(ReadOutput(pid, BitConverter.ToUInt64(vec), BitConverter.ToUInt64(vec[8..])));
        }
        return text.ToString();
    }
}
