using System.Buffers.Binary;
using Xunit;
using Resident.Trace;

namespace Resident.Tests.Capture;

/// <summary>Real captures: programs are started under ptrace and stopped at _dl_start_user.</summary>
public sealed class TracerTests : IDisposable
{
    const ulong AT_ENTRY = 9;
    readonly NativeBuild _build = new();

    public void Dispose() => _build.Dispose();

    static Dictionary<string, string> Env(params (string, string)[] extra)
    {
        var env = new Dictionary<string, string> { ["PATH"] = "/usr/bin:/bin", ["HOME"] = "/root", ["LANG"] = "C" };
        foreach (var (k, v) in extra)
            env[k] = v;
        return env;
    }

    [Fact]
    public void StopsPerlAtDlStartUser() => AssertStopped("/usr/bin/perl");

    [Theory]
    [InlineData("/usr/bin/python3.11")]
    [InlineData("/usr/bin/clang-format")]
    [InlineData("/usr/bin/git")]
    [InlineData("/usr/bin/gdb")]
    public void StopsCommonPrograms(string program)
    {
        if (!File.Exists(program))
            return;
        var real = new FileInfo(program).ResolveLinkTarget(returnFinalTarget: true)?.FullName ?? program;
        AssertStopped(real);
    }

    [Fact]
    public void StopsGccProgramAtDlStartUser()
    {
        string lib = _build.Compile("libfix.so", "int fix(void) { return 42; }\n", "-shared -fPIC");
        string prog = _build.Compile("fixture", "int fix(void);\nint main(void) { return fix() - 42; }\n",
            $"-L{_build.Dir} -l:libfix.so -Wl,-rpath,{_build.Dir}");
        using var p = AssertStopped(prog);
        Assert.Contains(lib, p.Opened);
    }

    IStoppedProcess AssertStopped(string program)
    {
        var p = Tracer.RunToResumePoint(program, Env(("LD_AUDIT", "x"), ("RESIDENT_DIR", "/tmp")));
        int pid = p.Pid;
        try
        {
            Assert.Equal(program, p.ProgramPath);
            Assert.False(p.LazyBind);
            Assert.Equal(p.ResumePc, p.Registers.Rip);
            Assert.Equal(p.ResumePc + 3, p.ResumeCont);
            Assert.Equal(ReadAuxv(pid)[AT_ENTRY], p.Registers.Rax);
            Assert.Equal(1UL, ReadWord(p, p.Registers.Rsp));   // argc
            AssertKernelState(p);
            Assert.Contains("LD_BIND_NOW=1", p.Environment);
            Assert.DoesNotContain(p.Environment, e => e.StartsWith("LD_AUDIT=") || e.StartsWith("RESIDENT_"));
            Assert.Contains(p.Syscalls, s => s.Nr == 9);   // mmap
            Assert.Contains(p.Opened, o => o.EndsWith("/libc.so.6"));
            Assert.All(p.ProbedAbsent, path => Assert.StartsWith("/", path));
            Assert.Single(Directory.GetDirectories($"/proc/{pid}/task"));
        }
        catch
        {
            p.Dispose();
            throw;
        }
        p.Dispose();
        p.Dispose();   // idempotent
        Assert.False(Directory.Exists($"/proc/{pid}"), "the process (or its zombie) is still there");
        return p;
    }

    static void AssertKernelState(IStoppedProcess p)
    {
        var k = p.Kernel;
        Assert.NotEqual(0UL, k.FsBase);
        Assert.Equal(p.Registers.FsBase, k.FsBase);
        Assert.NotEqual(0UL, k.TidAddress);
        Assert.NotEqual(0UL, k.RobustHead);
        Assert.Equal(24UL, k.RobustLen);
        Assert.NotEqual(0UL, k.RseqAddr);
        Assert.Equal(0x20u, k.RseqLen);
        Assert.Equal(0x53053053u, k.RseqSig);
        Assert.InRange(k.TidAddress - k.FsBase, 0UL, 0x1000UL);   // inside struct pthread, after the TCB
    }

    [Fact]
    public async Task MemoryIsReadableFromAnotherThread()
    {
        using var p = Tracer.RunToResumePoint("/usr/bin/perl", Env());
        var code = await Task.Run(() =>
        {
            var bytes = new byte[3];
            p.ReadMemory(p.ResumePc, bytes);
            return bytes;
        });
        Assert.Equal(new byte[] { 0x49, 0x89, 0xc4 }, code);   // int3 removed: mov %rax,%r12 again
    }

