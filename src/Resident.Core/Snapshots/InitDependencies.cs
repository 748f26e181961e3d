using Resident.Trace;

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

    const long ENOENT = 2, ENOTDIR = 20;
    const ulong O_ACCMODE = 3, O_CREAT = 0x40, O_TRUNC = 0x200, GRND_NONBLOCK = 1;

    /// <summary>x86_64 system call numbers the rules below name (SyscallTable holds ld.so's).</summary>
    static class Sys
    {
        public const long Read = 0, Write = 1, Open = 2, Close = 3, Stat = 4, Fstat = 5, Lstat = 6, Poll = 7, Lseek = 8;
        public const long Mmap = 9, Mprotect = 10, Munmap = 11, Brk = 12, RtSigaction = 13, RtSigprocmask = 14, Ioctl = 16;
        public const long Pread64 = 17, Pwrite64 = 18, Readv = 19, Writev = 20, Access = 21, SchedYield = 24, Mremap = 25;
        public const long Madvise = 28, Dup = 32, Dup2 = 33, Getpid = 39, Socket = 41, Connect = 42, Socketpair = 53;
        public const long Clone = 56, Fork = 57, Vfork = 58, Exit = 60, Uname = 63, Fcntl = 72, Getcwd = 79, Readlink = 89;
        public const long Umask = 95, Gettimeofday = 96, Getrlimit = 97, Sysinfo = 99, Getuid = 102, Getgid = 104;
        public const long Geteuid = 107, Getegid = 108, Getppid = 110, Sigaltstack = 131, Prctl = 157, Gettid = 186;
        public const long Time = 201, Futex = 202, SchedGetaffinity = 204, Getdents64 = 217, ClockGettime = 228;
        public const long ClockGetres = 229, ExitGroup = 231, Openat = 257, Newfstatat = 262, Readlinkat = 267;
        public const long Faccessat = 269, Dup3 = 292, Prlimit64 = 302, Getrandom = 318, Statx = 332, Rseq = 334;
        public const long Clone3 = 435, Faccessat2 = 439;
    }

    /// <summary>Calls that read or map what is already there and change nothing a later exec would see.</summary>
    static readonly HashSet<long> Harmless =
    [
        Sys.Read, Sys.Pread64, Sys.Readv, Sys.Lseek, Sys.Fstat, Sys.Stat, Sys.Lstat, Sys.Newfstatat, Sys.Statx, Sys.Access, Sys.Faccessat, Sys.Faccessat2,
        Sys.Readlink, Sys.Readlinkat, Sys.Getdents64, Sys.Getcwd, Sys.Uname, Sys.Mmap, Sys.Munmap, Sys.Mprotect, Sys.Mremap, Sys.Madvise, Sys.Brk,
        Sys.Getuid, Sys.Getgid, Sys.Geteuid, Sys.Getegid, Sys.Getrlimit, Sys.Futex, Sys.SchedGetaffinity, Sys.SchedYield, Sys.ClockGetres, Sys.Rseq,
    ];

    static readonly Dictionary<long, string> Names = new()
    {
        [Sys.Poll] = "poll", [Sys.Ioctl] = "ioctl", [Sys.Dup] = "dup", [Sys.Dup2] = "dup2", [Sys.Dup3] = "dup3", [Sys.Fcntl] = "fcntl",
        [Sys.Sysinfo] = "sysinfo", [Sys.Prctl] = "prctl", [Sys.Exit] = "exit", [Sys.ExitGroup] = "exit_group",
    };

    /// <summary>
    /// Judges <paramref name="calls"/>, the constructors' system calls in order; a run that did
    /// not <paramref name="reachedMain"/> (it ended, hung or died, e.g. a thread it started
    /// faulted on a watched page) refuses as well, after what its calls showed.
    /// <paramref name="inLibcData"/> says whether an address is in libc.so's own writable
    /// data: glibc's malloc (2.34 and later) seeds its tcache key there at the first
    /// allocation, getrandom(&amp;tcache_key, 8, GRND_NONBLOCK), the only 8-byte non-blocking
    /// getrandom into libc's data in glibc 2.34 to 2.43 (arc4random keeps its state elsewhere).
    /// </summary>
    public static InitDependencies Judge(IReadOnlyList<SyscallRecord> calls, bool reachedMain = true, bool vdsoCalled = false,
        Func<ulong, bool>? inLibcData = null)
    {
        var refusals = new List<string>();
        var reseed = new List<ulong>();
        var files = new List<string>();
        var absent = new List<string>();
        var open = new Dictionary<long, string>();   // fd → what the constructors opened and still hold
        void Refuse(string why) { if (!refusals.Contains(why)) refusals.Add(why); }
        void Add(List<string> list, string path) { if (!list.Contains(path)) list.Add(path); }

        foreach (var c in calls)
        {
            switch (c.Nr)
            {
                case Sys.Open or Sys.Openat:
                    JudgeOpen(c, c.Nr == Sys.Open ? c.Args[1] : c.Args[2], Refuse, p => Add(files, p), p => Add(absent, p), open);
                    break;
                case Sys.Stat or Sys.Lstat or Sys.Newfstatat or Sys.Statx or Sys.Access or Sys.Faccessat or Sys.Faccessat2
                    when c.Result is -ENOENT or -ENOTDIR && c.PathArg is ['/', ..]:
                    Add(absent, c.PathArg);
                    break;
                case Sys.Close:
                    open.Remove((long)c.Args[0]);
                    break;
                case Sys.Getpid or Sys.Gettid or Sys.Getppid:
                    Refuse("a constructor reads its process id, which differs in every exec");
                    break;
                case Sys.Getrandom when c.Args[1] == 8 && c.Args[2] == GRND_NONBLOCK && c.Result == 8 && inLibcData?.Invoke(c.Args[0]) == true:
                    if (!reseed.Contains(c.Args[0]))
                        reseed.Add(c.Args[0]);
                    break;
                case Sys.Getrandom:
                    Refuse("a constructor reads random bytes (getrandom), which must differ in every exec");
                    break;
                case Sys.ClockGettime or Sys.Gettimeofday or Sys.Time or Sys.Sysinfo:
                    Refuse("a constructor reads the time, which differs in every exec");
                    break;
                case Sys.Clone or Sys.Clone3 or Sys.Fork or Sys.Vfork:
                    Refuse("a constructor starts a thread or a process, which a snapshot cannot hold");
                    break;
                case Sys.Socket or Sys.Socketpair or Sys.Connect:
                    Refuse("a constructor opens a socket, which a snapshot cannot hold");
                    break;
                case Sys.Write or Sys.Writev or Sys.Pwrite64:
                    Refuse($"a constructor writes (fd {c.Args[0]}), which a restored start would not repeat");
                    break;
                case Sys.RtSigaction when c.Args[1] != 0:
                    Refuse("a constructor installs a signal handler (kernel state the takeover does not re-create)");
                    break;
                case Sys.RtSigprocmask when c.Args[1] != 0:
                    Refuse("a constructor changes the signal mask (kernel state the takeover does not re-create)");
                    break;
                case Sys.Prlimit64 when c.Args[2] != 0:
                    Refuse("a constructor changes a resource limit (kernel state the takeover does not re-create)");
                    break;
                case Sys.Umask:
                    Refuse("a constructor sets the umask (kernel state the takeover does not re-create)");
                    break;
                case Sys.Sigaltstack when c.Args[0] != 0:
                    Refuse("a constructor sets an alternate signal stack (kernel state the takeover does not re-create)");
                    break;
                case Sys.Ioctl:
                    Refuse($"a constructor asks about fd {c.Args[0]} (ioctl: is it a terminal?), which differs between execs");
                    break;
                case Sys.RtSigaction or Sys.RtSigprocmask or Sys.Prlimit64 or Sys.Sigaltstack:
                    break;   // queries only
                default:
                    if (!Harmless.Contains(c.Nr))
                        Refuse($"a constructor calls {Name(c.Nr)}, which the init level does not allow");
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
        return new InitDependencies(refusals, files, absent, reseed);
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
        if (c.Result is -ENOENT or -ENOTDIR)
        {
            if (path.StartsWith('/'))
                absent(path);
            return;
        }
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

    static string Name(long nr) => Names.GetValueOrDefault(nr) ?? SyscallTable.Name(nr);
}
