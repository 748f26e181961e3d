using System.Text.RegularExpressions;
using Xunit;
using Resident.Format;
using Resident.Tests.Integration.Harness;

namespace Resident.Tests.Integration;

/// <summary>
/// The C/C++ fixture programs (tests/fixtures), each run normally and resident. Every test first
/// checks the normal run's output (so the fixture itself is known good), then registers the
/// program in a fresh registry and requires the resident runs to be identical and restored.
/// </summary>
public sealed class FixtureProgramTests(Fixtures fx) : IClassFixture<Fixtures>
{
    static void AssertLines(RunResult r, params string[] expected)
    {
        foreach (var line in expected)
            Assert.True(r.StdoutText.Split('\n').Contains(line), $"normal run lacks the line '{line}':\n{r}");
    }

    static void AssertNoNo(RunResult r) =>
        Assert.False(Regex.IsMatch(r.StdoutText, @"\bno\b"), $"a check of the fixture failed in a normal run:\n{r}");

    /// <summary>Runs a fixture normally (the first half of every test: the fixture must be right).</summary>
    RunResult Normal(ResidentSession s, string program, string[] args, byte[]? stdin = null, IDictionary<string, string>? env = null) =>
        s.RunNormal(s.Spec(fx.Path(program), args, env, stdin));

    /// <summary>Registers a fixture and requires its resident runs to equal its normal run.</summary>
    void Resident(ResidentSession s, string program, string[] args, int restores = 1, byte[]? stdin = null, IDictionary<string, string>? env = null)
    {
        var path = fx.Path(program);
        s.Register(path);
        s.AssertSameResident(s.Spec(path, args, env, stdin), path, restores);
    }

    [Theory]
    [InlineData("libs")]
    [InlineData("libs_nopie")]
    public void SeveralSharedLibraries(string program)
    {
        using var s = new ResidentSession();
        string[] args = ["one", "two words", ""];
        var normal = Normal(s, program, args);
        AssertLines(normal, "alpha: constructor (version 1)", "beta: constructor, alpha_value=101", "libs: constructor",
            "libs: argv[2]=two words", "libs: alpha_data after increment=8", "libs: alpha_value=101 beta_value=1101 add=5",
            "libs: alpha_describe=program's hook", "libs: atexit handler");
        Assert.Equal("libs: a line on stderr\n", normal.StderrText);
        Resident(s, program, args);
        s.AssertSameResident(s.Spec(fx.Path(program), "fail"), fx.Path(program)); // exit status 3
    }

    [Fact]
    public void CxxStaticConstructorsInALibrary()
    {
        using var s = new ResidentSession();
        var normal = Normal(s, "ctor", []);
        Assert.Equal(
            """
            libctor: C constructor (priority 150)
            libctor: construct early (priority 200)
            libctor: construct late (priority 60000)
            libctor: construct plain
            ctor: construct program static
            ctor: main
            libctor: construct function-local static
            ctor: sum=19
            ctor: sum again=19
            ctor: hello from plain
            ctor: caught: exception through libstdc++ and libgcc_s
            ctor: iostream works
            libctor: destroy function-local static
            ctor: destroy program static
            libctor: destroy plain
            libctor: destroy late (priority 60000)
            libctor: destroy early (priority 200)

            """, normal.StdoutText);
        Resident(s, "ctor", []);
    }

    [Fact]
    public void ThreadLocalVariablesInSharedLibraries()
    {
        using var s = new ResidentSession();
        var normal = Normal(s, "tls", []);
        AssertLines(normal,
            "main before: tls_counter=42 tls_text=initial main_tls=3 main_buf=main-initial ie=7 zero=0 same_addr=yes",
            "thread 3: fresh values: local=1003 main_tls=6 dyn=6 dyn_name=dyn",
            "thread 4 returned tls_counter=46",
            "main at end: tls_counter=43 tls_text=initial main_tls=3 main_buf=main-changed ie=8 zero=1 same_addr=yes");
        Resident(s, "tls", []);
    }

    [Fact]
    public void DlopenAfterStart()
    {
        using var s = new ResidentSession();
        var normal = Normal(s, "dlopen", []);
        AssertLines(normal, "plugin: constructor", "dlopen: plugin_value(5)=16 then 17, plugin call 2", "plugin: destructor",
            "dlopen: libm cos(0)=1.000", "dlopen: dladdr(printf) -> libc.so.6");
        Resident(s, "dlopen", []);
    }

    [Fact]
    public void ThreadsStartedAfterRestore()
    {
        using var s = new ResidentSession();
        var normal = Normal(s, "threads", []);
        AssertLines(normal, "threads: total=720000 (expected 720000)", "threads: 8 of 8 threads had their own tid",
            "threads: sleeper cancelled", "threads: main tid == pid: yes");
        Resident(s, "threads", []);
    }

    [Fact]
    public void ForkAndExec()
    {
        using var s = new ResidentSession();
        var normal = Normal(s, "forkexec", ["self"]);
        AssertLines(normal, "forkexec: in child: pid differs: yes, ppid is parent: yes, getpid == syscall: yes",
            "forkexec: forked child exited 7", "forkexec: hello from /bin/echo",
            "forkexec child: ppid matches parent: yes, pid matches syscall: yes", "forkexec: re-executed self exited 5",
            "forkexec: posix_spawn sh exited 4", "forkexec: system -> 3");
        // forkexec re-executes itself: two execs of a registered program, two restores
        Resident(s, "forkexec", ["self"], restores: 2);
    }

