using System.Buffers.Binary;
using Xunit;
using Resident.Export;
using Resident.Tests.Integration.Harness;

namespace Resident.Tests.Export;

/// <summary>
/// `resident export` (issue 12) end to end: real programs exported with dist/resident, run on
/// this machine and in an empty chroot (the file, /proc and /dev: no ld.so, no library), their
/// output compared with the programs' own.
/// </summary>
public sealed class ExportTests(Fixtures fx) : IClassFixture<Fixtures>
{
    static readonly Dictionary<string, string> PlainEnv = new() { ["PATH"] = "/usr/bin:/bin", ["LANG"] = "C" };

    static RunResult Run(string program, IEnumerable<string> args, byte[]? stdin = null, IDictionary<string, string>? env = null) =>
        ProcessRunner.Run(new RunSpec(program, args.ToList())
        {
            Env = env is null ? PlainEnv : new Dictionary<string, string>(PlainEnv.Concat(env)),
            Stdin = stdin,
            Timeout = TimeSpan.FromMinutes(5),
        });

    /// <summary>resident export PROGRAM -o DIR/NAME, asserted to succeed with its one line.</summary>
    static string Export(string program, string dir, string name, params string[] options)
    {
        Product.RequireBuilt();
        string output = Path.Combine(dir, name);
        var r = Run(Product.Cli, ["export", program, "-o", output, .. options]);
        Assert.True(r.ExitCode == 0, r.ToString());
        Assert.StartsWith("exported ", r.StdoutText);
        Assert.Single(r.StdoutText.Trim().Split('\n'));
        Assert.True(File.Exists(output), r.ToString());
        return output;
    }

    /// <summary>tests/export/run-empty.sh: PROGRAM in a chroot holding nothing but what the test put there.</summary>
    static RunResult RunEmpty(string root, IEnumerable<string> args, byte[]? stdin = null, string roBinds = "")
    {
        Assert.True(Environment.UserName == "root", "the empty-chroot tests need root (unshare, mount, chroot)");
        foreach (var d in new[] { "proc", "dev" })
            Directory.CreateDirectory(Path.Combine(root, d));
        var env = new Dictionary<string, string> { ["RO_BINDS"] = roBinds };
        return Run(Path.Combine(Product.RepoRoot, "tests", "export", "run-empty.sh"), [root, .. args], stdin, env);
    }

    static void AssertSame(RunResult normal, RunResult exported)
    {
        Assert.True(normal.ExitCode == 0, normal.ToString());
        Assert.True(exported.ExitCode == 0 && exported.StderrText == normal.StderrText, exported.ToString());
        Assert.Equal(normal.StdoutText, exported.StdoutText);
    }

    [Fact]
    public void RealPrograms_RunInAnEmptyChroot_AsOnTheHost()
    {
        var work = TempDir.Create("resident-export-");
        try
        {
            string root = Path.Combine(work, "root");
            Directory.CreateDirectory(root);
            foreach (var (program, name) in new[] { ("/usr/bin/perl", "perl"), ("/usr/bin/python3.11", "python3.11"), ("/usr/bin/git", "git") })
                Export(program, root, name);
            Assert.False(Directory.Exists(Path.Combine(root, "usr")) || Directory.Exists(Path.Combine(root, "lib")), "the chroot must hold no library");

            string script = "my %h = map { $_ => length } @ARGV; print join(',', map { \"$_=$h{$_}\" } sort keys %h), \"\\n\"; "
                + "printf \"%.4f %s\\n\", atan2(1, 1) * 4, scalar gmtime(86400 * 365);";
            AssertSame(Run("/usr/bin/perl", ["-e", script, "alpha", "be"]), RunEmpty(root, ["/perl", "-e", script, "alpha", "be"]));
            AssertSame(Run("/usr/bin/git", ["--version"]), RunEmpty(root, ["/git", "--version"]));
            // Python's standard library is files it reads at run time: bound read-only, no shared library with it
            string py = "import sys, json, hashlib, datetime; print(json.dumps(sys.argv[1:]), hashlib.sha256(b'x').hexdigest()[:16], "
                + "datetime.date(2004, 1, 1).isoformat())";
            AssertSame(Run("/usr/bin/python3.11", ["-c", py, "a", "b"]),
                RunEmpty(root, ["/python3.11", "-c", py, "a", "b"], roBinds: "/usr/lib/python3.11"));
        }
        finally { TempDir.Delete(work); }
    }

