using System.Runtime.Versioning;
using Xunit;
using Resident.Tests.Integration.Harness;

namespace Resident.Tests.Fidelity;

/// <summary>The fidelity probe (<see cref="ProbeSeries"/>) normal against resident, on this machine.</summary>
public sealed class ProbeTests(Fixtures fx) : IClassFixture<Fixtures>
{
    [Fact]
    public void ProbeObservables_NormalEqualsResident()
    {
        using var s = new ResidentSession();
        var probe = fx.Path("probe");
        s.Register(probe);
        var state = Path.Combine(s.Root, "probe-state");
        ProbeSeries.AssertSame(s, s.Spec(probe, "an argument", "", state), state, probe);
    }

    [Fact]
    public void ProbeObservables_UnusualStart()
    {
        // another umask, descriptor limit, working directory, argv[0] and environment order than
        // the capture's, started through a shell
        using var s = new ResidentSession();
        var probe = fx.Path("probe");
        s.Register(probe);
        var state = Path.Combine(s.Root, "probe-state");
        var script = $"umask 077; ulimit -n 512; cd /; exec -a renamed '{probe}' \"$@\"";
        var spec = s.Spec("/bin/bash", ["-c", script, "bash", "x", state], new Dictionary<string, string> { ["AAA_FIRST"] = "1", ["ZZZ_LAST"] = "2" });
        ProbeSeries.AssertSame(s, spec, state, probe);
    }

    /// <summary>
    /// The probe at the init level (issue 11's fidelity): with constructors that read the pid,
    /// the time and a variable (PROBE_CTOR_READS, and they print), `add --level init` refuses
    /// with each reason on its one line and registers the link level, which restores it
    /// identically; with quiet constructors (PROBE_QUIET_CTORS) it is restored at main and
    /// every observable equals a normal start's, but for the layout, frozen per image, and at
    /// this level the heap the constructors grew.
    /// </summary>
    [Fact]
    public void ProbeAtInitLevel_RefusedWithItsReasons_OrIdentical()
    {
        var probe = fx.Path("probe");
        using (var s = new ResidentSession())
        {
            var reads = new Dictionary<string, string> { ["PROBE_CTOR_READS"] = "1", ["PROBE_MODE"] = "m" };
            var r = s.Cli(["add", "--level", "init", probe], reads);
            Assert.True(r.ExitCode == 0, r.ToString());
            string line = r.StdoutText.Trim();
            Assert.DoesNotContain("\n", line);
            foreach (var reason in new[] { "(init level refused: ", "reads its process id", "reads the time", "fd 1" })
                Assert.True(line.Contains(reason), $"expected '{reason}' in: {line}");
            var state = Path.Combine(s.Root, "probe-state");
            var spec = s.Spec(probe, ["an argument", "", state], reads);
            Assert.Contains("main: the constructor's pid is this process's: yes, its time is this start's: yes, PROBE_MODE m", s.RunNormal(spec).StdoutText);
            ProbeSeries.AssertSame(s, spec, state, probe);
        }
        using (var s = new ResidentSession())
        {
            var quiet = new Dictionary<string, string> { ["PROBE_QUIET_CTORS"] = "1" };
            var r = s.Cli(["add", "--level", "init", probe], quiet);
            Assert.True(r.ExitCode == 0 && r.StdoutText.Contains(" at the init level"), r.ToString());
            var state = Path.Combine(s.Root, "probe-state");
            ProbeSeries.AssertSame(s, s.Spec(probe, ["an argument", "", state], quiet), state, probe, initLevel: true);
        }
    }
}
