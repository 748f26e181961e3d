using System.Runtime.Versioning;
using Xunit;
using Resident.Elf;
using Resident.Format;
using Resident.Tests.Fidelity;
using Resident.Tests.Integration.Harness;

namespace Resident.Tests.Portability;

/// <summary>
/// The portability matrix: the dist/ built on this machine, run in a Debian chroot of each glibc
/// (tests/portability/chroots.sh). In every one: the CLI starts; perl, python3 and git register
/// and every exec of them is restored with the output and exit status of a normal run; so are
/// C and C++ fixture programs compiled inside (the fidelity probe, exceptions across libraries,
/// threads, TLS, dlopen, constructors); a replaced library makes the image stale and the program
/// start normally; `resident doctor PROG` answers what the next exec then does; `resident export` of
/// perl, python3 and git runs as they do; `add` times starts
/// to main (found in that glibc's _start) and refuses a slower program; and what capture
/// read from that ld.so's bytes agrees with glibc's debug information.
/// One class per chroot, so that xunit runs them side by side.
/// </summary>
public abstract class MatrixTests(string suite)
{
    const string Perl = "/usr/bin/perl", Python = "/usr/bin/python3", Git = "/usr/bin/git";

    Chroot C => Chroot.Get(suite);

    [Fact]
    public void CliStarts()
    {
        using var s = new ResidentSession(C);
        var r = s.Cli("--version");
        Assert.True(r.ExitCode == 0 && r.StdoutText.Trim() == typeof(Resident.Cli.Cli).Assembly.GetName().Version!.ToString(3), r.ToString());
        r = s.Cli("list");
        Assert.True(r.ExitCode == 0, r.ToString());
    }

    [Fact]
    public void RealPrograms_EveryExecRestoredWithNormalOutput()
    {
        using var s = new ResidentSession(C);
        s.Register(Perl, Python, Git);
        var home = s.Seen(s.Home);
        (string Program, RunSpec Spec)[] runs =
        [
            (Perl, s.Spec(Perl, "-e", "print qq(hello from perl\\n); print STDERR qq(to stderr\\n); exit 3")),
            (Perl, s.Spec(Perl, "-MPOSIX", "-MData::Dumper", "-MList::Util=sum", "-e",
                "$Data::Dumper::Sortkeys=1; print Dumper({a=>sum(1..10)}), POSIX::floor(2.7), qq(\\n)")),
            (Perl, s.Spec(Perl, "-e", "print $ENV{HOME} eq q(" + home + ") ? qq(env ok\\n) : qq(env bad\\n); die qq(perl died\\n)")),
            (Perl, s.Spec(Perl, [], stdin: "print qq(program from stdin\\n);\n"u8.ToArray())),
            (Python, s.Spec(Python, "-c", "import sys, json, hashlib; print(json.dumps({'argv': sys.argv[1:], 'sha': hashlib.sha256(b'x').hexdigest()}))", "a b", "")),
            (Python, s.Spec(Python, "-c", "import threading, queue\nq = queue.Queue()\nts = [threading.Thread(target=q.put, args=(i,)) for i in range(8)]\n[t.start() for t in ts]; [t.join() for t in ts]\nprint(sorted(q.get() for _ in ts))")),
            (Python, s.Spec(Python, "-c", "import sys; print('to stderr', file=sys.stderr); sys.exit(4)")),
            (Git, s.Spec(Git, "--version")),
            (Git, s.Spec(Git, ["hash-object", "--stdin"], stdin: "a blob\n"u8.ToArray())),
            (Git, s.Spec(Git, "rev-parse", "--is-inside-work-tree")),   // not a repository: exit 128
        ];
        foreach (var (program, spec) in runs)
            s.AssertSameResident(spec, C.RealPath(program));
        Assert.Equal(3, s.RunNormal(runs[0].Spec).ExitCode);
        Assert.Equal(128, s.RunNormal(runs[^1].Spec).ExitCode);
    }

