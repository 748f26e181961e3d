using System.Runtime.Versioning;
using Xunit;
using Resident.Tests.Integration.Harness;

namespace Resident.Tests.Integration;

/// <summary>
/// Conditions a restore must survive or notice: an exec environment unlike the capture's
/// (empty environment, closed or extra descriptors, another argv[0], other limits and address
/// layouts), run-time variables that change what ld.so would do, a library appearing earlier on
/// the search path, and many restores at once. (Unsafe registry permissions: Faults/RegistryTrustTests.)
/// </summary>
public sealed class EdgeCaseTests(Fixtures fx) : IClassFixture<Fixtures>
{
    static RunSpec Bash(ResidentSession s, string script, IDictionary<string, string>? env = null) =>
        s.Spec("/bin/bash", ["-c", script], env);

    /// <summary>Normal and resident output identical; the program restored or, where allowed, fallen back.</summary>
    static void AssertSame(ResidentSession s, RunSpec spec, string program, bool fallbackAllowed = false)
    {
        var normal = s.RunNormal(spec);
        var resident = s.RunResident(spec);
        var debug = ResidentSession.AssertSameOutput(normal, resident);
        if (fallbackAllowed && debug.Fallbacks.Any())
            ResidentSession.AssertFallback(debug, program, resident);
        else
            ResidentSession.AssertRestored(debug, program, 1, resident);
    }

    [Fact]
    public void EmptyEnvironment()
    {
        using var s = new ResidentSession();
        var auxv = fx.Path("auxv");
        s.Register(auxv);
        var spec = new RunSpec(auxv, ["x"]) { WorkingDirectory = s.WorkDir, Env = new Dictionary<string, string> { ["RESIDENT_DIR"] = s.RegistryDir } };
        AssertSame(s, spec, auxv);
    }

    [Fact]
    public void Argv0DiffersFromPath()
    {
        using var s = new ResidentSession();
        var auxv = fx.Path("auxv");
        s.Register(auxv);
        AssertSame(s, Bash(s, $"exec -a some-other-name '{auxv}' one"), auxv);
        AssertSame(s, Bash(s, $"cd '{fx.Dir}' && exec ./auxv relative"), auxv);
    }

    [Fact]
    public void ClosedAndExtraDescriptors()
    {
        using var s = new ResidentSession();
        var auxv = fx.Path("auxv");
        var args = fx.Path("args");
        s.Register(auxv, args);
        // fd 0 closed: whatever the hook opens first gets fd 0 and must be closed again
        AssertSame(s, Bash(s, $"exec 0<&- 3</dev/null 7>/dev/null; exec '{auxv}'"), auxv);
        AssertSame(s, Bash(s, $"exec 0<&-; exec '{args}' 0"), args);
        // stderr closed: no debug line can be seen, the output must still be the same
        var closed = Bash(s, $"exec 0<&- 2>&-; exec '{args}' 0");
        ResidentSession.AssertSameOutput(s.RunNormal(closed), s.RunResident(closed));
    }

    [Fact]
    public void PathWithSpacesAndNonAscii()
    {
        using var s = new ResidentSession();
        var dir = Path.Combine(s.Root, "dir with spaces", "ünïcödé");
        fx.CopyTo(dir);
        var prog = Path.Combine(dir, "libs");
        s.Register(prog);
        s.AssertSameResident(s.Spec(prog, "x"), prog);
    }

    [Fact]
    public void WithoutProc_SameOutput()
    {
        // in a mount namespace without /proc (chroots, minimal containers) the hook cannot key
        // the image; the program must simply start normally
        using var s = new ResidentSession();
        var args = fx.Path("args");
        s.Register(args);
        var spec = s.Spec("/usr/bin/unshare", "-m", "/bin/sh", "-c", $"umount -l /proc && exec '{args}' 2");
        var normal = s.RunNormal(spec);
        Assert.True(normal.ExitCode == 2, normal.ToString());
        var debug = ResidentSession.AssertSameOutput(normal, s.RunResident(spec));
        Assert.True(debug.Lines.Count <= 1, string.Join("\n", debug.Lines));
    }

    [Fact]
    public void NoPageOfTheHookRemains()
    {
        using var s = new ResidentSession();
        var auxv = fx.Path("auxv");
        s.Register(auxv);
        var spec = s.Spec(auxv);
        Assert.Contains("pages of libresident mapped: none\n", s.RunNormal(spec).StdoutText);
        AssertSame(s, spec, auxv);
    }

