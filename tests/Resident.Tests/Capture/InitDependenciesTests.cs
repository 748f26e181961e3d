using Xunit;
using Resident.Snapshots;
using Resident.Trace;

namespace Resident.Tests.Capture;

/// <summary>
/// The constructors' system calls, recorded by the real constructor run of a real program and
/// judged for a snapshot at main: each class of dependency is refused with its reason or
/// named as a file dependency, and a constructor that only reads a file and closes it is neither.
/// </summary>
public sealed class InitDependenciesTests
{
    static readonly Dictionary<string, string> Env = new() { ["PATH"] = "/usr/bin:/bin", ["HOME"] = "/root", ["LANG"] = "C" };

    const string Includes = "#define _GNU_SOURCE\n#include <fcntl.h>\n#include <pthread.h>\n#include <signal.h>\n#include <stdio.h>\n#include <stdlib.h>\n"
        + "#include <sys/prctl.h>\n#include <sys/random.h>\n#include <sys/resource.h>\n#include <sys/stat.h>\n#include <sys/syscall.h>\n#include <time.h>\n#include <unistd.h>\n"
        + "static void *idle(void *a) { return a; }\nstatic void on_int(int s) { (void)s; }\n";

    /// <summary>The judgement for a program whose one constructor runs <paramref name="body"/>.</summary>
    static InitDependencies Judge(string name, string body, bool? reachesMain = true)
    {
        using var build = new NativeBuild();
        string prog = build.Compile(name,
            $"{Includes}__attribute__((constructor)) static void ctor(void) {{ {body} }}\nint main(void) {{ return 0; }}\n", "-pthread");
        using var p = Tracer.RunToResumePoint(prog, Env);
        var run = ConstructorRun.Record(p, SnapshotBuilder.Build(p));
        if (reachesMain is bool expected)
            Assert.Equal(expected, run.Main is not null);
        return run.Init;
    }

    [Fact]
    public void ReadingAFileAndClosingIt_IsAFileDependency_NoRefusal()
    {
        var init = Judge("readclose", "char b[64]; int fd = open(\"/etc/passwd\", O_RDONLY); read(fd, b, sizeof b); close(fd); "
            + "struct stat st; stat(\"/nonexistent-resident/conf\", &st);");
        Assert.Empty(init.Refusals);
        Assert.Contains("/etc/passwd", init.Files);
        Assert.Contains("/nonexistent-resident/conf", init.Absent);
    }

    /// <summary>
    /// The first malloc seeds glibc's tcache key with getrandom (2.34 and later): a word to
    /// draw afresh per exec, not a refusal. The same call into the program's own data is one.
    /// </summary>
    [Fact]
    public void MallocsTcacheKey_IsReseeded_NotRefused()
    {
        var init = Judge("malloc", "char *volatile p = malloc(100); free(p);");
        Assert.Empty(init.Refusals);
        Assert.Single(init.Reseed);
        var own = Judge("ownrandom", "static char key[8]; getrandom(key, 8, GRND_NONBLOCK);");
        Assert.Contains("a constructor reads random bytes (getrandom), which must differ in every exec", own.Refusals);
        Assert.Empty(own.Reseed);
    }

    [Fact]
    public void NoConstructor_NothingToSay()
    {
        var init = Judge("noctor", "");
        Assert.Empty(init.Refusals);
        Assert.Empty(init.Files);
        Assert.Empty(init.Environment);
    }

    /// <summary>Names looked up through getenv and secure_getenv, set or not, each once: dependencies by name.</summary>
    [Fact]
    public void GetenvLookups_AreNamed()
    {
        var init = Judge("getenv", "char *volatile a = getenv(\"RESIDENT_TEST_UNSET\"); char *volatile b = secure_getenv(\"PATH\"); "
            + "a = getenv(\"RESIDENT_TEST_UNSET\"); (void)a; (void)b;");
        Assert.Equal(["RESIDENT_TEST_UNSET", "PATH"], init.Environment);
        Assert.Empty(init.Refusals);
    }

