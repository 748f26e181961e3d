namespace Resident.Trace;

/// <summary>
/// The x86_64 syscalls ld.so may make between exec and <c>_dl_start_user</c>, and what each
/// means for the capture: where its path argument is, whether it changes kernel state the
/// restorer cannot reproduce. One table, so allowing a syscall is a one-line change.
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

    public static Info? Lookup(long nr) => Table.GetValueOrDefault(nr);

    public static string Name(long nr) => Lookup(nr)?.Name ?? $"syscall {nr}";

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