    [Fact]
    public void ClangFormat_OverTheCorpus_InAnEmptyChroot()
    {
        var work = TempDir.Create("resident-export-");
        try
        {
            string root = Path.Combine(work, "root");
            Directory.CreateDirectory(root);
            Export("/usr/bin/clang-format", root, "clang-format");
            var corpus = new[] { "native", Path.Combine("native", "tests"), Path.Combine("tests", "fixtures") }
                .SelectMany(d => Directory.GetFiles(Path.Combine(Product.RepoRoot, d)))
                .Where(f => f.EndsWith(".c") || f.EndsWith(".h") || f.EndsWith(".cpp")).Order().ToList();
            Assert.True(corpus.Count >= 20, "the corpus is too small: " + corpus.Count);
            foreach (var file in corpus)
            {
                var text = File.ReadAllBytes(file);
                AssertSame(Run("/usr/bin/clang-format", ["--style=LLVM"], text), RunEmpty(root, ["/clang-format", "--style=LLVM"], text));
            }
        }
        finally { TempDir.Delete(work); }
    }

    /// <summary>
    /// The fidelity probe exported: every observable as in a normal start but those that name the
    /// file (listed: its path, argv[0] and AT_EXECFN as given, the maps' names that
    /// dl_iterate_phdr compares with) and the fresh-per-exec relations the probe checks itself.
    /// </summary>
    [Fact]
    public void Probe_Exported_EqualsNormal_ButForTheFileName()
    {
        var work = TempDir.Create("resident-export-");
        try
        {
            string probe = fx.Path("probe");
            string exported = Export(probe, work, "probe");
            // dlopen resolves $ORIGIN from the running file: the plugin goes where the file is
            File.Copy(fx.Path("libplugin.so"), Path.Combine(work, "libplugin.so"));
            string state = Path.Combine(work, "state");
            var normal = Run(probe, ["an argument", "", state]);
            File.Delete(state);
            var mine = Run(exported, ["an argument", "", state]);
            Assert.True(normal.ExitCode == 0 && mine.ExitCode == 0, normal + "\n" + mine);
            string[] namesTheFile = ["exe: ", "argv[0]: ", "env: _=", "auxv: AT_EXECFN ", "dl_iterate_phdr: "];
            var a = normal.StdoutText.Split('\n');
            var b = mine.StdoutText.Split('\n');
            Assert.True(a.Length == b.Length, $"line counts differ:\n{normal}\n{mine}");
            for (int i = 0; i < a.Length; i++)
            {
                if (a[i] == b[i]) continue;
                Assert.True(namesTheFile.Any(a[i].StartsWith) && namesTheFile.Any(b[i].StartsWith), $"line {i + 1}: '{a[i]}' became '{b[i]}'");
                Assert.True(!a[i].StartsWith("dl_iterate_phdr: ") || a[i].Replace(": yes", ": no") == b[i], $"line {i + 1}: '{a[i]}' became '{b[i]}'");
            }
            Assert.Contains("dlopen: plugin loaded", mine.StdoutText);
        }
        finally { TempDir.Delete(work); }
    }

