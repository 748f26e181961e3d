using System.Text;
using System.Runtime.Versioning;
using Xunit;
using Resident.Tests.Integration.Harness;

namespace Resident.Tests.Integration;

/// <summary>
/// perl, python3.11, clang-format and git from /usr/bin, several invocations each: normal and
/// resident must agree byte for byte in stdout, stderr and exit status, and the resident runs
/// must really have been restored (the RESIDENT_DEBUG line).
/// </summary>
public sealed class RealProgramTests
{
    const string Perl = "/usr/bin/perl";
    const string Python = "/usr/bin/python3.11";
    const string ClangFormat = "/usr/bin/clang-format";
    const string Git = "/usr/bin/git";

    [Fact]
    public void Perl_VariousInvocations()
    {
        using var s = new ResidentSession();
        var script = Path.Combine(s.WorkDir, "script.pl");
        File.WriteAllText(script, """
            #!/usr/bin/perl
            use strict; use warnings;
            print "script: args @ARGV\n";
            print "script: \$0 is $0\n";
            printf "script: pid %s\n", $$ > 1 && $$ != getppid() ? "ok" : "bad";
            print STDERR "script: to stderr\n";
            exit 5;
            """);
        File.SetUnixFileMode(script, (UnixFileMode)0b111_101_101);
        RunSpec[] specs =
        [
            s.Spec(Perl, "-e", "print qq(hello from perl\\n); print STDERR qq(to stderr\\n); exit 3"),
            s.Spec(Perl, "-le", "print for @ARGV; print scalar(@ARGV)", "a", "b c", ""),
            s.Spec(Perl, "-MPOSIX", "-e", "print POSIX::floor(2.7), qq( ), POSIX::strftime(q(%Y-%m-%d), gmtime(0)), qq(\\n)"),
            s.Spec(Perl, "-MData::Dumper", "-MList::Util=sum", "-e", "$Data::Dumper::Sortkeys=1; print Dumper({a=>sum(1..10)})"),
            s.Spec(Perl, "-e", "die qq(perl died\\n)"),
            s.Spec(Perl, "-e", "print qq(cwd ok\\n) if -d q(.); print $ENV{HOME} eq q(" + s.Home + ") ? qq(env ok\\n) : qq(env bad\\n)"),
            s.Spec(Perl, "-e", "kill q(TERM), $$; sleep 5"),
            s.Spec(Perl, [], stdin: null), // like perl </dev/null: an empty program on stdin
            s.Spec(Perl, [], stdin: "print qq(program from stdin\\n); exit 0;\n"u8.ToArray()),
            s.Spec(Perl, "-e", "syntax error here ("),
        ];
        var normals = specs.Select(s.RunNormal).ToList();
        Assert.Equal(3, normals[0].ExitCode);
        Assert.Equal(255, normals[4].ExitCode);
        Assert.Equal(143, normals[6].ExitCode);
        Assert.Contains("'a' => 55", normals[3].StdoutText);

        s.Register(Perl);
        foreach (var spec in specs)
            s.AssertSameResident(spec, Perl);
        // stdin really /dev/null (the benchmark's case), through a shell that is not registered
        s.AssertSameResident(s.Spec("/bin/bash", "-c", "exec /usr/bin/perl </dev/null"), Perl);
        // a #! script: the kernel execs /usr/bin/perl, which is restored
        var scriptRun = s.AssertSameResident(s.Spec(script, "x", "y"), Perl);
        Assert.Equal(5, scriptRun.ExitCode);
        Assert.Contains("script: args x y", scriptRun.StdoutText);
        // perl running perl: both execs are restored
        s.AssertSameResident(s.Spec(Perl, "-e", "system(q(/usr/bin/perl), q(-e), q(print qq(child\\n))) == 0 or die; print qq(parent\\n)"), Perl, restores: 2);
    }

    [Fact]
    public void Python_SslHashlibCtypesSubprocessThreads()
    {
        using var s = new ResidentSession();
        const string program = """
            import ssl, hashlib, ctypes, subprocess, threading, os, sys, json
            print(ssl.OPENSSL_VERSION)
            ctx = ssl.create_default_context()
            print(ctx.verify_mode, ctx.check_hostname)
            print(hashlib.sha256(b"resident").hexdigest(), hashlib.md5(b"x").hexdigest())
            libc = ctypes.CDLL(None)
            print("ctypes getpid agrees:", libc.getpid() == os.getpid())
            print(subprocess.run(["/bin/echo", "from a subprocess"], capture_output=True, text=True).stdout, end="")
            results = []
            lock = threading.Lock()
            def work(i):
                h = hashlib.sha1(str(i).encode()).hexdigest()
                with lock:
                    results.append((i, h[:8]))
            ts = [threading.Thread(target=work, args=(i,)) for i in range(8)]
            [t.start() for t in ts]
            [t.join() for t in ts]
            print(sorted(results))
            print(json.dumps({"argv": sys.argv[1:], "exe": os.path.realpath(sys.executable)}))
            print("to stderr", file=sys.stderr)
            sys.exit(3)
            """;
        RunSpec[] specs =
        [
            s.Spec(Python, "-c", program, "arg1", "arg 2"),
            s.Spec(Python, "-c", "1/0"),
            s.Spec(Python, "-c", "import sys; sys.stdout.write(sys.stdin.read().upper())"),
            s.Spec(Python, "-c", "import os, signal; os.kill(os.getpid(), signal.SIGABRT)"),
        ];
        specs[2] = specs[2] with { Stdin = "read from stdin\n"u8.ToArray() };
        var normals = specs.Select(s.RunNormal).ToList();
        Assert.Equal(3, normals[0].ExitCode);
        Assert.Contains("ctypes getpid agrees: True", normals[0].StdoutText);
        Assert.Contains("ZeroDivisionError", normals[1].StderrText);
        Assert.Equal(134, normals[3].ExitCode);

        s.Register(Python);
        foreach (var spec in specs)
            s.AssertSameResident(spec, Python);
        // python starting python: both restored
        s.AssertSameResident(s.Spec(Python, "-c",
            "import subprocess, sys; print(subprocess.run([sys.executable, '-c', 'print(6*7)'], stdout=subprocess.PIPE, text=True).stdout.strip())"),
            Python, restores: 2);
    }

