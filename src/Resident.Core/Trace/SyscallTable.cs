namespace Resident.Trace;

/// <summary>
/// The x86_64 syscalls ld.so may make between exec and <c>_dl_start_user</c>, and what each
/// means for the capture: where its path argument is, whether it changes kernel state the
/// restorer cannot reproduce. One table, so allowing a syscall is a one-line change. The
/// numbers (and names) of the other calls the constructor run's judge names
/// (Snapshots/InitDependencies) are here too: one list of x86_64 syscall numbers.
/// </summary>
internal static class SyscallTable
{
    public const long Read = 0, Write = 1, Open = 2, Close = 3, Stat = 4, Fstat = 5, Lstat = 6, Lseek = 8;
    const ulong ProtGrowsDown = 0x01000000;

    public const long Mmap = 9, Mprotect = 10, Munmap = 11, Brk = 12, Pread64 = 17, Access = 21;
    public const long Writev = 20, Execve = 59, Uname = 63, Getcwd = 79, Readlink = 89;
    public const long Getuid = 102, Getgid = 104, Geteuid = 107, Getegid = 108;
    public const long Statfs = 137, Fstatfs = 138, ArchPrctl = 158, SetTidAddress = 218, ExitGroup = 231;
    public const long Openat = 257, Newfstatat = 262, Readlinkat = 267, Faccessat = 269, SetRobustList = 273;
    public const long Prlimit64 = 302, Getrandom = 318, Statx = 332, Rseq = 334, Faccessat2 = 439;

    // not made by ld.so before the stop; named by the constructor run's judge
    public const long Poll = 7, RtSigaction = 13, RtSigprocmask = 14, Ioctl = 16, Pwrite64 = 18, Readv = 19;
    public const long SchedYield = 24, Mremap = 25, Madvise = 28, Dup = 32, Dup2 = 33, Getpid = 39, Socket = 41;
    public const long Connect = 42, Socketpair = 53, Clone = 56, Fork = 57, Vfork = 58, Exit = 60, Fcntl = 72;
    public const long Umask = 95, Gettimeofday = 96, Getrlimit = 97, Sysinfo = 99, Getppid = 110, Sigaltstack = 131;
    public const long Prctl = 157, Gettid = 186, Time = 201, Futex = 202, SchedGetaffinity = 204, Getdents64 = 217;
    public const long ClockGettime = 228, ClockGetres = 229, Dup3 = 292, Clone3 = 435, Setrlimit = 160;

    /// <summary>prctl(PR_SET_NAME, name): the thread's name, 16 bytes.</summary>
    public const ulong PrSetName = 15;

    /// <summary>
    /// Where a call that sets kernel state has its input in memory: which argument points to it
    /// and how many bytes it is (rt_sigaction's new action, the kernel's 32-byte struct with an
    /// 8-byte mask; rt_sigprocmask's set; the new limit of prlimit64 and setrlimit; the name of
    /// prctl(PR_SET_NAME)). Null for other calls and for queries (a null pointer).
    /// </summary>
    public static (int Arg, int Size)? InputSize(long nr, ulong[] args) => nr switch
    {
        RtSigaction when args[1] != 0 && args[3] == 8 => (1, 32),
        RtSigprocmask when args[1] != 0 && args[3] == 8 => (1, 8),
        Prlimit64 when args[2] != 0 => (2, 16),
        Setrlimit when args[1] != 0 => (1, 16),
        Prctl when args[0] == PrSetName && args[1] != 0 => (1, 16),
        _ => null,
    };

    const ulong ArchSetFs = 0x1002, ArchGetFs = 0x1003, ArchGetGs = 0x1004, ArchGetCpuid = 0x1011;
    const ulong ArchCetStatus = 0x3001, ArchShstkStatus = 0x5005;

    /// <param name="Name">for messages.</param>
    /// <param name="PathArg">index of a path argument, -1 if none.</param>
    /// <param name="DirFdArg">index of the dirfd the path is relative to, -1 if none (then AT_FDCWD).</param>
    /// <param name="Probes">a failing ENOENT/ENOTDIR call means "ld.so looked for this file and it was not there".</param>
    /// <param name="Allowed">made before the stop, the restorer reproduces or does not need its effect.</param>
    public sealed record Info(string Name, int PathArg = -1, int DirFdArg = -1, bool Probes = false, bool Allowed = true);

