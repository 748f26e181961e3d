using Xunit;
using Resident.Tests.Integration.Harness;

namespace Resident.Tests.Integration;

/// <summary>
/// `resident exec PROG ARGS...` runs PROG with the hook and without shell-init; it replaces itself
/// (execve), so output, exit status and death by signal are exactly the program's own.
/// </summary>
public sealed class ExecVerbTests(Fixtures fx) : IClassFixture<Fixtures>
{
    static RunSpec ViaExec(ResidentSession s, RunSpec spec) => spec with
    {
        Program = Product.Cli,
        Args = ["exec", spec.Program, .. spec.Args],
        Env = new Dictionary<string, string>(spec.Env) { ["RESIDENT_DEBUG"] = "1" },
    };

    static void AssertExecSame(ResidentSession s, RunSpec spec, string program, int restores = 1)
    {
        var normal = s.RunNormal(spec);
        Product.RequireBuilt();
        var viaExec = ProcessRunner.Run(ViaExec(s, spec));
        var debug = ResidentSession.AssertSameOutput(normal, viaExec);
        ResidentSession.AssertRestored(debug, program, restores, viaExec);
    }

    [Fact]
    public void OutputAndExitStatus()
    {
        using var s = new ResidentSession();
        var args = fx.Path("args");
        s.Register(args);
        AssertExecSame(s, s.Spec(args, ["9", "two words"], stdin: "stdin line\n"u8.ToArray()), args);
    }

    [Fact]
    public void ProgramFoundOnPath()
    {
        using var s = new ResidentSession();
        s.Register("/usr/bin/perl");
        var normal = s.RunNormal(s.Spec("/usr/bin/perl", "-le", "print qq(by name); exit 4"));
        var viaExec = ProcessRunner.Run(s.Spec(Product.Cli, ["exec", "perl", "-le", "print qq(by name); exit 4"],
            new Dictionary<string, string> { ["RESIDENT_DEBUG"] = "1" }));
        var debug = ResidentSession.AssertSameOutput(normal, viaExec);
        ResidentSession.AssertRestored(debug, "/usr/bin/perl", 1, viaExec);
    }

    [Theory]
    [InlineData("abort", 134)]
    [InlineData("segv", 139)]
    [InlineData("kill 10", 138)]
    public void SignalPropagates(string mode, int status)
    {
        using var s = new ResidentSession();
        var signals = fx.Path("signals");
        s.Register(signals);
        var spec = s.Spec(signals, mode.Split(' '));
        Assert.Equal(status, s.RunNormal(spec).ExitCode);
        AssertExecSame(s, spec, signals);
        // and as a signal, not as an exit status (waitrun prints the raw wait status)
        var normal = s.RunNormal(s.Spec(fx.Path("waitrun"), [signals, .. mode.Split(' ')]));
        var viaExec = s.RunNormal(s.Spec(fx.Path("waitrun"), [Product.Cli, "exec", signals, .. mode.Split(' ')]));
        Assert.Contains("waitrun: killed by signal", normal.StdoutText);
        Assert.Equal(normal.StdoutText, viaExec.StdoutText);
    }

    [Fact]
    public void UnregisteredProgramRunsNormally()
    {
        using var s = new ResidentSession();
        var spec = s.Spec(fx.Path("args"), "5");
        var normal = s.RunNormal(spec);
        Product.RequireBuilt();
        var viaExec = ProcessRunner.Run(ViaExec(s, spec));
        var debug = ResidentSession.AssertSameOutput(normal, viaExec);
        Assert.Empty(debug.Lines);
    }
}
