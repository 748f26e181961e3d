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
}