    [Fact]
    public void SignalHandlers()
    {
        using var s = new ResidentSession();
        var normal = Normal(s, "signals", []);
        AssertLines(normal, "signals: SIGUSR1 handled: yes", "signals: SIGUSR2 handled with si_pid == getpid: yes, on alternate stack: yes",
            "signals: blocked SIGUSR1 pending: yes, handled early: no", "signals: after unblock handled: yes",
            "signals: siglongjmp out of a handler with SIGALRM: yes");
        Resident(s, "signals", []);
    }

    [Theory]
    [InlineData("abort", 134)]
    [InlineData("segv", 139)]
    [InlineData("kill 15", 143)]
    [InlineData("exit 42", 42)]
    public void DeathBySignalAndExitStatus(string mode, int status)
    {
        using var s = new ResidentSession();
        var args = mode.Split(' ');
        var normal = Normal(s, "signals", args);
        Assert.Equal(status, normal.ExitCode);
        Resident(s, "signals", args);
    }

    [Theory]
    [InlineData("abort", "waitrun: killed by signal 6")]
    [InlineData("segv", "waitrun: killed by signal 11")]
    [InlineData("exit 134", "waitrun: exited 134")]
    public void SignalIsReportedAsSignal(string mode, string how)
    {
        // waitrun shows the raw wait status: abort() must kill by SIGABRT, not exit(134)
        using var s = new ResidentSession();
        string[] args = [fx.Path("signals"), .. mode.Split(' ')];
        var normal = Normal(s, "waitrun", args);
        AssertLines(normal, how);
        s.Register(fx.Path("signals"));
        s.AssertSameResident(s.Spec(fx.Path("waitrun"), args), fx.Path("signals"));
    }

    [Fact]
    public void AuxvAndProcessIdentity()
    {
        using var s = new ResidentSession();
        var env = new Dictionary<string, string> { ["FIXTURE_VAR"] = "value with spaces" };
        string[] args = ["first", "--second=2"];
        var normal = Normal(s, "auxv", args, env: env);
        AssertNoNo(normal);
        AssertLines(normal, "AT_ENTRY == &_start: yes", "AT_BASE == ld.so load address: yes",
            "stack canary derived from AT_RANDOM: yes", "pointer guard derived from AT_RANDOM: yes",
            "/proc/self/exe == realpath(argv[0]): yes", "comm: auxv", "argv[2]=--second=2", "FIXTURE_VAR=value with spaces",
            "cwd: " + s.WorkDir);
        Resident(s, "auxv", args, env: env);
    }

    [Fact]
    public void LimitsAndMainThreadStack()
    {
        using var s = new ResidentSession();
        var normal = Normal(s, "limits", []);
        AssertLines(normal, "limits: main thread stack from pthread_getattr_np contains a local: yes",
            "limits: AT_MINSIGSTKSZ matches sysconf: yes");
        Resident(s, "limits", []);
    }

    [Fact]
    public void LocaleIconvAndNss()
    {
        using var s = new ResidentSession();
        var normal = Normal(s, "nss", []);
        AssertLines(normal, "nss: setlocale -> C.UTF-8", "nss: iconv UTF-8 -> ISO-8859-1 (ok): 63 61 66 e9",
            "nss: iconv UTF-8 -> EBCDIC-US (ok): 99 85 a2 89 84 85 95 a3", "nss: getpwuid(0) -> root /root", "nss: getgrgid(0) -> root");
        Resident(s, "nss", []);
    }

    [Fact]
    public void ArgumentsEnvironmentAndStdin()
    {
        using var s = new ResidentSession();
        var stdin = "line one\nline two\n"u8.ToArray();
        var env = new Dictionary<string, string> { ["FIXTURE_VAR"] = "x=y" };
        var normal = Normal(s, "args", ["7", "arg with spaces", "ünïcödé"], stdin: stdin, env: env);
        Assert.Equal(7, normal.ExitCode);
        AssertLines(normal, "argv[2]=arg with spaces", "argv[3]=ünïcödé", "env FIXTURE_VAR=x=y", "stdin: line two");
        Resident(s, "args", ["7", "arg with spaces", "ünïcödé"], stdin: stdin, env: env);
        // many arguments and a large environment: the new stack is laid out differently than at capture
        var many = Enumerable.Range(0, 500).Select(i => new string('a', i % 40) + i).ToArray();
        var bigEnv = Enumerable.Range(0, 300).ToDictionary(i => "BIG_" + i, i => new string('v', i));
        s.AssertSameResident(s.Spec(fx.Path("args"), many, bigEnv), fx.Path("args"));
    }

    [Fact]
    public void HeapPrefault_Invisible_AndRecordedInTheImage()
    {
        // the restorer hands malloc's first sbrk pre-populated pages (heap_word/heap_prefault):
        // the program must see the same break, the same growth and zero-filled pages
        using var s = new ResidentSession();
        var normal = Normal(s, "heap", []);
        AssertLines(normal, "first malloc inside the first extension: yes", "first extension: 0x21000 bytes",
            "rest of the first extension is zero: yes", "1 MiB malloc outside the break: yes");
        Resident(s, "heap", []);
        var header = global::Resident.Format.ImageReader.Read(s.ImageFiles().Single()).Header;
        Assert.True(header.HeapWord != 0 && header.HeapPrefault == 0x21000,
            $"a glibc program's image must carry libc's __curbrk (heap_word 0x{header.HeapWord:x}, heap_prefault 0x{header.HeapPrefault:x})");
    }
}