    /// <summary>
    /// The layout: the snapshot's segments lie where no exec's stack, vdso, brk or mmap area
    /// goes, so 10,000 execs of the exported file all run; a thousand more under an unlimited
    /// under the legacy layout (setarch -L, as an unlimited stack gives: an mmap area from where
    /// the snapshot's libraries lie) and a thousand with no stack limit.
    /// </summary>
    [Fact]
    public void TenThousandExecs_NeverCollide()
    {
        var work = TempDir.Create("resident-export-");
        try
        {
            string exported = Export(fx.Path("args"), work, "args");
            string loop = "i=0; while [ $i -lt $1 ]; do out=$(\"$0\" x $i) || { echo \"exec $i failed: $?\"; exit 1; }; "
                + "case $out in *\"argv[2]=$i\"*) ;; *) echo \"exec $i: $out\"; exit 1;; esac; i=$((i+1)); done; echo ok";
            var r = Run("/bin/sh", ["-c", loop, exported, LongMode.Runs(10_000, 10_000).ToString()]);
            Assert.True(r.ExitCode == 0 && r.StdoutText.Trim() == "ok", r.ToString());
            r = Run("/usr/bin/setarch", ["x86_64", "-L", "/bin/sh", "-c", loop, exported, "1000"]);
            Assert.True(r.ExitCode == 0 && r.StdoutText.Trim() == "ok", r.ToString());
            r = Run("/bin/sh", ["-c", "ulimit -s unlimited; " + loop, exported, "1000"]);
            Assert.True(r.ExitCode == 0 && r.StdoutText.Trim() == "ok", r.ToString());
        }
        finally { TempDir.Delete(work); }
    }

    [Fact]
    public void Malloc_GrowsPastTheFirstHeap()
    {
        var work = TempDir.Create("resident-export-");
        try
        {
            string perl = Export("/usr/bin/perl", work, "perl");
            // about 130 MB in a million small pieces, then freed and reused
            string script = "my @a; push @a, 'x' x (80 + $_ % 50) for 1 .. 1_000_000; my $n = 0; $n += length for @a; "
                + "@a = (); push @a, [$_] for 1 .. 200_000; print \"$n \", scalar(@a), \"\\n\"";
            AssertSame(Run("/usr/bin/perl", ["-e", script]), Run(perl, ["-e", script]));
        }
        finally { TempDir.Delete(work); }
    }

    [Fact]
    public void InitLevel_Exported_RunsWithoutItsConstructors_OrIsRefusedWithTheVariables()
    {
        var work = TempDir.Create("resident-export-");
        try
        {
            string perl = Export("/usr/bin/perl", work, "perl", "--level", "init");
            AssertSame(Run("/usr/bin/perl", ["-e", "print qq(@ARGV\\n)", "a", "b"]), Run(perl, ["-e", "print qq(@ARGV\\n)", "a", "b"]));
            // clang-format's constructors look up variables: no link level to fall back on in one file
            var r = Run(Product.Cli, ["export", "--level", "init", "/usr/bin/clang-format", "-o", Path.Combine(work, "cf")]);
            Assert.True(r.ExitCode == 1 && r.StderrText.Contains("look up") && r.StderrText.Contains("export it at the link level"), r.ToString());
            Assert.Single(r.StderrText.Trim().Split('\n'));
            Assert.False(File.Exists(Path.Combine(work, "cf")));
        }
        finally { TempDir.Delete(work); }
    }

