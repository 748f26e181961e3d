using System.Runtime.Versioning;
using Xunit;
using Resident.Tests.Integration.Harness;

namespace Resident.Tests.Integration;

/// <summary>
/// The soft stack limit (ulimit -s): glibc 2.34+ sizes default thread stacks from it before the
/// capture point. An image restores under another finite limit (of at least 1 MiB) by writing
/// the size a normal start would derive into the word the capture found; under a limit it
/// cannot serve it falls back; `resident add --stack-limit` captures under a chosen one. gcc
/// runs its children under 64 MiB: they are restored when compiling with `gcc -O2`.
/// </summary>
public sealed class StackLimitTests(Fixtures fx) : IClassFixture<Fixtures>
{
    RunSpec Limited(ResidentSession s, string ulimit) =>
        s.Spec("/bin/bash", "-c", $"ulimit -s {ulimit}; exec '{fx.Path("limits")}'");

    [Fact]
    public void AnotherFiniteLimit_RestoredWithTheThreadStackSizeANormalStartDerives()
    {
        using var s = new ResidentSession();
        var limits = fx.Path("limits");
        s.Register(limits);
        foreach (var kib in new[] { "8192", "65536", "1024", "16384" })
        {
            var normal = s.AssertSameResident(Limited(s, kib), limits);
            Assert.Contains($"limits: default thread stack size {long.Parse(kib) * 1024}", normal.StdoutText);
        }
        // no limit: glibc's default for x86_64 (ARCH_STACK_DEFAULT_SIZE), and the legacy layout
        var unlimited = s.AssertSameResident(Limited(s, "unlimited"), limits);
        Assert.Contains("limits: default thread stack size 2097152", unlimited.StdoutText);
        s.AssertFallsBack(Limited(s, "512"), limits, "stack limit differs");
    }

    [Fact]
    public void CapturedWithStackLimit_RestoredUnderIt()
    {
        using var s = new ResidentSession();
        var limits = fx.Path("limits");
        var add = s.Cli("add", "--stack-limit", "unlimited", limits);
        Assert.True(add.ExitCode == 0, add.ToString());
        var normal = s.AssertSameResident(Limited(s, "unlimited"), limits);
        Assert.Contains("limits: RLIMIT_STACK soft -1", normal.StdoutText);
        var bad = s.Cli("add", "--stack-limit", "lots", limits);
        Assert.True(bad.ExitCode != 0 && bad.StderrText.Contains("--stack-limit: a size such as 64M"), bad.ToString());
    }

    [Fact]
    public void GccChildren_RestoredWhenCompiling()
    {
        using var s = new ResidentSession();
        string Tool(string name)
        {
            var r = s.RunNormal(s.Spec("/bin/bash", "-c", $"p=$(gcc -print-prog-name={name}); command -v \"$p\""));
            Assert.True(r.ExitCode == 0, r.ToString());
            return new FileInfo(r.StdoutText.Trim()).ResolveLinkTarget(true)?.FullName ?? r.StdoutText.Trim();
        }
        string[] children = [Tool("cc1"), Tool("as"), Tool("collect2"), Tool("ld")];
        s.Register(children);
        File.WriteAllText(Path.Combine(s.WorkDir, "hello.c"), "#include <stdio.h>\nint main(void) { puts(\"hello\"); return 3; }\n");
        var compile = (string output) => s.Spec("/usr/bin/gcc", "-O2", "-o", output, "hello.c");
        var normal = s.RunNormal(compile("normal"));
        var resident = s.RunResident(compile("resident"));
        Assert.True(normal.ExitCode == 0 && resident.ExitCode == 0, $"{normal}\n{resident}");
        var debug = DebugLines.Split(resident.Stderr);
        Assert.True(debug.Lines.Count == 4 && debug.Restored.Count() == 4, $"cc1, as, collect2 and ld each restored:\n{resident}");
        Assert.Equal(File.ReadAllBytes(Path.Combine(s.WorkDir, "normal")), File.ReadAllBytes(Path.Combine(s.WorkDir, "resident")));
    }
}