    static readonly Dictionary<long, Info> Table = new()
    {
        [Read] = new("read"), [Pread64] = new("pread64"), [Close] = new("close"), [Lseek] = new("lseek"),
        [Fstat] = new("fstat"), [Fstatfs] = new("fstatfs"),
        [Mmap] = new("mmap"), [Mprotect] = new("mprotect"), [Munmap] = new("munmap"), [Brk] = new("brk"),
        [Open] = new("open", PathArg: 0, Probes: true),
        [Openat] = new("openat", PathArg: 1, DirFdArg: 0, Probes: true),
        [Stat] = new("stat", PathArg: 0, Probes: true),
        [Lstat] = new("lstat", PathArg: 0, Probes: true),
        [Newfstatat] = new("newfstatat", PathArg: 1, DirFdArg: 0, Probes: true),
        [Statx] = new("statx", PathArg: 1, DirFdArg: 0, Probes: true),
        [Access] = new("access", PathArg: 0, Probes: true),
        [Faccessat] = new("faccessat", PathArg: 1, DirFdArg: 0, Probes: true),
        [Faccessat2] = new("faccessat2", PathArg: 1, DirFdArg: 0, Probes: true),
        [Readlink] = new("readlink", PathArg: 0),
        [Readlinkat] = new("readlinkat", PathArg: 1, DirFdArg: 0),
        [Statfs] = new("statfs", PathArg: 0),
        [Getcwd] = new("getcwd"), [Uname] = new("uname"), [Getrandom] = new("getrandom"),
        [Getuid] = new("getuid"), [Getgid] = new("getgid"), [Geteuid] = new("geteuid"), [Getegid] = new("getegid"),
        [ArchPrctl] = new("arch_prctl"), [Prlimit64] = new("prlimit64"),
        [SetTidAddress] = new("set_tid_address"), [SetRobustList] = new("set_robust_list"), [Rseq] = new("rseq"),
        [Write] = new("write", Allowed: false), [Writev] = new("writev", Allowed: false), [Execve] = new("execve", PathArg: 0, Allowed: false),
        [ExitGroup] = new("exit_group", Allowed: false),
    };

    /// <summary>Names of calls outside <see cref="Table"/> that messages name.</summary>
    static readonly Dictionary<long, string> OtherNames = new()
    {
        [Poll] = "poll", [Ioctl] = "ioctl", [Dup] = "dup", [Dup2] = "dup2", [Dup3] = "dup3", [Fcntl] = "fcntl",
        [Sysinfo] = "sysinfo", [Prctl] = "prctl", [Setrlimit] = "setrlimit", [Exit] = "exit",
    };

    public static Info? Lookup(long nr) => Table.GetValueOrDefault(nr);

    public static string Name(long nr) => Lookup(nr)?.Name ?? OtherNames.GetValueOrDefault(nr) ?? $"syscall {nr}";

    /// <summary>
    /// Did <paramref name="r"/> look for an absolute path that is not there (a probe failing
    /// with ENOENT or ENOTDIR)? Then the path's absence is a dependency.
    /// </summary>
    public static bool ProbedAbsent(SyscallRecord r) =>
        Lookup(r.Nr) is { Probes: true } && r.Result is -Interop.ENOENT or -Interop.ENOTDIR && r.PathArg is ['/', ..];

    /// <summary>Null when <paramref name="r"/> may happen before the stop, else why not.</summary>
    public static string? Refusal(SyscallRecord r)
    {
        var info = Lookup(r.Nr);
        if (info is null || !info.Allowed)
            return $"ld.so made {Describe(r)}, which the restorer cannot reproduce";
        if (r.Nr == ArchPrctl && r.Args[0] is not (ArchSetFs or ArchGetFs or ArchGetGs or ArchGetCpuid or ArchCetStatus or ArchShstkStatus))
            return $"ld.so made {Describe(r)} (code 0x{r.Args[0]:x}), which the restorer cannot reproduce";
        // ld.so's _dl_make_stack_executable: mprotect(stack page, PROT_EXEC | PROT_GROWSDOWN).
        // The restored process keeps this exec's stack, which nobody made executable.
        if (r.Nr == Mprotect && (r.Args[2] & ProtGrowsDown) != 0)
            return "a library needs an executable stack (PT_GNU_STACK with PF_X): not supported";
        if (r.Nr == Prlimit64 && r.Args[2] != 0)
            return $"ld.so changed a resource limit ({Describe(r)})";
        return null;
    }

    public static string Describe(SyscallRecord r) =>
        r.PathArg is null ? Name(r.Nr) : $"{Name(r.Nr)}(\"{r.PathArg}\")";
}
