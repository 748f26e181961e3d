using Xunit;
using Resident.Tests.Capture;
using Resident.Tests.Integration.Harness;

namespace Resident.Tests.Integration;

/// <summary>
/// `resident add --level init` end to end (docs/init-level.md): a program whose constructors'
/// result holds for every exec is restored at main, with identical output, exit status, atexit
/// handlers and a heap that goes on growing; one whose constructors depend on the exec is refused
/// with its reason, one line, and registered at the link level instead, which restores. Each row
/// of the table is a real constructor, captured and run.
/// </summary>
public sealed class InitLevelTests
{
    const string Includes = "#define _GNU_SOURCE\n#include <errno.h>\n#include <fcntl.h>\n#include <pthread.h>\n#include <signal.h>\n"
        + "#include <stdio.h>\n#include <stdlib.h>\n#include <string.h>\n#include <sys/random.h>\n#include <sys/stat.h>\n#include <time.h>\n"
        + "#include <sys/prctl.h>\n#include <sys/resource.h>\n#include <unistd.h>\n#include <x86intrin.h>\nextern char **environ;\nstatic void *idle(void *a) { return a; }\n"
        + "static void on_int(int s) { (void)s; }\n";

    /// <summary>A program whose one constructor runs BODY (it gets argc and argv) and whose main prints MAIN.</summary>
    static string Build(NativeBuild build, string name, string body, string main = "return 0;") =>
        build.Compile(name, $"{Includes}static long v; static const char *s = \"\";\n"
            + $"__attribute__((constructor)) static void ctor(int argc, char **argv) {{ (void)argc; (void)argv; {body} }}\n"
            + $"int main(int argc, char **argv) {{ (void)argc; (void)argv; printf(\"v=%ld s=%s\\n\", v, s); {main} }}\n", "-pthread");

    static string AddInit(ResidentSession s, string program)
    {
        var r = s.Cli("add", "--level", "init", program);
        Assert.True(r.ExitCode == 0, "resident add --level init failed:\n" + r);
        return r.StdoutText.Trim();
    }

    /// <summary>
    /// The constructors build a table with malloc, register an atexit handler and look up a
    /// variable; main reads the table, its arguments and short name, allocates 100 MB in small
    /// pieces past the captured heap and returns a status that depends on argc.
    /// </summary>
    [Fact]
    public void ConstructorsState_RestoredAtMain_IdenticalRuns()
    {
        using var build = new NativeBuild();
        using var s = new ResidentSession();
        string prog = build.Compile("initfixture", Includes + """
            static unsigned char *table; static const char *mode;
            static void bye(void) { printf("atexit handler ran, mode %s\n", mode ? mode : "(unset)"); }
            __attribute__((constructor)) static void init(void) {
                table = malloc(1 << 20);
                for (int i = 0; i < (1 << 20); i++) table[i] = (unsigned char)(i * 7);
                mode = getenv("INITTEST_MODE");
                atexit(bye);
            }
            int main(int argc, char **argv, char **envp) {
                long sum = 0; for (int i = 0; i < (1 << 20); i++) sum += table[i];
                printf("argc %d argv0 %s short %s sum %ld\n", argc, argv[0], program_invocation_short_name, sum);
                for (int i = 1; i < argc; i++) printf("arg %s\n", argv[i]);
                printf("envp %s, HOME=%s\n", envp == environ ? "is environ" : "differs", getenv("HOME"));
                void *keep = 0; size_t total = 0;
                for (int i = 0; i < 1000000; i++) { void **p = malloc(100); if (!p) return 3; *p = keep; keep = p; total += 100; }
                printf("allocated %zu MB\n", total >> 20);
                return argc == 3 ? 7 : 0;
            }
            """);
        Assert.Contains("at the init level", AddInit(s, prog));
        Assert.Contains("level init", s.Cli("show", prog).StdoutText);
        Assert.Contains("INITTEST_MODE", s.Cli("show", prog).StdoutText);
        s.AssertSameResident(s.Spec(prog), prog);
        var withArgs = s.AssertSameResident(s.Spec(prog, "first", "second"), prog);
        Assert.Equal(7, withArgs.ExitCode);
        Assert.Contains("atexit handler ran", withArgs.StdoutText);
        s.AssertSameResident(s.Spec(prog, ["x"], new Dictionary<string, string> { ["EXTRA_VARIABLE"] = "1" }), prog);
        // the variable a constructor looked up, set now: the constructors would do otherwise, so the
        // start is restored from the link-level image the file carries, and they run
        var show = s.Cli("show", prog).StdoutText;
        Assert.Contains("restored at the link level", show);
        var fast = s.Spec(prog, [], new Dictionary<string, string> { ["INITTEST_MODE"] = "fast" });
        s.AssertRestoredAtLinkLevel(fast, prog, "env differs: INITTEST_MODE");
        Assert.Contains("mode fast", s.RunNormal(fast).StdoutText);
    }

