using Xunit;
using Xunit.Abstractions;
using Resident.Format;
using Resident.HookContract;
using Resident.Proc;
using Resident.Snapshots;
using Resident.Tests.Capture;
using Resident.Trace;

namespace Resident.Tests.Image;

/// <summary>End to end on real programs: tracer stop → snapshot → image file → reader.</summary>
public sealed class SnapshotBuilderTests(ITestOutputHelper output) : IDisposable
{
    readonly string _dir = Directory.CreateTempSubdirectory("resident-snap-").FullName;

    public void Dispose() => Directory.Delete(_dir, true);

    static readonly Dictionary<string, string> Env = new()
    {
        ["PATH"] = "/usr/bin:/bin", ["HOME"] = "/root", ["LANG"] = "C", ["LD_LIBRARY_PATH"] = "/nonexistent-resident",
    };

    [Fact]
    public void RefusesAPointerIntoADeadStackFrame()
    {
        // An ifunc resolver runs inside ld.so's relocation, on a stack frame that is gone by
        // _dl_start_user; keeping the address of its local leaves a word nothing can give meaning to.
        using var build = new NativeBuild();
        string lib = build.Compile("libdangle.so",
            "static void *volatile kept;\n" +
            "static int impl(void) { return 0; }\n" +
            "static void *resolve(void) { volatile int local = 1; kept = (void *)&local; return (void *)impl; }\n" +
            "int dangle(void) __attribute__((ifunc(\"resolve\")));\n", "-shared -fPIC");
        string prog = build.Compile("dangle", "int dangle(void);\nint main(void) { return dangle(); }\n",
            $"-L{build.Dir} -l:libdangle.so -Wl,-rpath,{build.Dir}");
        using var p = Tracer.RunToResumePoint(prog, Env);
        var e = Assert.Throws<RefusalException>(() => SnapshotBuilder.Build(p));
        Assert.Matches($@"^unclassifiable pointer into the stack at 0x[0-9a-f]+ \(in {System.Text.RegularExpressions.Regex.Escape(lib)}\)$", e.Message);
    }

    [Fact]
    public void PointerIntoAnEnvStringIsPatchedByName()
    {
        // ld.so keeps GLRO(dl_origin_path) = &envline[15], a pointer into "LD_ORIGIN_PATH=...".
        var env = new Dictionary<string, string>(Env) { ["LD_ORIGIN_PATH"] = "/nonexistent-origin" };
        using var p = Tracer.RunToResumePoint("/usr/bin/perl", env);
        var s = SnapshotBuilder.Build(p);
        var patch = Assert.Single(s.Patches, x => x.Kind == ImageFormat.PatchEnvString);
        Assert.Equal(("LD_ORIGIN_PATH", 15L), (patch.EnvName, patch.Delta));
        Assert.Contains("LD_ORIGIN_PATH=/nonexistent-origin", s.Env);
    }

    [Theory]
    [InlineData("/usr/bin/perl")]
    [InlineData("/usr/bin/python3.11")]
    [InlineData("/usr/bin/clang-format")]
    [InlineData("/usr/bin/git")]
    public void CapturesWritesAndReadsBack(string program)
    {
        if (!File.Exists(program))
            return;
        string real = new FileInfo(program).ResolveLinkTarget(returnFinalTarget: true)?.FullName ?? program;
        Snapshot s;
        string path = Path.Combine(_dir, "x.img");
        using (var p = Tracer.RunToResumePoint(real, Env))
        {
            s = SnapshotBuilder.Build(p);
            ImageWriter.Write(s, path, 7);
        }
        foreach (var patch in s.Patches)
            output.WriteLine(patch.ToString());
        output.WriteLine($"{s.Regions.Count} regions, {s.ImageBytes} image bytes, {s.Files.Count} files");

        Assert.Equal(real, s.Files[0].Path);
        Assert.Equal(ImageFormat.FileMapped, s.Files[0].Flags);
        Assert.InRange(s.Patches.Count, 5, 12);
        Assert.Contains(s.Patches, x => x.Kind == ImageFormat.PatchArgc);
        Assert.Contains(s.Patches, x => x.Kind == ImageFormat.PatchArgv);
        Assert.Contains(s.Patches, x => x.Kind == ImageFormat.PatchEnvp);
        Assert.Contains(s.Patches, x => x.Kind == ImageFormat.PatchAuxv);
        Assert.Contains(s.Patches, x => x.Kind == ImageFormat.PatchAuxvValue && x.Index == Auxv.AT_PLATFORM);
        Assert.DoesNotContain(s.Regions, r => (r.Prot & 4) != 0 && r.Kind != ImageFormat.RegionFile);
        Assert.Contains(s.Env, e => e == "LD_LIBRARY_PATH=/nonexistent-resident");
        Assert.Contains(s.Files, f => f.Path == SnapshotBuilder.LdSoPreload);
        Assert.Contains(s.Files, f => f.Path == SnapshotBuilder.LdSoCache);

        var info = ImageReader.Read(path);
        Assert.Null(Staleness.Of(info));
        Assert.Equal(s.Patches.Count, info.Patches.Count);
        Assert.Equal(s.Regions.Select(r => (r.Start, r.End, r.Kind, r.Prot, r.Flags)),
            info.Regions.Select(r => (r.Start, r.End, r.Kind, r.Prot, r.Flags)));
        var (size, leaf1Ebx) = Portability.LdsoDebugInfo.CpuFeatures("/lib64/ld-linux-x86-64.so.2");
        Assert.Equal((ulong)size, info.Header.CpuFeaturesLen);
        Assert.Equal(0, info.CpuFeaturesMask[leaf1Ebx + 3]);
        Assert.Equal("x86_64", info.Platform);
        Assert.Equal(ProcLimits.StackSoftLimit(Environment.ProcessId), info.Header.RlimitStack); // inherited
    }
}
