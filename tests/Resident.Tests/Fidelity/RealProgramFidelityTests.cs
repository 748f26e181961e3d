using System.Runtime.Versioning;
using Xunit;
using Resident.Tests.Integration.Harness;

namespace Resident.Tests.Fidelity;

/// <summary>
/// Real programs doing real work, normal vs resident over several rounds (more with
/// RESIDENT_TEST_LONG=1): perl and python with C/XS extensions, threads and subprocesses, a git
/// workflow with diffs and branches, clang-format over the repository's own C sources, and gdb.
/// Integration/RealProgramTests covers the ways of invoking them (args, stdin, #!, exit statuses);
/// this class covers what they do once started.
/// </summary>
public sealed class RealProgramFidelityTests
{
    static int Rounds => LongMode.Runs(2, 10);

    /// <summary>Each spec run normally then resident (twice), for every round; RESTORES execs of PROGRAM per run.</summary>
    static void AssertSameOverRounds(ResidentSession s, IReadOnlyList<RunSpec> specs, string program, int restores = 1, int? rounds = null)
    {
        for (int round = 0; round < (rounds ?? Rounds); round++)
            foreach (var spec in specs)
                s.AssertSameResident(spec, program, restores);
    }

    [Fact]
    public void Perl_XsModulesThreadsSubprocesses()
    {
        using var s = new ResidentSession();
        const string Perl = "/usr/bin/perl";
        const string xs = """
            use strict; use warnings;
            use List::Util qw(sum max shuffle); use POSIX qw(floor); use Storable qw(freeze thaw);
            use Digest::MD5 qw(md5_hex); use Digest::SHA qw(sha256_hex); use Encode qw(encode decode);
            use Data::Dumper; use Time::HiRes qw(time); use Fcntl qw(:flock); use Socket;
            $Data::Dumper::Sortkeys = 1;
            print sum(1..100), " ", max(3, 9, 2), " ", floor(-2.5), "\n";
            print Dumper(thaw(freeze({ list => [1, 2, 3], text => "x" })));
            print md5_hex("resident"), " ", sha256_hex("resident"), "\n";
            print length(encode("UTF-8", decode("UTF-8", "\xc3\xbc\xe2\x82\xac"))), "\n";
            printf "hires clock sane: %s\n", time() > 1e9 ? "yes" : "no";
            print inet_ntoa(inet_aton("127.0.0.1")), "\n";
            """;
        const string threads = """
            use threads; use threads::shared;
            my $total :shared = 0;
            my @t = map { threads->create(sub { my $n = shift; { lock($total); $total += $n * $n; } return $n; }, $_) } 1..6;
            my @r = sort { $a <=> $b } map { $_->join } @t;
            print "joined @r total $total\n";
            """;
        const string subprocesses = """
            my $out = `/bin/echo backticks`; print $out;
            system("/bin/sh", "-c", "echo from system; exit 3"); print "status ", $? >> 8, "\n";
            open(my $p, "-|", "/usr/bin/perl", "-e", "print qq(child perl $$\\n) =~ s/\\d+/PID/r") or die; print <$p>; close $p;
            my $pid = fork(); if ($pid == 0) { print "in fork\n"; exit 4 } waitpid($pid, 0); print "fork status ", $? >> 8, "\n";
            """;
        s.Register(Perl);
        AssertSameOverRounds(s, [s.Spec(Perl, "-e", xs), s.Spec(Perl, "-e", threads)], Perl);
        AssertSameOverRounds(s, [s.Spec(Perl, "-e", subprocesses)], Perl, restores: 2); // perl and its child perl
    }

    [Fact]
    public void Python_CExtensionsThreadsSubprocesses()
    {
        using var s = new ResidentSession();
        const string Python = "/usr/bin/python3.11";
        const string extensions = """
            import json, zlib, sqlite3, decimal, math, array, struct, ctypes, hashlib, _ssl, unicodedata, datetime
            print(json.dumps({"b": [1, 2.5, None], "a": "ü"}, sort_keys=True))
            print(len(zlib.compress(b"resident" * 1000)), zlib.crc32(b"resident"))
            db = sqlite3.connect(":memory:"); db.execute("create table t(x)"); db.executemany("insert into t values (?)", [(i,) for i in range(100)])
            print(db.execute("select sum(x), count(*) from t").fetchone(), sqlite3.sqlite_version_info[0])
            print(decimal.Decimal(1) / decimal.Decimal(7), math.factorial(20), array.array("i", range(5)).tobytes().hex())
            print(struct.pack("<qd", -1, 0.5).hex(), ctypes.sizeof(ctypes.c_long), ctypes.CDLL(None).strlen(b"12345"))
            print(hashlib.blake2b(b"x").hexdigest()[:16], unicodedata.name("€"), datetime.date(2024, 2, 29).isoformat())
            """;
        const string concurrency = """
            import threading, subprocess, multiprocessing, os, sys, concurrent.futures
            def square(n): return n * n
            with concurrent.futures.ThreadPoolExecutor(4) as ex: print(sorted(ex.map(square, range(8))))
            print(subprocess.run(["/bin/echo", "subprocess"], capture_output=True, text=True).stdout.strip())
            print(subprocess.run([sys.executable, "-c", "import sys; print(sys.argv[1:])", "a b"], stdout=subprocess.PIPE, text=True).stdout.strip())
            ctx = multiprocessing.get_context("fork")
            with ctx.Pool(2) as pool: print(pool.map(square, range(5)))
            pid = os.fork()
            if pid == 0: os._exit(6)
            print("fork status", os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]))
            """;
        s.Register(Python);
        AssertSameOverRounds(s, [s.Spec(Python, "-c", extensions)], Python);
        AssertSameOverRounds(s, [s.Spec(Python, "-c", concurrency)], Python, restores: 2); // python and its child python
    }