    [Fact]
    public void StackLimitDiffersFromCapture()
    {
        // glibc derives the default thread stack size from RLIMIT_STACK before the capture point
        using var s = new ResidentSession();
        var limits = fx.Path("limits");
        s.Register(limits);
        var spec = Bash(s, $"ulimit -s 4096 && exec '{limits}'");
        Assert.Contains("limits: default thread stack size 4194304\n", s.RunNormal(spec).StdoutText);
        AssertSame(s, spec, limits, fallbackAllowed: true);
    }

    [Theory]
    [InlineData("ulimit -s unlimited")] // legacy (bottom-up) mmap layout
    [InlineData("ulimit -s 1024")]
    [InlineData("exec setarch -R")] // no ASLR
    [InlineData("exec setarch -L")] // legacy layout by personality
    public void OtherAddressLayouts(string how)
    {
        using var s = new ResidentSession();
        var auxv = fx.Path("auxv");
        var tls = fx.Path("tls");
        s.Register(auxv, tls);
        foreach (var p in new[] { auxv, tls })
        {
            var script = how.StartsWith("exec ") ? $"{how} '{p}'" : $"{how} && exec '{p}'";
            AssertSame(s, Bash(s, script), p, fallbackAllowed: true);
        }
    }

    [Fact]
    public void LibraryNeedingAnExecutableStack_RefusedOrRestoredFaithfully()
    {
        // ld.so mprotects the stack PROT_EXEC for libexecstack before the capture point; an
        // image is acceptable only if the restore repeats that (else the trampoline faults)
        using var s = new ResidentSession();
        var prog = fx.Path("execstack");
        var spec = s.Spec(prog);
        var normal = s.RunNormal(spec);
        Assert.Contains("execstack: stack permissions rwxp\n", normal.StdoutText);
        var add = s.Cli("add", prog);
        if (add.ExitCode != 0)
        {
            Assert.True(add.StderrText.Split('\n', StringSplitOptions.RemoveEmptyEntries).Length == 1, add.ToString());
            Assert.Empty(s.ImageFiles());
            return;
        }
        var resident = s.RunResident(spec);
        ResidentSession.AssertRestored(ResidentSession.AssertSameOutput(normal, resident), prog, 1, resident);
    }

    [Fact]
    public void UnderGdb_BreakpointInALibraryIsHit()
    {
        // gdb follows libraries through ld.so's r_debug and its breakpoint in _dl_debug_state;
        // a restore that swaps ld.so under it must not leave the debugger blind
        using var s = new ResidentSession();
        var libs = fx.Path("libs");
        s.Register(libs);
        var spec = s.Spec("/usr/bin/gdb", "-q", "-batch", "-nx", "-ex", "break alpha_value", "-ex", "run", "-ex", "info sharedlibrary", libs);
        var normal = s.RunNormal(spec);
        Assert.Contains("Breakpoint 1, ", normal.StdoutText);
        var resident = s.RunResident(spec);
        Assert.True(resident.StdoutText.Contains("Breakpoint 1, ") && resident.StdoutText.Contains("libalpha.so"),
            "under gdb the breakpoint in libalpha was not hit (or the library is unknown to gdb):\n" + resident);
    }

    [Fact]
    public void LdPreloadAtRunTime_FallsBack()
    {
        // a restore would silently drop the preloaded library (its constructor prints a line)
        using var s = new ResidentSession();
        var libs = fx.Path("libs");
        s.Register(libs);
        var spec = s.Spec(libs, [], new Dictionary<string, string> { ["LD_PRELOAD"] = fx.Path("libplugin.so") });
        Assert.Contains("plugin: constructor", s.RunNormal(spec).StdoutText);
        s.AssertFallsBack(spec, libs);
    }

    [Fact]
    public void GlibcTunablesAtRunTime_FallsBack()
    {
        using var s = new ResidentSession();
        var limits = fx.Path("limits");
        s.Register(limits);
        s.AssertFallsBack(s.Spec(limits, [], new Dictionary<string, string> { ["GLIBC_TUNABLES"] = "glibc.pthread.stack_cache_size=0" }), limits);
    }

    [Fact]
    public void MallocPerturbAtRunTime_FallsBack()
    {
        // ld.so turns MALLOC_PERTURB_ into a tunable before the capture point
        using var s = new ResidentSession();
        var limits = fx.Path("limits");
        s.Register(limits);
        var spec = s.Spec(limits, [], new Dictionary<string, string> { ["MALLOC_PERTURB_"] = "85" });
        Assert.Contains("limits: fresh malloc byte aa\n", s.RunNormal(spec).StdoutText);
        s.AssertFallsBack(spec, limits);
    }