    /// <summary>
    /// The stub checks the CPU: a file that says it was exported on a CPU with a feature this one
    /// lacks exits 127 with one line naming it, before any of the snapshot runs.
    /// </summary>
    [Fact]
    public void CpuWithoutAFeatureOfTheExport_Exits127WithOneLine()
    {
        var work = TempDir.Create("resident-export-");
        try
        {
            string exported = Export("/usr/bin/true", work, "true");
            byte[] file = File.ReadAllBytes(exported);
            int at = ExportDescriptor.Find(file);
            // a feature bit this CPU lacks, in the stub's words (index, bit, the name it prints)
            (int Word, int Bit, string Name)[] candidates = [(2, 16, "AVX512F"), (2, 5, "AVX2"), (2, 18, "RDSEED"), (2, 19, "ADX"),
                (2, 4, "HLE"), (2, 11, "RTM"), (3, 1, "AVX512VBMI"), (3, 8, "GFNI"), (3, 9, "VAES"), (4, 4, "FSRM"), (5, 4, "AVX-VNNI"),
                (7, 16, "FMA4")];
            int Offset(int w) => at + ExportDescriptor.CpuidOffset + w * ExportDescriptor.CpuidSize + ExportDescriptor.CpuidValueOffset;
            var (word, bit, name) = candidates.First(c => (BinaryPrimitives.ReadUInt32LittleEndian(file.AsSpan(Offset(c.Word))) & (1u << c.Bit)) == 0);
            uint now = BinaryPrimitives.ReadUInt32LittleEndian(file.AsSpan(Offset(word)));
            BinaryPrimitives.WriteUInt32LittleEndian(file.AsSpan(Offset(word)), now | (1u << bit));
            File.WriteAllBytes(exported, file);
            var r = Run(exported, []);
            Assert.Equal(127, r.ExitCode);
            Assert.Equal($"resident: {exported}: exported on a CPU with {name}; this one has none\n", r.StderrText);
            Assert.Empty(r.Stdout);
        }
        finally { TempDir.Delete(work); }
    }

    /// <summary>
    /// Under a seccomp filter (tests/fixtures/deny, as a container's profile) an exported program
    /// runs when the filter allows what the restore needs, and exits 127 with one line when it
    /// denies one (munmap, arch_prctl), before anything of the program runs.
    /// </summary>
    [Fact]
    public void UnderASeccompFilter_RunsOrExits127WithOneLine()
    {
        var work = TempDir.Create("resident-export-");
        try
        {
            string exported = Export(fx.Path("args"), work, "args");
            var r = Run(fx.Path("deny"), ["436/ENOSYS", exported, "x"]);
            Assert.True(r.ExitCode == 0 && r.StdoutText.Contains("argv[1]=x"), r.ToString());
            foreach (var rule in new[] { "11/EPERM", "158/EPERM" })
            {
                r = Run(fx.Path("deny"), [rule, exported, "x"]);
                Assert.True(r.ExitCode == 127 && r.Stdout.Length == 0, r.ToString());
                Assert.Equal($"resident: {exported}: a system call the restore needs is denied (seccomp)\n", r.StderrText);
            }
        }
        finally { TempDir.Delete(work); }
    }

    [Fact]
    public void BadInput_OneLineErrors_ExistingFileIntact()
    {
        var work = TempDir.Create("resident-export-");
        try
        {
            Product.RequireBuilt();
            string keep = Path.Combine(work, "keep");
            File.WriteAllText(keep, "precious");
            var setuid = Path.Combine(work, "setuid-true");
            File.Copy("/usr/bin/true", setuid);
            File.SetUnixFileMode(setuid, File.GetUnixFileMode(setuid) | UnixFileMode.SetUser);
            foreach (var (args, expect) in new (string[], string)[]
            {
                (["export", "/nonexistent/prog", "-o", keep], "cannot export /nonexistent/prog: "),
                (["export", setuid, "-o", keep], "setuid"),
                (["export", Path.Combine(work, "keep"), "-o", keep], "cannot export"),
                (["export", "/usr/bin/true", "-o", work], "is a directory"),
            })
            {
                var r = Run(Product.Cli, args);
                Assert.True(r.ExitCode == 1 && r.StderrText.StartsWith("resident: ") && r.StderrText.Contains(expect), r.ToString());
                Assert.Single(r.StderrText.Trim().Split('\n'));
                Assert.Equal("precious", File.ReadAllText(keep));
            }
            var noOutput = Run(Product.Cli, ["export", "/usr/bin/true"]);
            Assert.NotEqual(0, noOutput.ExitCode);
        }
        finally { TempDir.Delete(work); }
    }
}
