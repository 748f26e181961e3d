using System.Runtime.Versioning;
using Xunit;
using Resident.Tests.Integration.Harness;

namespace Resident.Tests.Fidelity;

/// <summary>
/// Tools that read a process through the kernel — gdb -p, ltrace -p, a core dump — see a
/// restored process as they see a normal one: the kernel's copy of the auxv and the layout
/// fields are the restored layout's (PR_SET_MM_MAP), so the libraries and the symbols are
/// found. The fixture `waiting` (linked against libalpha) waits in wait_here(), calling
/// alpha_value() every 20 ms, or aborts in crash_here().
/// </summary>
public sealed class DebuggerTests(Fixtures fx) : IClassFixture<Fixtures>
{
    /// <summary>Starts PROGRAM (through `env` with VARS for the resident run), waits for its "ready", runs TOOL $pid, kills it.</summary>
    internal const string AttachScript = """
        out=$TMPDIR/out.$$; tool=$1; shift
        "$@" >"$out" & pid=$!
        for i in $(seq 200); do grep -q ready "$out" && break; sleep 0.05; done
        eval "$tool"
        kill $pid; wait $pid 2>/dev/null; true
        """;

    (RunResult Normal, RunResult Resident) Attach(ResidentSession s, string tool)
    {
        var waiting = fx.Path("waiting");
        s.Register(waiting);
        var normal = s.RunNormal(s.Spec("/bin/bash", "-c", AttachScript, "bash", tool, waiting));
        var resident = s.RunNormal(s.Spec("/bin/bash", "-c", AttachScript, "bash", tool,
            "/usr/bin/env", "LD_AUDIT=" + s.HookPath, "RESIDENT_DEBUG=1", waiting));
        Assert.Contains("resident: restored " + waiting, resident.StderrText);
        return (normal, resident);
    }

    [Fact]
    public void GdbAttach_SeesTheLibrariesAndTheFrames()
    {
        using var s = new ResidentSession();
        var (normal, resident) = Attach(s, "/usr/bin/gdb -p $pid -batch -nx -ex bt -ex 'info sharedlibrary' 2>&1");
        foreach (var (run, what) in new[] { (normal, "normal"), (resident, "resident") })
            foreach (var expected in new[] { "in wait_here", "in main", "libalpha.so", "libc.so.6", "ld-linux-x86-64.so.2" })
                Assert.True(run.StdoutText.Contains(expected), $"{what}: gdb -p does not show '{expected}':\n{run}");
    }

    [Fact]
    public void LtraceAttach_TracesLibraryCalls()
    {
        Assert.True(File.Exists("/usr/bin/ltrace"), "ltrace is not installed (setup.sh installs it)");
        using var s = new ResidentSession();
        var (normal, resident) = Attach(s, "timeout -s INT 1 /usr/bin/ltrace -p $pid -e alpha_value 2>&1");
        foreach (var (run, what) in new[] { (normal, "normal"), (resident, "resident") })
            Assert.True(run.StdoutText.Contains("alpha_value("), $"{what}: ltrace -p saw no call of alpha_value:\n{run}");
    }

    [Fact]
    public void CoreDump_OpensInGdbWithSymbols()
    {
        string pattern = File.ReadAllText("/proc/sys/kernel/core_pattern").Trim();
        Assert.True(!pattern.StartsWith('|') && !pattern.Contains('/'),
            $"kernel.core_pattern is '{pattern}': this test needs cores written as files in the working directory");
        using var s = new ResidentSession();
        var waiting = fx.Path("waiting");
        s.Register(waiting);
        foreach (var resident in new[] { false, true })
        {
            var dir = Path.Combine(s.Root, resident ? "resident" : "normal");
            Directory.CreateDirectory(dir);
            var env = resident ? $"env LD_AUDIT={s.HookPath} RESIDENT_DEBUG=1 " : "";
            var crash = s.RunNormal(s.Spec("/bin/bash", "-c", $"ulimit -c unlimited; cd '{dir}' && {env}'{waiting}' abort; true"));
            Assert.True(!resident || crash.StderrText.Contains("resident: restored " + waiting), crash.ToString());
            var core = Directory.GetFiles(dir, "core*").SingleOrDefault();
            Assert.True(core != null, $"no core file in {dir}:\n{crash}");
            var gdb = s.RunNormal(s.Spec("/usr/bin/gdb", "-batch", "-nx", "-ex", "bt", "-ex", "info sharedlibrary", waiting, core));
            foreach (var expected in new[] { "in crash_here", "in main", "abort", "libalpha.so", "libc.so.6" })
                Assert.True(gdb.StdoutText.Contains(expected), $"{(resident ? "resident" : "normal")} core: gdb does not show '{expected}':\n{gdb}");
        }
    }
}
