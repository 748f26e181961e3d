using System.Runtime.Versioning;
using Xunit;
using Resident.Tests.Fidelity;
using Resident.Tests.Integration.Harness;

namespace Resident.Tests.Portability;

/// <summary>
/// What the capture and the hook use that an older kernel than this machine's lacks, taken away
/// by a seccomp filter (tests/fixtures/deny) that answers as that kernel would: the capture
/// (resident add) and every run of the fidelity probe happen under the filter, declared to answer
/// with errors (RESIDENT_SECCOMP=errno), and each exec must still be restored with a normal run's
/// output — or start normally with the reason.
/// </summary>
public sealed class OlderKernelTests(Fixtures fx) : IClassFixture<Fixtures>
{
    [Theory]
    [InlineData("157:0=0x41555856/EINVAL", "PR_GET_AUXV (Linux 6.4): the auxv from /proc/self/auxv")]
    [InlineData("28:2=22/EINVAL,28:2=23/EINVAL", "MADV_POPULATE_READ/WRITE (5.14): pages fault in later")]
    [InlineData("436/ENOSYS", "close_range (5.9): fds closed one by one")]
    [InlineData("9:3&0x100000/EINVAL", "MAP_FIXED_NOREPLACE refused: MAP_FIXED once all else is unmapped")]
    [InlineData("101:0=0x420f/EIO", "PTRACE_GET_RSEQ_CONFIGURATION (5.13): the capture's syscall log alone")]
    [InlineData("334/ENOSYS", "rseq (4.18): no area registered at capture nor now, the image has none",
        "rseq registered: no", "rseq cpu_id valid: no")]
    public void Restored(string rules, string what, params string[] probeSaysNo)
    {
        using var s = new ResidentSession();
        var probe = fx.Path("probe");
        var add = s.Run(s.Spec(fx.Path("deny"), rules, s.CliPath, "add", "--no-measure", probe));
        Assert.True(add.ExitCode == 0, $"{what}: resident add under the filter failed:\n{add}");
        var state = Path.Combine(s.Root, "probe-state");
        var errnoFilter = new Dictionary<string, string> { ["RESIDENT_SECCOMP"] = "errno" };
        ProbeSeries.AssertSame(s, s.Spec(fx.Path("deny"), [rules, probe, "an argument", "", state], errnoFilter), state, probe, probeSaysNo);
    }

    [Fact]
    public void RseqRefusedNowNotAtCapture_StartsNormallyWithTheReason()
    {
        using var s = new ResidentSession();
        var args = fx.Path("args");
        s.Register(args);
        var spec = s.Spec(fx.Path("deny"), ["334/ENOSYS", args, "1"], new Dictionary<string, string> { ["RESIDENT_SECCOMP"] = "errno" });
        s.AssertFallsBack(spec, args, "rseq differs: registered at capture, not now");
    }
}