    /// <summary>The refusal table: each constructor depends on the exec in its own way.</summary>
    [Theory]
    [InlineData("getpid", "v = getpid();", "reads its process id")]
    [InlineData("time", "v = time(0);", "reads the time")]
    [InlineData("getrandom", "getrandom(&v, sizeof v, 0);", "random bytes (getrandom)")]
    [InlineData("rdtsc", "v = (long)__rdtsc();", "depends on the exec")]
    [InlineData("keepsfile", "v = open(\"/etc/passwd\", O_RDONLY);", "leaves /etc/passwd open")]
    [InlineData("thread", "pthread_t t; pthread_create(&t, 0, idle, 0); pthread_join(t, 0);", "")]
    [InlineData("umaskread", "mode_t m = umask(0); umask(m); v = m;", "depends on what the process inherited")]
    [InlineData("sigifignored", "if (signal(SIGINT, on_int) == SIG_IGN) signal(SIGINT, SIG_IGN);", "depends on what the process inherited")]
    [InlineData("altstack", "static char st[65536]; stack_t ss = {.ss_sp = st, .ss_size = sizeof st}; sigaltstack(&ss, 0);", "alternate signal stack")]
    [InlineData("rlimitfail", "struct rlimit r = {RLIM_INFINITY, RLIM_INFINITY}; v = setrlimit(RLIMIT_NOFILE, &r);", "resource limit failed")]
    [InlineData("argv", "s = argc > 1 ? argv[1] : \"none\";", "depends on the exec")]
    [InlineData("environ", "for (char **e = environ; *e; e++) v++;", "depends on the exec")]
    [InlineData("writes", "printf(\"hello from a constructor\\n\"); fflush(stdout);", "fd 1")]
    public void ConstructorDependingOnTheExec_RefusedWithItsReason_LinkLevelRegistered(string name, string body, string reason)
    {
        using var build = new NativeBuild();
        using var s = new ResidentSession();
        string prog = Build(build, "init_" + name, body);
        string line = AddInit(s, prog);
        Assert.True(line.Contains("at the link level (init level refused: ") && line.Contains(reason), line);
        Assert.DoesNotContain("\n", line);
        Assert.Contains("level link", s.Cli("show", prog).StdoutText);
        if (name is not ("getpid" or "time" or "getrandom" or "rdtsc" or "argv" or "environ"))
            s.AssertSameResident(s.Spec(prog, "a", "b"), prog);   // what differs per exec prints differently per run
        else
            s.AssertRestoredOnly(s.Spec(prog, "a", "b"), prog);
    }

    /// <summary>What a constructor may do and still be restored at main, each restored with output identical to a normal start.</summary>
    [Theory]
    [InlineData("argccopy", "v = argc;")]
    [InlineData("readfile", "char b[16] = {0}; int fd = open(\"/etc/hostname\", O_RDONLY); v = read(fd, b, 8) > 0; close(fd);")]
    [InlineData("getenv", "s = getenv(\"HOME\");")]
    [InlineData("malloc", "char *p = malloc(4000); strcpy(p, \"kept\"); s = p; free(malloc(50));")]
    [InlineData("none", "")]
    // kernel state the constructors set, set again by the takeover: main shows it, or dies without it
    [InlineData("sigint", "signal(SIGINT, on_int);",
        "struct sigaction a; sigaction(SIGINT, 0, &a); printf(\"handler %s\\n\", a.sa_handler == on_int ? \"on_int\" : \"other\"); raise(SIGINT); return 0;")]
    [InlineData("umask", "umask(027);", "printf(\"umask %o\\n\", umask(0)); return 0;")]
    [InlineData("sigmask", "sigset_t m; sigemptyset(&m); sigaddset(&m, SIGUSR1); sigprocmask(SIG_BLOCK, &m, 0);",
        "sigset_t o; sigprocmask(SIG_BLOCK, 0, &o); printf(\"usr1 blocked %d\\n\", sigismember(&o, SIGUSR1)); raise(SIGUSR1); return 0;")]
    [InlineData("rlimit", "struct rlimit r; getrlimit(RLIMIT_CORE, &r); r.rlim_cur = 0; setrlimit(RLIMIT_CORE, &r);",
        "struct rlimit r; getrlimit(RLIMIT_CORE, &r); printf(\"core %lu\\n\", (unsigned long)r.rlim_cur); return 0;")]
    [InlineData("name", "prctl(PR_SET_NAME, \"initname\");",
        "char b[32] = {0}; int fd = open(\"/proc/self/comm\", O_RDONLY); v = read(fd, b, 31); printf(\"comm %s\", b); return 0;")]
    public void ConstructorSameForEveryExec_RestoredAtMain(string name, string body, string main = "return 0;")
    {
        using var build = new NativeBuild();
        using var s = new ResidentSession();
        string prog = Build(build, "init_" + name, body, main);
        string added = AddInit(s, prog);
        Assert.True(added.Contains("at the init level"), added);
        if (name is "sigint" or "umask" or "sigmask" or "rlimit" or "name")
            Assert.DoesNotContain("(the constructors set no kernel state)", s.Cli("show", prog).StdoutText);
        s.AssertSameResident(s.Spec(prog), prog);
        s.AssertSameResident(s.Spec(prog, "one", "two", "three"), prog);
    }