    [Fact]
    public void LdBindNowAtRunTime_StillRestored()
    {
        using var s = new ResidentSession();
        var libs = fx.Path("libs");
        s.Register(libs);
        AssertSame(s, s.Spec(libs, [], new Dictionary<string, string> { ["LD_BIND_NOW"] = "1" }), libs);
    }

    [Fact]
    public void LibraryAppearsEarlierOnTheSearchPath_FallsBack()
    {
        // libs_twodirs has RUNPATH $ORIGIN/override:$ORIGIN; override/ does not exist at capture
        using var s = new ResidentSession();
        var dir = Path.Combine(s.Root, "fixtures");
        fx.CopyTo(dir);
        var prog = Path.Combine(dir, "libs_twodirs");
        s.Register(prog);
        var spec = s.Spec(prog);
        AssertSame(s, spec, prog);
        Directory.CreateDirectory(Path.Combine(dir, "override"));
        File.Copy(Path.Combine(dir, "libalpha_v2.so"), Path.Combine(dir, "override", "libalpha.so"));
        Assert.Contains("alpha: constructor (version 2)", s.RunNormal(spec).StdoutText);
        s.AssertFallsBack(spec, prog);
    }

    [Fact]
    public void LibraryAppearsInAnEmptyEarlierDirectory_FallsBack()
    {
        using var s = new ResidentSession();
        var dir = Path.Combine(s.Root, "fixtures");
        fx.CopyTo(dir);
        Directory.CreateDirectory(Path.Combine(dir, "override")); // exists, empty, at capture
        var prog = Path.Combine(dir, "libs_twodirs");
        s.Register(prog);
        var spec = s.Spec(prog);
        AssertSame(s, spec, prog);
        File.Copy(Path.Combine(dir, "libalpha_v2.so"), Path.Combine(dir, "override", "libalpha.so"));
        s.AssertFallsBack(spec, prog);
    }

    [Fact]
    public void LdLibraryPathAtCapture_LibraryAppearsThere_FallsBack()
    {
        using var s = new ResidentSession();
        var dir = Path.Combine(s.Root, "fixtures");
        fx.CopyTo(dir);
        var extra = Directory.CreateDirectory(Path.Combine(s.Root, "ld-library-path")).FullName;
        var env = new Dictionary<string, string> { ["LD_LIBRARY_PATH"] = extra };
        var libs = Path.Combine(dir, "libs");
        s.Register(env, libs);
        var spec = s.Spec(libs, [], env);
        AssertSame(s, spec, libs);
        File.Copy(Path.Combine(dir, "libalpha_v2.so"), Path.Combine(extra, "libalpha.so"));
        Assert.Contains("alpha: constructor (version 2)", s.RunNormal(spec).StdoutText);
        s.AssertFallsBack(spec, libs);
    }

    [Fact]
    public void InheritedSignalDispositionsAndMask()
    {
        using var s = new ResidentSession();
        var signals = fx.Path("signals");
        s.Register(signals);
        AssertSame(s, Bash(s, $"trap '' INT QUIT; exec '{signals}' dispositions"), signals);
        var block = "import signal, os, sys; signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGHUP, signal.SIGUSR2]); os.execv(sys.argv[1], sys.argv[1:])";
        var spec = s.Spec("/usr/bin/python3.11", "-c", block, signals, "dispositions");
        Assert.Contains("signals: blocked: 1 12\n", s.RunNormal(spec).StdoutText);
        AssertSame(s, spec, signals);
    }

    [Fact]
    public void HardLinkToTheProgram()
    {
        // same dev/ino, so the same image; /proc/self/exe, argv[0] and comm are the link's
        using var s = new ResidentSession();
        var dir = Path.Combine(s.Root, "fixtures");
        fx.CopyTo(dir);
        var auxv = Path.Combine(dir, "auxv");
        s.Register(auxv);
        var link = Path.Combine(dir, "hardlinked");
        var ln = ProcessRunner.Run(new RunSpec("/bin/ln", [auxv, link]) { Env = s.BaseEnv() });
        Assert.True(ln.ExitCode == 0, ln.ToString());
        var normal = s.RunNormal(s.Spec(link));
        Assert.Contains("comm: hardlinked\n", normal.StdoutText);
        var resident = s.RunResident(s.Spec(link));
        var debug = ResidentSession.AssertSameOutput(normal, resident);
        Assert.True(debug.Lines.Count == 1, "expected one debug line:\n" + resident);
    }

