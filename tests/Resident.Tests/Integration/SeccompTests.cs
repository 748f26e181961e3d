using System.Runtime.Versioning;
using Xunit;
using Resident.Tests.Integration.Harness;

namespace Resident.Tests.Integration;

/// <summary>
/// seccomp filters (tests/fixtures/deny): a filter may kill the program for a call ld.so never
/// makes, so until an image is found the hook makes none, and under a filter it starts the
/// program normally — unless RESIDENT_SECCOMP=errno says the filter answers refused calls with
/// an error, when it asks for each call the takeover needs first.
/// </summary>
public sealed class SeccompTests(Fixtures fx) : IClassFixture<Fixtures>
{
    static readonly Dictionary<string, string> ErrnoFilter = new() { ["RESIDENT_SECCOMP"] = "errno" };

    [Theory]
    [InlineData("157/KILL", "prctl")]
    [InlineData("89/KILL", "readlink")]
    [InlineData("28/KILL", "madvise")]
    [InlineData("25/KILL", "mremap")]
    public void KillFilter_ProgramWithoutImage_RunsAsNormal(string rule, string call)
    {
        using var s = new ResidentSession();
        var spec = s.Spec(fx.Path("deny"), rule, fx.Path("args"), "1");
        var normal = s.RunNormal(spec);
        Assert.True(normal.ExitCode == 1 && normal.StdoutText.Contains("argv[1]=1"), $"normal run with {call} killing:\n{normal}");
        var resident = s.RunResident(spec with { Env = new Dictionary<string, string>(spec.Env) { ["RESIDENT_DEBUG"] = "2" } });
        var debug = ResidentSession.AssertSameOutput(normal, resident);
        // the deny wrapper and the program: both started by the hook, neither has an image
        Assert.True(debug.Lines.Count == 2 && debug.Lines.All(l => l.EndsWith(": no image")), resident.ToString());
    }

    [Theory]
    [InlineData("25/KILL", "mremap")]
    [InlineData("436/KILL", "close_range")]
    [InlineData("28/KILL", "madvise")]
    [InlineData("157/KILL", "prctl")]
    [InlineData("334", "rseq")]
    public void AnyFilter_WithImage_StartsNormallyWithTheReason(string rule, string call)
    {
        _ = call; // the rule's system call, for the test's name
        using var s = new ResidentSession();
        var args = fx.Path("args");
        s.Register(args);
        var spec = s.Spec(fx.Path("deny"), rule, args, "1");
        Assert.Equal(1, s.RunNormal(spec).ExitCode);
        s.AssertFallsBack(spec, args, "a seccomp filter is on");
    }

    [Theory]
    [InlineData("25", "mremap", false)]
    [InlineData("273", "set_robust_list", false)] // also ENOSYS under qemu-user
    [InlineData("334", "rseq", false)] // older container seccomp profiles
    [InlineData("302", "prlimit64", false)]
    [InlineData("218", "set_tid_address", true)]
    [InlineData("436", "close_range", true)]
    public void ErrnoFilter_Declared_RestoredOrFallsBackBeforeTakeover(string rule, string call, bool restores)
    {
        using var s = new ResidentSession();
        var args = fx.Path("args");
        s.Register(args);
        var spec = s.Spec(fx.Path("deny"), [rule, args, "1"], ErrnoFilter);
        var normal = s.RunNormal(spec);
        Assert.True(normal.ExitCode == 1 && normal.StdoutText.Contains("argv[1]=1"), $"normal run without {call}:\n{normal}");
        var resident = s.RunResident(spec);
        var debug = ResidentSession.AssertSameOutput(normal, resident);
        if (restores)
            ResidentSession.AssertRestored(debug, args, 1, resident);
        else
            ResidentSession.AssertFallback(debug, args, resident);
    }

    [Fact]
    public void WritableExecutableMemoryRefused_StillRestored()
    {
        // the takeover mapping is W+X to spare an mprotect; where the kernel refuses that
        // (SELinux without execmem, PaX) it must be made R+W, then R+X, and still restore
        using var s = new ResidentSession();
        var args = fx.Path("args");
        s.Register(args);
        var spec = s.Spec(fx.Path("deny"), ["wx", args, "1"], ErrnoFilter);
        var normal = s.RunNormal(spec);
        Assert.True(normal.ExitCode == 1 && normal.StdoutText.Contains("argv[1]=1"), $"normal run without W+X memory:\n{normal}");
        s.AssertSameResident(spec, args);
    }
}
