using System.Runtime.Versioning;
using System.Text.RegularExpressions;
using Xunit;
using Resident.Tests.Integration.Harness;

namespace Resident.Tests.Integration;

/// <summary>
/// valgrind with the hook enabled: the hook adds no error of its own (the errors any audit
/// module brings, counted with one that does nothing, are glibc's), and a program with an image
/// starts normally under valgrind, saying why.
/// </summary>
public sealed partial class ValgrindTests(Fixtures fx) : IClassFixture<Fixtures>
{
    const string Valgrind = "/usr/bin/valgrind";

    [GeneratedRegex(@"ERROR SUMMARY: (\d+) errors")]
    private static partial Regex Summary();

    static int Errors(RunResult r)
    {
        var m = Summary().Match(r.StderrText);
        Assert.True(m.Success, "no valgrind error summary:\n" + r);
        return int.Parse(m.Groups[1].Value);
    }

    /// <summary>bench/null_audit.c, linked as native/Makefile links the hook.</summary>
    static string NullAuditModule(ResidentSession s)
    {
        var so = Path.Combine(s.Root, "null_audit.so");
        var r = ProcessRunner.Run(new RunSpec("/usr/bin/gcc", ["-nostdlib", "-shared", "-fPIC", "-O2", "-o", so,
            Path.Combine(Product.RepoRoot, "bench", "null_audit.c")]) { Env = new Dictionary<string, string> { ["PATH"] = "/usr/bin:/bin" } });
        Assert.True(r.ExitCode == 0, r.ToString());
        return so;
    }

    [Fact]
    public void HookAddsNoErrorOfItsOwn()
    {
        Assert.True(File.Exists(Valgrind), "valgrind is not installed (setup.sh installs it)");
        using var s = new ResidentSession();
        var baseline = s.RunNormal(s.Spec(Valgrind, ["--error-exitcode=9", "/usr/bin/true"], new Dictionary<string, string> { ["LD_AUDIT"] = NullAuditModule(s) }));
        var hooked = s.RunResident(s.Spec(Valgrind, "--error-exitcode=9", "/usr/bin/true"));
        Assert.True(Errors(hooked) == Errors(baseline), $"the hook adds valgrind errors:\n=== any audit module ===\n{baseline}\n=== the hook ===\n{hooked}");
        Assert.DoesNotContain("libresident", hooked.StderrText);
        Assert.DoesNotContain("la_version", hooked.StderrText);
    }

    [Fact]
    public void ProgramWithImage_StartsNormallyUnderValgrind()
    {
        using var s = new ResidentSession();
        var args = fx.Path("args");
        s.Register(args);
        var spec = s.Spec(Valgrind, "-q", args, "x");
        var normal = s.RunNormal(spec);
        var resident = s.RunResident(spec);
        var debug = DebugLines.Split(resident.Stderr);
        Assert.True(debug.Lines.Count == 1 && debug.Lines[0] == $"resident: fallback {args}: running under valgrind", resident.ToString());
        Assert.Equal(normal.StdoutText, resident.StdoutText);
        Assert.Equal(normal.ExitCode, resident.ExitCode);
    }
}