    /// <summary>`resident export` in this glibc: perl, python3 and git as exported files print what they print normally.</summary>
    [Fact]
    public void Export_RealPrograms_RunAsNormal()
    {
        using var s = new ResidentSession(C);
        (string Program, string[] Args)[] runs =
        [
            (Perl, ["-MList::Util=sum", "-e", "print sum(1..10), qq( @ARGV\n)", "a", "b"]),
            (Python, ["-c", "import sys, json; print(json.dumps(sys.argv[1:]))", "x", "y"]),
            (Git, ["--version"]),
        ];
        foreach (var (program, args) in runs)
        {
            string exported = s.Seen(Path.Combine(s.WorkDir, Path.GetFileName(program) + ".exported"));
            var e = s.Cli("export", program, "-o", exported);
            Assert.True(e.ExitCode == 0 && e.StdoutText.StartsWith("exported "), e.ToString());
            var normal = s.RunNormal(s.Spec(program, args));
            var mine = s.RunNormal(s.Spec(exported, args));
            Assert.True(normal.ExitCode == 0 && mine.ExitCode == 0 && mine.StdoutText == normal.StdoutText && mine.StderrText == normal.StderrText,
                normal + "\n" + mine);
        }
    }

    [Fact]
    public void CompiledInside_ProbeAndCxxFixturesRestored()
    {
        using var s = new ResidentSession(C);
        var fx = ChrootFixtures.Get(C);
        string probe = fx.Path("probe");
        s.Register(probe, fx.Path("ctor"), fx.Path("tls"), fx.Path("threads"), fx.Path("dlopen"));
        var state = Path.Combine(s.Root, "probe-state");
        ProbeSeries.AssertSame(s, s.Spec(probe, "an argument", "", s.Seen(state)), state, probe);
        s.AssertSameResident(s.Spec(fx.Path("ctor")), fx.Path("ctor"));
        s.AssertSameResident(s.Spec(fx.Path("tls"), fx.Path("libtlsdyn.so")), fx.Path("tls"));
        s.AssertSameResident(s.Spec(fx.Path("threads")), fx.Path("threads"));
        s.AssertSameResident(s.Spec(fx.Path("dlopen"), fx.Path("libplugin.so")), fx.Path("dlopen"));
    }

    /// <summary>
    /// The init level in this glibc: main's caller found by its loads (inline in 2.31's
    /// __libc_start_main, __libc_start_call_main after, calling through memory in 2.43), the
    /// differential capture, the restore at main. The fixture whose constructors build state is
    /// restored at main with identical output, its signal handler and umask set again, and at the
    /// link level when the variable it looked up differs; the others restore at the level they got (ctor
    /// prints from a constructor: refused); every add says its level in one line.
    /// </summary>
    [Fact]
    public void InitLevel_FixturesRestoredAtMain()
    {
        using var s = new ResidentSession(C);
        var fx = ChrootFixtures.Get(C);
        string[] programs = [fx.Path("initstate"), fx.Path("ctor"), fx.Path("tls"), fx.Path("threads"), fx.Path("dlopen")];
        var r = s.Cli(["add", "--level", "init", .. programs]);
        Assert.True(r.ExitCode == 0, r.ToString());
        var lines = r.StdoutText.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.True(lines.Length == programs.Length && lines.All(l => l.Contains(" at the init level") || l.Contains("(init level refused: ")), r.ToString());
        Assert.True(lines[0].Contains(" at the init level"), r.ToString());   // initstate: its constructors' state holds for every exec
        Assert.True(lines[1].Contains("(init level refused: a constructor asks about fd 1"), r.ToString());   // ctor prints
        s.AssertSameResident(s.Spec(fx.Path("initstate")), fx.Path("initstate"));
        s.AssertSameResident(s.Spec(fx.Path("initstate"), "one", "two"), fx.Path("initstate"));
        Assert.Contains("initstate: usr1 handled, umask 027, mode (unset)", s.RunNormal(s.Spec(fx.Path("initstate"))).StdoutText);
        // the variable its constructor looked up, set: restored from the link-level image the file carries
        var fast = s.Spec(fx.Path("initstate"), [], new Dictionary<string, string> { ["INITSTATE_MODE"] = "fast" });
        s.AssertRestoredAtLinkLevel(fast, fx.Path("initstate"), "env differs: INITSTATE_MODE");
        s.AssertSameResident(s.Spec(fx.Path("ctor")), fx.Path("ctor"));
        s.AssertSameResident(s.Spec(fx.Path("tls"), fx.Path("libtlsdyn.so")), fx.Path("tls"));
        s.AssertSameResident(s.Spec(fx.Path("threads")), fx.Path("threads"));
        s.AssertSameResident(s.Spec(fx.Path("dlopen"), fx.Path("libplugin.so")), fx.Path("dlopen"));
    }