    [Fact]
    public void ClangFormat_VersionAndFormatting()
    {
        using var s = new ResidentSession();
        var source = Encoding.UTF8.GetBytes("""
            #include <stdio.h>
            int   main(int argc,char**argv){for(int i=0;i<argc;i++){printf("%s\n",argv[i]);}
            return 0;}
            struct   point{int x;int y;};   static const char *names[]={"a","bb","ccc"};
            """);
        RunSpec[] specs =
        [
            s.Spec(ClangFormat, "--version"),
            s.Spec(ClangFormat, ["--style=LLVM", "--assume-filename=x.c"], stdin: source),
            s.Spec(ClangFormat, ["--style={BasedOnStyle: Google, IndentWidth: 8, UseTab: Always}", "--assume-filename=x.c"], stdin: source),
            s.Spec(ClangFormat, ["--style=LLVM", "--output-replacements-xml", "--assume-filename=x.c"], stdin: source),
            s.Spec(ClangFormat, ["--style=NoSuchStyle", "--assume-filename=x.c"], stdin: source),
        ];
        var normals = specs.Select(s.RunNormal).ToList();
        Assert.StartsWith("Debian clang-format version", normals[0].StdoutText);
        Assert.Contains("int main(int argc, char **argv) {", normals[1].StdoutText);
        Assert.NotEqual(0, normals[4].ExitCode);

        s.Register(ClangFormat);
        foreach (var spec in specs)
            s.AssertSameResident(spec, ClangFormat);
    }

    [Fact]
    public void Git_InitAddCommitLog()
    {
        using var s = new ResidentSession();
        var repo = Path.Combine(s.WorkDir, "repo");
        var gitConfig = Path.Combine(s.Home, "gitconfig");
        // no automatic maintenance: it would start more git processes than the commands below
        File.WriteAllText(gitConfig, "[init]\n\tdefaultBranch = main\n[gc]\n\tauto = 0\n[maintenance]\n\tauto = false\n");
        var env = new Dictionary<string, string>
        {
            ["GIT_CONFIG_NOSYSTEM"] = "1", ["GIT_CONFIG_GLOBAL"] = gitConfig,
            ["GIT_AUTHOR_NAME"] = "Test Author", ["GIT_AUTHOR_EMAIL"] = "author@example.org",
            ["GIT_COMMITTER_NAME"] = "Test Committer", ["GIT_COMMITTER_EMAIL"] = "committer@example.org",
            ["GIT_AUTHOR_DATE"] = "2024-02-29T12:00:00+00:00", ["GIT_COMMITTER_DATE"] = "2024-02-29T12:00:00+00:00",
            ["GIT_PAGER"] = "cat", ["TZ"] = "UTC",
        };
        string[][] steps =
        [
            ["--version"],
            ["init", repo],
            ["-C", repo, "add", "."],
            ["-C", repo, "commit", "-m", "first commit"],
            ["-C", repo, "log", "--stat", "--format=fuller"],
            ["-C", repo, "rev-parse", "HEAD"],
            ["-C", repo, "status", "--short", "--branch"],
            ["-C", repo, "show", "--no-such-option"],
        ];

        // the same sequence in the same directory, normally and then resident
        var normal = RunGitSteps(s, repo, steps, env, resident: false);
        Assert.Contains("first commit", normal[4].StdoutText);
        Assert.NotEqual(0, normal[7].ExitCode);

        s.Register(Git);
        var resident = RunGitSteps(s, repo, steps, env, resident: true);
        for (int i = 0; i < steps.Length; i++)
        {
            var debug = ResidentSession.AssertSameOutput(normal[i], resident[i]);
            ResidentSession.AssertRestored(debug, Git, 1, resident[i]);
        }
    }

    static List<RunResult> RunGitSteps(ResidentSession s, string repo, string[][] steps, Dictionary<string, string> env, bool resident)
    {
        if (Directory.Exists(repo))
            Directory.Delete(repo, recursive: true);
        Directory.CreateDirectory(repo);
        File.WriteAllText(Path.Combine(repo, "a.txt"), "alpha\n");
        File.WriteAllText(Path.Combine(repo, "b.c"), "int main(void) { return 0; }\n");
        var results = new List<RunResult>();
        foreach (var step in steps)
        {
            var spec = s.Spec(Git, step, env);
            results.Add(resident ? s.RunResident(spec) : s.RunNormal(spec));
        }
        return results;
    }
}