    /// <summary>
    /// gdb attached to a program restored at main sees its frames down through main, and its
    /// libraries, as in a normal start: the frames below main are rebuilt, and the kernel knows
    /// the restored layout (PR_SET_MM_MAP).
    /// </summary>
    [Fact]
    public void GdbAttach_AtInitLevel_SeesTheFramesAndLibraries()
    {
        using var build = new NativeBuild();
        using var s = new ResidentSession();
        string prog = build.Compile("initwait", Includes + """
            static char *table;
            __attribute__((constructor)) static void init(void) { table = malloc(4096); strcpy(table, "ready"); }
            __attribute__((noinline)) static void wait_here(void) { for (int i = 0; i < 400; i++) usleep(20000); }
            int main(void) { printf("%s\n", table); fflush(stdout); wait_here(); return 0; }
            """, "-g");
        Assert.Contains("at the init level", AddInit(s, prog));
        const string Gdb = "/usr/bin/gdb -p $pid -batch -nx -ex bt -ex 'info sharedlibrary' 2>&1";
        var normal = s.RunNormal(s.Spec("/bin/bash", "-c", Fidelity.DebuggerTests.AttachScript, "bash", Gdb, prog));
        var resident = s.RunNormal(s.Spec("/bin/bash", "-c", Fidelity.DebuggerTests.AttachScript, "bash", Gdb,
            "/usr/bin/env", "LD_AUDIT=" + s.HookPath, "RESIDENT_DEBUG=1", prog));
        Assert.Contains("resident: restored " + prog, resident.StderrText);
        foreach (var (run, what) in new[] { (normal, "normal"), (resident, "resident") })
            foreach (var expected in new[] { "in wait_here", "in main", "libc.so.6", "ld-linux-x86-64.so.2" })
                Assert.True(run.StdoutText.Contains(expected), $"{what}: gdb -p does not show '{expected}':\n{run}");
    }

    /// <summary>clang-format at the init level over the repository's C sources, in two styles.</summary>
    [Fact]
    public void ClangFormat_AtInitLevel_OverTheCorpus()
    {
        using var s = new ResidentSession();
        const string ClangFormat = "/usr/bin/clang-format";
        string added = AddInit(s, ClangFormat);
        Assert.True(added.Contains("at the init level"), added);
        var corpus = new[] { "native", Path.Combine("native", "tests") }
            .SelectMany(d => Directory.GetFiles(Path.Combine(Product.RepoRoot, d)))
            .Where(f => f.EndsWith(".c") || f.EndsWith(".h")).Order(StringComparer.Ordinal).ToList();
        Assert.True(corpus.Count >= 10, "the corpus is too small: " + corpus.Count);
        foreach (var f in corpus)
        {
            s.AssertSameResident(s.Spec(ClangFormat, "--style=LLVM", f), ClangFormat);
            s.AssertSameResident(s.Spec(ClangFormat, ["--style={BasedOnStyle: Google, ColumnLimit: 60}", "--assume-filename=x.c"],
                stdin: File.ReadAllBytes(f)), ClangFormat);
        }
        s.AssertSameResident(s.Spec(ClangFormat, "--version"), ClangFormat);
    }

    /// <summary>
    /// libclang-cpp keeps a stack bottom aligned to 256 bytes: within a page of argc, below it or
    /// inside argv depending on how the environment's size aligns the stack block. Every
    /// alignment must verify: the capture is made under 16 environments of 16 more bytes each.
    /// </summary>
    [Fact]
    public void ClangFormat_AtInitLevel_WhateverTheStackAlignment()
    {
        for (int n = 0; n < 256; n += 16)
        {
            using var s = new ResidentSession();
            var r = s.Cli(["add", "--level", "init", "/usr/bin/clang-format"], new Dictionary<string, string> { ["RESIDENT_TEST_PAD"] = new string('x', n) });
            Assert.True(r.ExitCode == 0 && r.StdoutText.Contains(" at the init level"), $"environment padded by {n} bytes:\n{r}");
        }
    }
}