    [Fact]
    public void HardLinkInAnotherDirectory_OriginRunpath()
    {
        // libs finds its libraries through RUNPATH $ORIGIN, and ld.so takes $ORIGIN from
        // /proc/self/exe: the path of this exec, not the inode. A hard link in a directory with
        // other libraries must load those, so the capture's image (same dev/ino) is not valid.
        using var s = new ResidentSession();
        var a = Path.Combine(s.Root, "a");
        var b = Directory.CreateDirectory(Path.Combine(s.Root, "b")).FullName;
        fx.CopyTo(a);
        s.Register(Path.Combine(a, "libs"));
        var ln = ProcessRunner.Run(new RunSpec("/bin/ln", [Path.Combine(a, "libs"), Path.Combine(b, "libs")]) { Env = s.BaseEnv() });
        Assert.True(ln.ExitCode == 0, ln.ToString());
        File.Copy(Path.Combine(a, "libbeta.so"), Path.Combine(b, "libbeta.so"));
        File.Copy(Path.Combine(a, "libalpha_v2.so"), Path.Combine(b, "libalpha.so"));
        var spec = s.Spec(Path.Combine(b, "libs"));
        Assert.Contains("alpha: constructor (version 2)", s.RunNormal(spec).StdoutText);
        var resident = s.RunResident(spec);
        ResidentSession.AssertSameOutput(s.RunNormal(spec), resident);
    }

    [Fact]
    public void ProgramRunThroughLdSo_NotRestored()
    {
        // /proc/self/exe is ld.so itself (AT_BASE 0): nothing to restore, nothing to say
        using var s = new ResidentSession();
        var auxv = fx.Path("auxv");
        s.Register(auxv);
        var spec = s.Spec("/lib64/ld-linux-x86-64.so.2", auxv);
        var resident = s.RunResident(spec);
        var debug = ResidentSession.AssertSameOutput(s.RunNormal(spec), resident);
        Assert.True(debug.Lines.Count == 0, "a program run through ld.so printed a debug line:\n" + resident);
    }

    [Fact]
    public void GlibcTunablesAtCapture()
    {
        // ld.so replaces the GLIBC_TUNABLES envp slot with a pointer to its own copy; the
        // capture must cope, and runs with the same setting must be restored
        using var s = new ResidentSession();
        var threads = fx.Path("threads");
        var env = new Dictionary<string, string> { ["GLIBC_TUNABLES"] = "glibc.malloc.tcache_count=0:glibc.malloc.arena_max=1" };
        s.Register(env, threads);
        AssertSame(s, s.Spec(threads, [], env), threads);
        s.AssertFallsBack(s.Spec(threads), threads);
    }

    [Fact]
    public void HugeEnvironment()
    {
        // 1.5 MB of environment: this exec's argument area reaches far below the capture's
        using var s = new ResidentSession();
        var args = fx.Path("args");
        s.Register(args);
        var env = Enumerable.Range(1, 15).ToDictionary(i => "BIG" + i, i => new string((char)('a' + i), 100_000));
        env["FIXTURE_VAR"] = "after the big ones";
        AssertSame(s, s.Spec(args, ["2"], env), args);
    }

    [Fact]
    public void CapturedOnOneCpu_RestoredOnEveryCpu()
    {
        // the cpu signature in the image must not include per-core values (APIC id)
        using var s = new ResidentSession();
        var args = fx.Path("args");
        var add = ProcessRunner.Run(s.Spec("/usr/bin/taskset", "-c", "0", Product.Cli, "add", "--no-measure", args));
        Assert.True(add.ExitCode == 0, add.ToString());
        for (int cpu = 0; cpu < Math.Min(Environment.ProcessorCount, 8); cpu++)
            AssertSame(s, s.Spec("/usr/bin/taskset", "-c", cpu.ToString(), args, "1"), args);
    }

    [Fact]
    public void ManyRestoresAtOnce()
    {
        using var s = new ResidentSession();
        var threads = fx.Path("threads");
        s.Register(threads);
        var spec = s.Spec(threads);
        var normal = s.RunNormal(spec);
        var runs = Enumerable.Range(0, 12).AsParallel().WithDegreeOfParallelism(6).Select(_ => s.RunResident(spec)).ToList();
        foreach (var resident in runs)
            ResidentSession.AssertRestored(ResidentSession.AssertSameOutput(normal, resident), threads, 1, resident);
    }
}