    [Fact]
    public void ClangFormat_OverTheRepositorysSources()
    {
        using var s = new ResidentSession();
        const string ClangFormat = "/usr/bin/clang-format";
        var corpus = new[] { "native", Path.Combine("native", "tests"), Path.Combine("tests", "fixtures") }
            .SelectMany(d => Directory.GetFiles(Path.Combine(Product.RepoRoot, d)))
            .Where(f => f.EndsWith(".c") || f.EndsWith(".h") || f.EndsWith(".cpp"))
            .Order(StringComparer.Ordinal).ToList();
        Assert.True(corpus.Count >= 20, "the corpus is too small: " + corpus.Count);
        var specs = corpus.SelectMany(f => new[]
        {
            s.Spec(ClangFormat, "--style=LLVM", f),
            s.Spec(ClangFormat, ["--style={BasedOnStyle: Google, ColumnLimit: 60}", "--assume-filename=x" + Path.GetExtension(f)], stdin: File.ReadAllBytes(f)),
        }).ToList();
        s.Register(ClangFormat);
        AssertSameOverRounds(s, specs, ClangFormat, rounds: LongMode.Runs(1, 10)); // every file in two styles, each resident twice
    }

    [Fact]
    public void Git_WorkflowWithDiffsAndBranches()
    {
        using var s = new ResidentSession();
        const string Git = "/usr/bin/git";
        var gitConfig = Path.Combine(s.Home, "gitconfig");
        File.WriteAllText(gitConfig, "[init]\n\tdefaultBranch = main\n[gc]\n\tauto = 0\n[maintenance]\n\tauto = false\n");
        var env = new Dictionary<string, string>
        {
            ["GIT_CONFIG_NOSYSTEM"] = "1", ["GIT_CONFIG_GLOBAL"] = gitConfig, ["GIT_PAGER"] = "cat", ["TZ"] = "UTC",
            ["GIT_AUTHOR_NAME"] = "A", ["GIT_AUTHOR_EMAIL"] = "a@example.org", ["GIT_AUTHOR_DATE"] = "2024-02-29T12:00:00+00:00",
            ["GIT_COMMITTER_NAME"] = "C", ["GIT_COMMITTER_EMAIL"] = "c@example.org", ["GIT_COMMITTER_DATE"] = "2024-02-29T12:00:00+00:00",
        };
        var repo = Path.Combine(s.WorkDir, "repo");
        RunSpec Git_(params string[] a) => s.Spec(Git, ["-C", repo, .. a], env);
        RunSpec Sh(string script) => s.Spec("/bin/sh", ["-c", script], env) with { WorkingDirectory = repo };
        var steps = new List<RunSpec>
        {
            Git_("init", "-q"), Sh("printf 'one\\ntwo\\nthree\\n' > a.txt; echo 'int main(void) { return 0; }' > b.c"),
            Git_("add", "."), Git_("commit", "-q", "-m", "first"),
            Sh("printf 'one\\n2\\nthree\\nfour\\n' > a.txt"), Git_("diff"), Git_("diff", "--stat"), Git_("commit", "-qam", "second"),
            Git_("checkout", "-q", "-b", "topic", "HEAD~1"), Sh("echo topic > c.txt"), Git_("add", "c.txt"), Git_("commit", "-q", "-m", "topic"),
            Git_("checkout", "-q", "main"), Git_("merge", "-q", "--no-edit", "topic"),
            Git_("log", "--graph", "--format=%H %s", "--all"), Git_("diff", "HEAD~2", "HEAD"), Git_("show", "--stat", "HEAD^2"),
            Git_("status", "--porcelain=v2", "--branch"), Git_("rev-list", "--count", "HEAD"), Git_("cat-file", "-p", "HEAD^{tree}"),
        };
        s.Register(Git);
        for (int round = 0; round < Rounds; round++)
        {
            var normal = RunInFreshRepo(repo, steps, s.RunNormal);
            var resident = RunInFreshRepo(repo, steps, spec => s.RunResident(spec));
            for (int i = 0; i < steps.Count; i++)
            {
                var debug = ResidentSession.AssertSameOutput(normal[i], resident[i]);
                if (steps[i].Program == Git)
                    Assert.True(debug.Restored.Any(), $"git was not restored:\n{resident[i]}");
            }
        }
    }

    static List<RunResult> RunInFreshRepo(string repo, List<RunSpec> steps, Func<RunSpec, RunResult> run)
    {
        if (Directory.Exists(repo))
            Directory.Delete(repo, recursive: true);
        Directory.CreateDirectory(repo);
        return steps.Select(run).ToList();
    }

    [Fact]
    public void Gdb_BatchPrint()
    {
        using var s = new ResidentSession();
        const string Gdb = "/usr/bin/gdb";
        RunSpec[] specs =
        [
            s.Spec(Gdb, "-batch", "-nx", "-ex", "print 1+2"),
            s.Spec(Gdb, "-batch", "-nx", "-ex", "print sizeof(long)", "-ex", "print $_gdb_setting_str(\"language\")", "-ex", "python print(6*7)"),
        ];
        s.Register(Gdb);
        AssertSameOverRounds(s, specs, Gdb);
    }
}
