using Xunit;
using Resident.Format;
using Resident.Snapshots;
using Resident.Trace;

namespace Resident.Tests.Capture;

public sealed class ConstructorRunTests
{
    static readonly Dictionary<string, string> Env = new() { ["PATH"] = "/usr/bin:/bin", ["HOME"] = "/root", ["LANG"] = "C" };

    static (RsSpan, int) S(ulong start, ulong end, int region) => (new RsSpan { Start = start, End = end }, region);

    [Fact]
    public void CapJoinsTheClosestNeighboursOfOneRegionOnly()
    {
        var spans = new List<(RsSpan, int)> { S(0x1000, 0x2000, 0), S(0x9000, 0xa000, 0), S(0xb000, 0xc000, 1), S(0xd000, 0xe000, 1) };
        var capped = ConstructorRun.Cap(spans, 3);
        // 0x9000..0xb000 is the smallest gap but crosses regions; 0xc000..0xd000 is the next
        Assert.Equal([S(0x1000, 0x2000, 0), S(0x9000, 0xa000, 0), S(0xb000, 0xe000, 1)], capped);
        Assert.Equal([S(0x1000, 0xa000, 0), S(0xb000, 0xe000, 1)], ConstructorRun.Cap(capped, 2));
        Assert.Equal(2, ConstructorRun.Cap([S(0x1000, 0x2000, 0), S(0x3000, 0x4000, 1), S(0x5000, 0x6000, 2)], 2).Count);
    }

    [Fact]
    public void RecordsLibLlvmPagesTheConstructorsTouched()
    {
        const string program = "/usr/lib/llvm-14/bin/clang-format";
        if (!File.Exists(program))
            return;
        using var p = Tracer.RunToResumePoint(program, Env);
        var s = SnapshotBuilder.Build(p);
        var spans = ConstructorRun.Record(p, s).Spans;
        var llvm = s.Regions.Where(r => r.Name.Contains("libLLVM") && r.Kind == ImageFormat.RegionFile && (r.Prot & 4) != 0).ToList();
        Assert.NotEmpty(llvm);
        long llvmPages = spans.Where(x => llvm.Any(r => r.Contains(x.Start))).Sum(x => (long)(x.End - x.Start)) / 4096;
        // LLVM's static constructors run thousands of pages of its code before main
        Assert.InRange(llvmPages, 1000, 20000);
        Assert.InRange(spans.Count, 1, ConstructorRun.MaxSpans);
        for (int i = 0; i < spans.Count; i++)
        {
            var x = spans[i];
            Assert.True(x.Start % 4096 == 0 && x.End % 4096 == 0 && x.Start < x.End && (i == 0 || spans[i - 1].End <= x.Start), $"span {i}");
            var r = Assert.Single(s.Regions, r => r.Contains(x.Start));
            Assert.True(r.Kind == ImageFormat.RegionFile && (r.Prot & 2) == 0 && x.End <= r.End, $"span {i} in {r}");
        }
    }

    [Fact]
    public void CodePagesAreRecordedExactlyNotByFaultAroundWindows()
    {
        // 40 functions a page each; the constructor calls the 1st and the 21st only. The kernel
        // maps 16 pages around each fault, so only watching page by page tells 10 from 20.
        using var build = new NativeBuild();
        var src = new System.Text.StringBuilder("#define F(n) __attribute__((noinline, aligned(4096))) int f##n(void) { return n; }\n");
        for (int i = 0; i < 40; i++)
            src.Append($"F({i})\n");
        src.Append("volatile int sink;\n__attribute__((constructor)) static void ctor(void) { sink = f0() + f20(); }\n");
        src.Append("int main(void) { return f10(); }\n");
        string prog = build.Compile("pages", src.ToString(), "-O1");
        string nm = NativeBuild.Run("nm", prog);
        ulong Sym(string name) => Convert.ToUInt64(nm.Split('\n').Single(l => l.EndsWith(" T " + name)).Split(' ')[0], 16);
        using var p = Tracer.RunToResumePoint(prog, Env);
        var s = SnapshotBuilder.Build(p);
        var exe = s.Regions.First(r => r.Kind == ImageFormat.RegionFile && r.File == 0 && r.Offset == 0);
        ulong bias = exe.Start;   // PIE: symbol values are offsets from the first mapping
        var spans = ConstructorRun.Record(p, s).Spans;
        bool Has(string f) => spans.Any(x => bias + Sym(f) >= x.Start && bias + Sym(f) < x.End);
        Assert.True(Has("f0") && Has("f20"), "the pages the constructor ran are recorded");
        Assert.False(Has("f10"), "a page the constructor did not run is recorded (fault-around)");
    }

    /// <summary>The spans recorded for a program whose one constructor runs <paramref name="body"/>.</summary>
    static IReadOnlyList<RsSpan> RecordWithConstructor(string name, string body, TimeSpan timeout)
    {
        using var build = new NativeBuild();
        string prog = build.Compile(name,
            $"#include <unistd.h>\n__attribute__((constructor)) static void ctor(void) {{ {body} }}\nint main(void) {{ return 0; }}\n", "");
        using var p = Tracer.RunToResumePoint(prog, Env);
        return ConstructorRun.Record(p, SnapshotBuilder.Build(p), timeout).Spans;
    }

    [Fact]
    public void AConstructorThatExitsRecordsNothing()
    {
        // the capture stops before any constructor; one that ends the process leaves no spans, not an error
        Assert.Empty(RecordWithConstructor("ctorexit", "_exit(3);", ConstructorRun.Timeout));
    }

    [Fact]
    public void AChildAConstructorForksNeverRunsAndDiesWithTheCapture()
    {
        // the child would write its pid; it is traced from birth and killed with the tracer
        using var build = new NativeBuild();
        string mark = Path.Combine(build.Dir, "child-ran");
        string prog = build.Compile("ctorfork",
            "#include <fcntl.h>\n#include <unistd.h>\n" +
            $"__attribute__((constructor)) static void ctor(void) {{ if (fork() == 0) {{ close(open(\"{mark}\", O_CREAT | O_WRONLY, 0600)); _exit(0); }} }}\n" +
            "int main(void) { return 0; }\n", "");
        using (var p = Tracer.RunToResumePoint(prog, Env))
            Assert.NotEmpty(ConstructorRun.Record(p, SnapshotBuilder.Build(p)).Spans);
        Thread.Sleep(300);
        Assert.False(File.Exists(mark), "the forked child ran");
    }

    [Fact]
    public void AConstructorThatHangsIsKilledAtTheTimeout()
    {
        var started = System.Diagnostics.Stopwatch.StartNew();
        Assert.Empty(RecordWithConstructor("ctorhang", "pause();", TimeSpan.FromMilliseconds(300)));
        Assert.True(started.Elapsed < TimeSpan.FromSeconds(5), $"took {started.Elapsed}");
    }
}
