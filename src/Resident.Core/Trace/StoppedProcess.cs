namespace Resident.Trace;

/// <summary>
/// A program stopped at ld.so's <c>_dl_start_user</c> (every library mapped and relocated,
/// no constructor run), with the int3 already removed so memory equals what ld.so produced.
/// Produced by <see cref="Tracer"/>; consumed by SnapshotBuilder (Snapshots/).
/// Memory may be read from any thread (process_vm_readv) while the process stays stopped.
/// Disposing kills and reaps the process (on the tracer thread).
/// </summary>
public interface IStoppedProcess : IDisposable
{
    int Pid { get; }

    /// <summary>The executable as registered (absolute, symlinks resolved).</summary>
    string ProgramPath { get; }

    /// <summary>The full environment the program was started with at capture.</summary>
    IReadOnlyList<string> Environment { get; }

    /// <summary>True when the program could not start with LD_BIND_NOW=1 and was captured with lazy binding.</summary>
    bool LazyBind { get; }

    /// <summary>Registers at the stop: Rip == ResumePc, Rsp == &amp;argc, Rax == user entry.</summary>
    StopRegisters Registers { get; }

    /// <summary>_dl_start_user: the instruction after ld.so's <c>call _dl_start</c>.</summary>
    ulong ResumePc { get; }

    /// <summary>ResumePc + length of its <c>mov %rax,%r12</c>: where a restore "returns" to.</summary>
    ulong ResumeCont { get; }

    /// <summary>Kernel-side thread state set by ld.so, learnt from the recorded syscalls.</summary>
    KernelThreadState Kernel { get; }

    /// <summary>Every syscall from the exec to the stop, in order.</summary>
    IReadOnlyList<SyscallRecord> Syscalls { get; }

    /// <summary>Absolute paths ld.so tried to open/access and did not find (ENOENT), in order, no duplicates.</summary>
    IReadOnlyList<string> ProbedAbsent { get; }

    /// <summary>Absolute paths ld.so opened successfully (libraries, /etc/ld.so.cache, ...).</summary>
    IReadOnlyList<string> Opened { get; }

    /// <summary>Reads exactly buffer.Length bytes at addr; throws RefusalException on failure.</summary>
    void ReadMemory(ulong addr, Span<byte> buffer);

    /// <summary>
    /// Lets the program run on from the stop (its constructors run) until it executes
    /// <paramref name="pc"/>, signals passed on; then rdi there, and the pages of
    /// <paramref name="traps"/> it touched on the way (each trap is made PROT_NONE, and a page
    /// gets its protection back at its first fault, through <paramref name="gadget"/>, a
    /// "syscall; ret" in the process that no trap covers). Rdi is null when it ended, executed
    /// another program or took longer than <paramref name="timeout"/> (then it is killed).
    /// Syscalls: every system call made on the way, in order. Calls: each entry into one of
    /// <paramref name="watchedCalls"/> (function addresses, an int3 each), with the string its
    /// first argument points at.
    /// Once called, memory is no longer what ld.so produced: read the snapshot first. At the
    /// return the process stays stopped at pc (<see cref="RunToResult.At"/>) until disposed.
    /// </summary>
    RunToResult RunTo(ulong pc, TimeSpan timeout, ulong gadget, IReadOnlyList<PageTrap> traps, IReadOnlyList<ulong> watchedCalls);
}

/// <summary>What <see cref="IStoppedProcess.RunTo"/> saw.</summary>
public sealed record RunToResult(ulong? Rdi, IReadOnlyList<ulong> Touched, IReadOnlyList<SyscallRecord> Syscalls,
    IReadOnlyList<(ulong At, string Arg)> Calls)
{
    /// <summary>
    /// The registers at <c>pc</c> when it was reached (rip == pc), the process still stopped there
    /// with every int3 removed and every trap's protection back: memory is what the program made
    /// of it, ready for a snapshot at pc. Null when pc was not reached or could not be cleaned.
    /// </summary>
    public StopRegisters? At { get; init; }
}

/// <summary>
/// A range of a stopped process's memory whose pages <see cref="IStoppedProcess.RunTo"/>
/// watches; Prot is its protection. An optional trap the kernel will not set is left out;
/// any other failing to be set ends the run. A whole trap gets its protection back all at
/// once at its first fault (Touched lists its start): a special mapping such as the vdso may
/// not be split.
/// </summary>
public readonly record struct PageTrap(ulong Start, ulong End, uint Prot, bool Optional = false, bool Whole = false);

/// <param name="Rdi">the argument registers, where a stop records them (<see cref="RunToResult.At"/>); else 0.</param>
public readonly record struct StopRegisters(ulong Rip, ulong Rsp, ulong Rax, ulong FsBase, ulong GsBase, ulong Rdi = 0, ulong Rsi = 0, ulong Rdx = 0);

/// <param name="TidAddress">set_tid_address() argument (0 if never called).</param>
/// <param name="RobustHead">set_robust_list() head (0 if never called).</param>
/// <param name="RseqAddr">rseq() area (0 if not registered).</param>
public readonly record struct KernelThreadState(
    ulong FsBase, ulong TidAddress, ulong RobustHead, ulong RobustLen,
    ulong RseqAddr, uint RseqLen, uint RseqSig);

/// <param name="Nr">x86_64 syscall number.</param>
/// <param name="Args">the six argument registers.</param>
/// <param name="Result">return value (negative errno on failure).</param>
/// <param name="Data">what a call that sets kernel state read from memory at its entry (the new sigaction, mask,
/// limit or name: <see cref="SyscallTable.InputSize"/>); null for other calls, or when it could not be read.</param>
public readonly record struct SyscallRecord(long Nr, ulong[] Args, long Result, string? PathArg, byte[]? Data = null);