    [Fact]
    public void RetriesLazilyWhenBindNowFails()
    {
        // The program references a function the library it finally gets does not have:
        // LD_BIND_NOW=1 makes ld.so fail at startup, lazy binding does not.
        string dir = Path.Combine(_build.Dir, "lazy");
        Directory.CreateDirectory(dir);
        _build.Compile("lazy/libgone.so", "int present(void) { return 1; }\nint gone(void) { return 2; }\n", "-shared -fPIC");
        string prog = _build.Compile("lazyprog", "int present(void); int gone(void);\nint main(int c, char **v) { return c > 5 ? gone() : present(); }\n",
            $"-L{dir} -l:libgone.so -Wl,-rpath,{dir}");
        _build.Compile("lazy/libgone.so", "int present(void) { return 1; }\n", "-shared -fPIC");
        using var p = Tracer.RunToResumePoint(prog, Env());
        Assert.True(p.LazyBind);
        Assert.DoesNotContain("LD_BIND_NOW=1", p.Environment);
        Assert.Equal(p.ResumePc, p.Registers.Rip);
    }

    [Fact]
    public void ReportsLoaderErrorWhenTheProgramCannotStart()
    {
        string dir = Path.Combine(_build.Dir, "missing");
        Directory.CreateDirectory(dir);
        _build.Compile("missing/libmiss.so", "int miss(void) { return 1; }\n", "-shared -fPIC");
        string prog = _build.Compile("missprog", "int miss(void);\nint main(void) { return miss(); }\n",
            $"-L{dir} -l:libmiss.so -Wl,-rpath,{dir}");
        File.Delete(Path.Combine(dir, "libmiss.so"));
        var e = Assert.Throws<RefusalException>(() => Tracer.RunToResumePoint(prog, Env()));
        Assert.Contains("ended before ld.so finished", e.Message);
        Assert.Contains("libmiss.so", e.Message);
    }

    [Fact]
    public void SaysWhenTheProgramCannotBeExecutedAtAll()
    {
        // A file open for writing cannot be executed (ETXTBSY): the shell's exec fails.
        string prog = _build.Copy("/usr/bin/true", "busy");
        using var writer = new FileStream(prog, FileMode.Open, FileAccess.Write);
        var e = Assert.Throws<RefusalException>(() => Tracer.RunToResumePoint(prog, Env()));
        Assert.Contains("could not be executed", e.Message);
        Assert.Empty(ChildrenFor(prog));
    }

    [Fact]
    public void RecordsNoRseqWhenTunedOff()
    {
        using var p = Tracer.RunToResumePoint("/usr/bin/perl", Env(("GLIBC_TUNABLES", "glibc.pthread.rseq=0")));
        Assert.Equal(0UL, p.Kernel.RseqAddr);
        Assert.NotEqual(0UL, p.Kernel.TidAddress);
        Assert.Contains("GLIBC_TUNABLES=glibc.pthread.rseq=0", p.Environment);
    }

    [Fact]
    public void RefusesARelativeRunpath()
    {
        string lib = _build.Compile("librel.so", "int rel(void) { return 0; }\n", "-shared -fPIC");
        string prog = _build.Compile("relprog", "int rel(void);\nint main(void) { return rel(); }\n",
            $"-L{_build.Dir} -l:librel.so -Wl,-rpath,no-such-relative-dir:{_build.Dir}");
        var e = Assert.Throws<RefusalException>(() => Tracer.RunToResumePoint(prog, Env()));
        Assert.Contains("relative path \"no-such-relative-dir/", e.Message);
        Assert.Empty(ChildrenFor(prog));
    }

    [Fact]
    public void GivesUpAfterTheTimeoutAndKillsTheProgram()
    {
        // ld.so opens an LD_PRELOAD library; a FIFO makes that open block forever.
        string fifo = Path.Combine(_build.Dir, "fifo.so");
        NativeBuild.Run("mkfifo", fifo);
        string prog = _build.Compile("waiter", "int main(void) { return 0; }\n");
        var e = Assert.Throws<RefusalException>(() =>
            Tracer.RunToResumePoint(prog, Env(("LD_PRELOAD", fifo)), TimeSpan.FromMilliseconds(500)));
        Assert.Contains("did not finish within 0.5 s", e.Message);
        Assert.Empty(ChildrenFor(prog));
    }