    /// <summary>`add` times starts to main (found in this glibc's _start) and refuses a slower one: the pace fixture decides which.</summary>
    [Fact]
    public void Add_TimesToMain_RegistersTheFasterRefusesTheSlower()
    {
        using var s = new ResidentSession(C) { MeasureAdds = true };
        string pace = ChrootFixtures.Get(C).Path("pace");
        var faster = s.Cli(["add", pace], new Dictionary<string, string> { ["PACE"] = "normal" });
        Assert.True(faster.ExitCode == 0, faster.ToString());
        Assert.Matches(@"; starts to main in 0\.[0-4]\d of the time \(", faster.StdoutText);
        var slower = s.Cli(["add", pace], new Dictionary<string, string> { ["PACE"] = "restored" });
        Assert.True(slower.ExitCode == 1, slower.ToString());
        var ratio = System.Text.RegularExpressions.Regex.Match(slower.StderrText, @"^resident: not registered \S+: it starts slower restored: to main in ([0-9.]+) of the time");
        Assert.True(ratio.Success && double.Parse(ratio.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture) > 2, slower.ToString());
    }

    [Fact]
    public void ReplacedLibrary_FallsBack_AndDoctorSaysSoFirst()
    {
        using var s = new ResidentSession(C);
        var dir = Path.Combine(s.Root, "libs");
        ChrootFixtures.Get(C).CopyTo(dir);
        string libs = s.Seen(Path.Combine(dir, "libs"));
        s.Register(libs);
        var spec = s.Spec(libs, "x");

        AssertDoctorThenExec(s, libs, spec, "would restore", "resident: restored " + libs);
        File.Copy(Path.Combine(dir, "libalpha_v2.so"), Path.Combine(dir, "libalpha.so"), overwrite: true);
        var line = s.AssertFallsBack(spec, libs, "library changed");
        AssertDoctorThenExec(s, libs, spec, "would fall back: " + line[(line.IndexOf(": ", "resident: ".Length, StringComparison.Ordinal) + 2)..], line);
        Assert.Contains("alpha: constructor (version 2)", s.RunNormal(spec).StdoutText);
    }

    [Fact]
    public void Doctor_AnswersWhatTheNextExecDoes()
    {
        using var s = new ResidentSession(C);
        s.Register(Perl, Python, Git);
        foreach (var program in new[] { Perl, Python, Git })
            AssertDoctorThenExec(s, program, s.Spec(program, "--version"), "would restore", "resident: restored " + C.RealPath(program));
    }

    /// <summary>`resident doctor PROGRAM` says VERDICT, and the next exec of SPEC prints exactly LINE.</summary>
    static void AssertDoctorThenExec(ResidentSession s, string program, RunSpec spec, string verdict, string line)
    {
        var doctor = s.Cli(["doctor", program], new Dictionary<string, string> { ["LD_AUDIT"] = s.HookPath });
        var said = doctor.StdoutText.Split('\n').SingleOrDefault(l => l.Contains("restore: the hook says"));
        Assert.True(said != null && said.EndsWith(": " + verdict), $"doctor should say '{verdict}':\n{doctor}");
        var run = s.RunResident(spec);
        var debug = DebugLines.Split(run.Stderr);
        Assert.True(debug.Lines.Count == 1 && debug.Lines[0] == line, $"after the doctor said '{verdict}', expected '{line}':\n{run}");
    }

    [Fact]
    public void LdsoFacts_AgreeWithGlibcDebugInformation()
    {
        using var s = new ResidentSession(C);
        s.Register(Perl);
        string ldso = C.Host(C.RealPath("/lib64/ld-linux-x86-64.so.2"));
        var (size, leaf1Ebx) = LdsoDebugInfo.CpuFeatures(ldso, C.Host("/usr/lib/debug"));
        var facts = LdsoFacts.Read(ldso);
        Assert.True(facts.CpuFeaturesMaxLen >= size, $"the file's zeros after cpu_features ({facts.CpuFeaturesMaxLen}) must cover the struct ({size})");
        var info = ImageReader.Read(Assert.Single(s.ImageFiles()));
        Assert.Equal((ulong)size, info.Header.CpuFeaturesLen);
        Assert.Equal(facts.CpuFeaturesOff, info.Header.CpuFeaturesOff);
        Assert.Equal([leaf1Ebx + 3], Enumerable.Range(0, info.CpuFeaturesMask.Length).Where(i => info.CpuFeaturesMask[i] != 0xff));
    }
}

public sealed class Bullseye() : MatrixTests("bullseye");
public sealed class Bookworm() : MatrixTests("bookworm");
public sealed class Trixie() : MatrixTests("trixie");
public sealed class Sid() : MatrixTests("sid");
