using Resident.Format;
using Resident.Trace;
using static Resident.Trace.SyscallTable;

namespace Resident.Snapshots;

/// <summary>
/// What the constructors' system calls say about a snapshot taken at main (the init level):
/// every call either leaves nothing a later exec would see differently, or names a dependency
/// (a file read: stamped like a library), or refuses, in one line each. The list is closed:
/// a call not on it refuses. A call into the vdso (the time without a system call) refuses
/// too; rdtsc, AT_RANDOM's bytes and reads of argv or the environment are not judged yet.
/// </summary>
/// <param name="Refusals">why a snapshot at main would be wrong for another exec, each reason once, in the order met; empty: none found.</param>
/// <param name="Files">regular files the constructors opened read-only, each once: dependencies.</param>
/// <param name="Absent">absolute paths they looked for and did not find: dependencies too (a file appearing there changes what they do).</param>
/// <param name="Reseed">words that hold randomness a takeover at main would draw afresh per exec, as it does the canary: malloc's tcache key.</param>
public sealed record InitDependencies(IReadOnlyList<string> Refusals, IReadOnlyList<string> Files, IReadOnlyList<string> Absent,
    IReadOnlyList<ulong> Reseed)
{
    /// <summary>
    /// Environment variables the constructors asked libc's getenv or secure_getenv for
    /// (present or not): dependencies by name, whose values a later exec must match. Reads of
    /// environ or envp itself are not seen.
    /// </summary>
    public IReadOnlyList<string> Environment { get; init; } = [];

    /// <summary>
    /// The kernel state the constructors set, in order (signal dispositions and mask, umask,
    /// limits, the thread's name): the takeover makes the same calls (rs_header.kernel_ops).
    /// That they do not depend on the state the process inherited is the verification's to show.
    /// </summary>
    public IReadOnlyList<KernelOp> KernelOps { get; init; } = [];

    const ulong O_ACCMODE = 3, O_CREAT = 0x40, O_TRUNC = 0x200, GRND_NONBLOCK = 1;

    /// <summary>Calls that read or map what is already there and change nothing a later exec would see.</summary>
    static readonly HashSet<long> Harmless =
    [
        Read, Pread64, Readv, Lseek, Fstat, Stat, Lstat, Newfstatat, Statx, Access, Faccessat, Faccessat2,
        Readlink, Readlinkat, Getdents64, Getcwd, Uname, Mmap, Munmap, Mprotect, Mremap, Madvise, Brk,
        Getuid, Getgid, Geteuid, Getegid, Getrlimit, Futex, SchedGetaffinity, SchedYield, ClockGetres, Rseq,
    ];

    /// <summary>
    /// Judges <paramref name="calls"/>, the constructors' system calls in order; a run that did
    /// not <paramref name="reachedMain"/> (it ended, hung or died, e.g. a thread it started
    /// faulted on a watched page) refuses as well, after what its calls showed.
    /// <paramref name="inLibcData"/> says whether an address is in libc.so's own writable
    /// data: glibc's malloc (2.34 and later) seeds its tcache key there at the first
    /// allocation, getrandom(&amp;tcache_key, 8, GRND_NONBLOCK), the only 8-byte non-blocking
    /// getrandom into libc's data in glibc 2.34 to 2.43 (arc4random keeps its state elsewhere).
    /// </summary>
    /// <summary>
    /// glibc malloc's tcache key: getrandom(&amp;key, 8, GRND_NONBLOCK) into libc's own data. Drawn
    /// by the first malloc, in a constructor, or (glibc 2.43) already in ld.so's run, before
    /// the link level's stop: then it is in the first run's log.
    /// </summary>
    public static bool IsTcacheKey(SyscallRecord c, Func<ulong, bool>? inLibcData) =>
        c.Nr == Getrandom && c.Args[1] == 8 && c.Args[2] == GRND_NONBLOCK && c.Result == 8 && inLibcData?.Invoke(c.Args[0]) == true;

    public static InitDependencies Judge(IReadOnlyList<SyscallRecord> calls, bool reachedMain = true, bool vdsoCalled = false,
        Func<ulong, bool>? inLibcData = null)
    {
        var refusals = new List<string>();
        var reseed = new List<ulong>();
        var files = new List<string>();
        var absent = new List<string>();
        var ops = new List<KernelOp>();
        var open = new Dictionary<long, string>();   // fd → what the constructors opened and still hold
        void Refuse(string why) { if (!refusals.Contains(why)) refusals.Add(why); }
        void Add(List<string> list, string path) { if (!list.Contains(path)) list.Add(path); }

        foreach (var c in calls)
        {
            switch (c.Nr)
            {
                case Open or Openat:
                    JudgeOpen(c, c.Nr == Open ? c.Args[1] : c.Args[2], Refuse, p => Add(files, p), p => Add(absent, p), open);
                    break;
                case var _ when SyscallTable.ProbedAbsent(c):   // stat, access and the like (opens: above)
                    Add(absent, c.PathArg!);
                    break;
                case Close:
                    open.Remove((long)c.Args[0]);
                    break;
                case Getpid or Gettid or Getppid:
                    Refuse("a constructor reads its process id, which differs in every exec");
                    break;
                case Getrandom when IsTcacheKey(c, inLibcData):
                    if (!reseed.Contains(c.Args[0]))
                        reseed.Add(c.Args[0]);
                    break;
                case Getrandom:
                    Refuse("a constructor reads random bytes (getrandom), which must differ in every exec");
                    break;
                case ClockGettime or Gettimeofday or Time or Sysinfo:
                    Refuse("a constructor reads the time, which differs in every exec");
                    break;
                case Clone or Clone3 or Fork or Vfork:
                    Refuse("a constructor starts a thread or a process, which a snapshot cannot hold");
                    break;
                case Socket or Socketpair or Connect:
                    Refuse("a constructor opens a socket, which a snapshot cannot hold");
                    break;
                case Write or Writev or Pwrite64:
                    Refuse($"a constructor writes (fd {c.Args[0]}), which a restored start would not repeat");
                    break;
                case RtSigaction or RtSigprocmask or Umask or Prlimit64 or Setrlimit:
                case Prctl when c.Args[0] == SyscallTable.PrSetName:
                    if (KernelOp(c, Refuse) is { } op)   // null: a query, or a call the kernel refused
                        ops.Add(op);
                    break;
                case Sigaltstack when c.Args[0] != 0:
                    Refuse("a constructor sets an alternate signal stack (kernel state the takeover does not re-create)");
                    break;
                case Ioctl:
                    Refuse($"a constructor asks about fd {c.Args[0]} (ioctl: is it a terminal?), which differs between execs");
                    break;
                case Sigaltstack:
                    break;   // a query
                default:
                    if (!Harmless.Contains(c.Nr))
                        Refuse($"a constructor calls {SyscallTable.Name(c.Nr)}, which the init level does not allow");
                    break;
            }
        }
        if (vdsoCalled)
            Refuse("a constructor reads the time through the vdso, which differs in every exec");
        if (!reachedMain)
            Refuse("the constructors did not reach main under the tracer");
        else
            foreach (var (fd, path) in open)
                Refuse($"a constructor leaves {path} open (fd {fd}) at main");
        return new InitDependencies(refusals, files, absent, reseed) { KernelOps = ops };
    }

    const ulong RLimitResources = 16;

    /// <summary>
    /// The kernel state a call sets, to be replayed (<see cref="KernelOps"/>); null for a query, or
    /// for a call the kernel refused with the same answer in any exec (an invalid signal). A
    /// limit change that failed may succeed elsewhere (it depends on the inherited hard limit),
    /// and another process's limit is not this one's: both refuse.
    /// </summary>
    static KernelOp? KernelOp(SyscallRecord c, Action<string> refuse)
    {
        bool sets = SyscallTable.InputSize(c.Nr, c.Args) is not null || c.Nr == Umask;
        if (!sets)
            return null;
        (ulong pid, ulong resource) = c.Nr == Prlimit64 ? (c.Args[0], c.Args[1]) : (0, c.Args[0]);
        if (c.Nr is Prlimit64 or Setrlimit)
        {
            if (pid != 0)
                refuse("a constructor sets another process's resource limit");
            else if (c.Result < 0 || resource >= RLimitResources)
                refuse($"a constructor's change of a resource limit failed (errno {-c.Result}); in another exec it may not");
            else if (c.Data is not { } limit)
                refuse("a constructor sets a resource limit the tracer could not read");
            else
                return Format.KernelOp.Rlimit((uint)resource, limit);
            return null;
        }
        if (c.Result < 0)
            return null;
        if (c.Nr == Umask)
            return Format.KernelOp.Umask(c.Args[0]);
        if (c.Data is not { } data)
        {
            refuse($"a constructor calls {SyscallTable.Name(c.Nr)} with an argument the tracer could not read");
            return null;
        }
        return c.Nr switch
        {
            RtSigaction => Format.KernelOp.Sigaction((uint)c.Args[0], data),
            RtSigprocmask => Format.KernelOp.Sigprocmask((uint)c.Args[0], data),
            _ => Format.KernelOp.Name(data),
        };
    }

    static void JudgeOpen(SyscallRecord c, ulong flags, Action<string> refuse, Action<string> file, Action<string> absent,
        Dictionary<long, string> open)
    {
        string path = c.PathArg ?? "a file";
        if ((flags & O_ACCMODE) != 0 || (flags & (O_CREAT | O_TRUNC)) != 0)
        {
            refuse($"a constructor opens {path} for writing");
            return;
        }
        if (SyscallTable.ProbedAbsent(c))
            absent(path);
        if (c.Result < 0)
            return;
        open[c.Result] = path;
        if (path is "/dev/urandom" or "/dev/random")
            refuse($"a constructor reads random bytes ({path}), which must differ in every exec");
        else if (path.StartsWith("/proc/", StringComparison.Ordinal) || path.StartsWith("/sys/", StringComparison.Ordinal))
            refuse($"a constructor reads {path}, facts of this process or machine that a file stamp cannot pin");
        else if (path.StartsWith("/dev/", StringComparison.Ordinal))
            refuse($"a constructor opens the device {path}");
        else
            file(path);
    }
}