    /// <summary>
    /// A timeout that fires before the spawn has a pidfd to kill through: the watchdog keeps
    /// trying until there is one (it used to try once, and then wait for ever on ld.so's open).
    /// </summary>
    [Fact]
    public void TimeoutBeforeTheSpawn_StillKillsTheProgram_NoHang()
    {
        string fifo = Path.Combine(_build.Dir, "fifo0.so");
        NativeBuild.Run("mkfifo", fifo);
        string prog = _build.Compile("waiter0", "int main(void) { return 0; }\n");
        var attempt = Task.Run(() => Tracer.RunToResumePoint(prog, Env(("LD_PRELOAD", fifo)), TimeSpan.Zero));
        Assert.True(((IAsyncResult)attempt).AsyncWaitHandle.WaitOne(TimeSpan.FromSeconds(30)), "the capture hangs after its timeout");
        var e = Assert.Throws<RefusalException>(() => attempt.GetAwaiter().GetResult());
        Assert.Contains("did not finish within 0 s", e.Message);
        Assert.Empty(ChildrenFor(prog));
    }

    [Fact]
    public void LeavesNoProcessAfterARefusal()
    {
        string dir = Path.Combine(_build.Dir, "gone");
        Directory.CreateDirectory(dir);
        _build.Compile("gone/libg.so", "int g(void) { return 1; }\n", "-shared -fPIC");
        string prog = _build.Compile("goneprog", "int g(void);\nint main(void) { return g(); }\n", $"-L{dir} -l:libg.so -Wl,-rpath,{dir}");
        File.Delete(Path.Combine(dir, "libg.so"));
        Assert.Throws<RefusalException>(() => Tracer.RunToResumePoint(prog, Env()));
        Assert.Empty(ChildrenFor(prog));
    }

    [Fact]
    public void StopChecksRefuseAMultiThreadedProcess()
    {
        // This test process has several threads (and fds, and handlers): the first reason wins.
        var e = Assert.Throws<RefusalException>(() => StopChecks.Verify(Environment.ProcessId, new SyscallLog()));
        Assert.Contains("threads exist when ld.so finishes", e.Message);
    }

    /// <summary>
    /// Children of this process (zombies included) started for <paramref name="program"/>: the
    /// stopping shell has it in its argv, the program itself as its command name.
    /// </summary>
    static List<int> ChildrenFor(string program)
    {
        string name = Path.GetFileName(program);
        name = name[..Math.Min(15, name.Length)];   // TASK_COMM_LEN - 1; a zombie keeps only this
        var found = new List<int>();
        foreach (var dir in Directory.GetDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(dir), out int pid))
                continue;
            string stat, cmdline;
            try
            {
                stat = File.ReadAllText(Path.Combine(dir, "stat"));
                cmdline = File.ReadAllText(Path.Combine(dir, "cmdline"));
            }
            catch (IOException) { continue; }
            int close = stat.LastIndexOf(')');
            string comm = stat[(stat.IndexOf('(') + 1)..close];
            int ppid = int.Parse(stat[(close + 2)..].Split(' ')[1]);
            if (ppid == Environment.ProcessId && (comm == name || cmdline.Contains(program)))
                found.Add(pid);
        }
        return found;
    }

    [Fact]
    public void PreCheckRefusalStartsNoProcess()
    {
        var e = Assert.Throws<RefusalException>(() => Tracer.RunToResumePoint(_build.Compile("st", "int main(void){return 0;}\n", "-static"), Env()));
        Assert.Contains("statically linked", e.Message);
    }

    [Fact]
    public void CaptureEnvironmentDropsAuditAndResidentVariables()
    {
        var env = Tracer.CaptureEnvironment(new Dictionary<string, string>
        {
            ["A"] = "1", ["LD_AUDIT"] = "libresident.so", ["RESIDENT_DIR"] = "/x", ["LD_BIND_NOW"] = "", ["LD_LIBRARY_PATH"] = "/l",
        }, bindNow: true);
        Assert.Equal(["A=1", "LD_LIBRARY_PATH=/l", "LD_BIND_NOW=1"], env);
        Assert.Equal(["A=1", "LD_LIBRARY_PATH=/l"], Tracer.CaptureEnvironment(new Dictionary<string, string> { ["A"] = "1", ["LD_LIBRARY_PATH"] = "/l" }, bindNow: false));
    }

    static Dictionary<ulong, ulong> ReadAuxv(int pid)
    {
        var raw = File.ReadAllBytes($"/proc/{pid}/auxv");
        var auxv = new Dictionary<ulong, ulong>();
        for (int o = 0; o + 16 <= raw.Length; o += 16)
            auxv[BinaryPrimitives.ReadUInt64LittleEndian(raw.AsSpan(o))] = BinaryPrimitives.ReadUInt64LittleEndian(raw.AsSpan(o + 8));
        return auxv;
    }

    static ulong ReadWord(IStoppedProcess p, ulong addr)
    {
        Span<byte> b = stackalloc byte[8];
        p.ReadMemory(addr, b);
        return BinaryPrimitives.ReadUInt64LittleEndian(b);
    }
}