    [Theory]
    [InlineData("getpid", "(void)getpid();", "a constructor reads its process id, which differs in every exec")]
    [InlineData("getrandom", "char b[8]; getrandom(b, sizeof b, 0);", "a constructor reads random bytes (getrandom), which must differ in every exec")]
    [InlineData("urandom", "char b[8]; int fd = open(\"/dev/urandom\", O_RDONLY); read(fd, b, 8); close(fd);", "a constructor reads random bytes (/dev/urandom), which must differ in every exec")]
    [InlineData("time", "struct timespec t; syscall(SYS_clock_gettime, CLOCK_REALTIME, &t);", "a constructor reads the time, which differs in every exec")]
    [InlineData("vdsotime", "struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t);", "a constructor reads the time through the vdso, which differs in every exec")]
    [InlineData("vdsogtod", "(void)time(0);", "a constructor reads the time through the vdso, which differs in every exec")]
    [InlineData("keepopen", "open(\"/etc/passwd\", O_RDONLY);", "a constructor leaves /etc/passwd open (fd 3) at main")]
    [InlineData("writefile", "close(open(\"/tmp/resident-init-test\", O_WRONLY | O_CREAT, 0600)); unlink(\"/tmp/resident-init-test\");", "a constructor opens /tmp/resident-init-test for writing")]
    [InlineData("altstack", "static char st[65536]; stack_t ss = {.ss_sp = st, .ss_size = sizeof st}; sigaltstack(&ss, 0);", "a constructor sets an alternate signal stack (kernel state the takeover does not re-create)")]
    [InlineData("otherprctl", "prctl(PR_SET_DUMPABLE, 0);", "a constructor calls prctl, which the init level does not allow")]
    [InlineData("write", "write(2, \"\", 0);", "a constructor writes (fd 2), which a restored start would not repeat")]
    [InlineData("isatty", "(void)isatty(1);", "a constructor asks about fd 1 (ioctl: is it a terminal?), which differs between execs")]
    [InlineData("proc", "char b[64]; int fd = open(\"/proc/self/stat\", O_RDONLY); read(fd, b, sizeof b); close(fd);", "a constructor reads /proc/self/stat, facts of this process or machine that a file stamp cannot pin")]
    [InlineData("unlisted", "(void)syscall(SYS_getpriority, 0, 0);", "a constructor calls syscall 140, which the init level does not allow")]
    public void EachClassIsRefusedWithItsReason(string name, string body, string reason)
    {
        var init = Judge(name, body);
        Assert.Contains(reason, init.Refusals);
    }

    /// <summary>
    /// Kernel state the constructors set is recorded, in order, with what they passed (read from
    /// their memory at the call), for the takeover to set again; queries are not.
    /// </summary>
    [Fact]
    public void KernelState_IsRecordedInOrder_NotRefused()
    {
        var init = Judge("kstate", "signal(SIGINT, on_int); signal(SIGPIPE, SIG_IGN); umask(027); sigset_t m; sigemptyset(&m); "
            + "sigaddset(&m, SIGUSR1); sigprocmask(SIG_BLOCK, &m, 0); sigprocmask(SIG_BLOCK, 0, &m); struct rlimit r; getrlimit(RLIMIT_CORE, &r); "
            + "r.rlim_cur = 0; setrlimit(RLIMIT_CORE, &r); prctl(PR_SET_NAME, \"kstate-name\");");
        Assert.Empty(init.Refusals);
        var ops = init.KernelOps.Select(k => k.ToString()).ToList();
        Assert.Equal(6, ops.Count);
        Assert.StartsWith("sigaction SIGINT: handler 0x", ops[0]);
        Assert.Equal("sigaction SIGPIPE: ignored", ops[1].Split(',')[0]);
        Assert.Equal("umask 027", ops[2]);
        Assert.Equal("sigprocmask block 0x200", ops[3]);
        Assert.StartsWith("rlimit core: soft 0, hard ", ops[4]);
        Assert.Equal("name \"kstate-name\"", ops[5]);
    }

    /// <summary>
    /// A thread is not traced: where it runs code on a watched page the main thread has not run
    /// yet, it faults and takes the process down before main (then that is said last). Either
    /// way the clone is named. (glibc's pthread_create blocks signals around the clone, and a
    /// first one installs its own handlers: refused too.)
    /// </summary>
    [Fact]
    public void AThread_IsRefused()
    {
        var init = Judge("thread", "pthread_t t; pthread_create(&t, 0, idle, 0); pthread_join(t, 0);", reachesMain: null);
        Assert.Contains("a constructor starts a thread or a process, which a snapshot cannot hold", init.Refusals);
        Assert.Equal(init.Refusals.Contains("the constructors did not reach main under the tracer"),
            init.Refusals[^1] == "the constructors did not reach main under the tracer");
    }

    [Fact]
    public void AForkedChild_IsRefused()
    {
        var init = Judge("fork", "if (fork() == 0) _exit(0);");
        Assert.Contains("a constructor starts a thread or a process, which a snapshot cannot hold", init.Refusals);
    }
}
