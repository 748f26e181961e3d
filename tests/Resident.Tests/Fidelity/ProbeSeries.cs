using System.Runtime.Versioning;
using Xunit;
using Resident.Tests.Integration.Harness;

namespace Resident.Tests.Fidelity;

/// <summary>
/// The probe (tests/fixtures/probe.c with libprobe and libprobecxx) prints every observable of a
/// start: identity, limits, auxv, canary and pointer guard, TLS, threads and rseq, fork/exec/abort,
/// signals, exceptions across libraries, dlopen, locale, iconv, NSS, clocks, malloc, maps. Its
/// output of a resident run must equal a normal run's byte for byte, with ONE documented
/// exception: the address layout is frozen per image (README "Security"), so from the second
/// resident run on the probe sees the executable, libc, ld.so and the vdso where the previous run
/// had them. Everything else it compares with the previous run (AT_RANDOM, canary, pointer guard,
/// stack, brk, new mmaps) must be fresh in every exec, resident or not.
/// </summary>
public static class ProbeSeries
{
    /// <summary>Lines of the probe that say "no" in resident runs after the first: frozen by design.</summary>
    static readonly string[] FrozenPerImage = ["executable address", "libc address", "ld.so address", "vdso address"];

    /// <summary>Lines that say "yes" in every run after the first, normal and resident.</summary>
    static readonly string[] FreshPerExec = ["AT_RANDOM[0..7]", "AT_RANDOM[8..15]", "canary", "pointer guard", "stack address", "brk", "new mmap address"];

    static string FreshLine(string what, string value) => $"fresh: {what} differs from the previous run: {value}";

    /// <summary>Runs SPEC RUNS times, starting without a previous run (STATE, a host path, removed first).</summary>
    static List<RunResult> Series(Func<RunSpec, RunResult> run, RunSpec spec, string state, int runs)
    {
        File.Delete(state);
        return Enumerable.Range(0, runs).Select(_ => run(spec)).ToList();
    }

    /// <summary>
    /// At the init level the brk heap is frozen too: the restore hands the kernel the heap the
    /// constructors grew, at the capture's address (docs/init-level.md).
    /// </summary>
    static readonly string[] FrozenPerInitImage = [.. FrozenPerImage, "brk"];

    /// <summary>Resident output with the frozen lines put back to what a normal run says, after checking them.</summary>
    static RunResult Unfreeze(RunResult resident, int index, bool initLevel)
    {
        var text = resident.StdoutText;
        foreach (var what in initLevel ? FrozenPerInitImage : FrozenPerImage)
        {
            var expected = FreshLine(what, index == 0 ? "(first run)" : "no");
            Assert.True(text.Contains(expected + "\n"), $"resident run {index + 1}: expected '{expected}' (one layout per image):\n{resident}");
            if (index > 0)
                text = text.Replace(expected + "\n", FreshLine(what, "yes") + "\n");
        }
        return resident with { Stdout = System.Text.Encoding.UTF8.GetBytes(text) };
    }

    static void AssertNormalProbe(RunResult normal, int index, string[] expectedNo)
    {
        Assert.True(normal.ExitCode == 0, normal.ToString());
        var failed = normal.StdoutText.Split('\n').Where(l => !l.StartsWith("fresh: ") && l.Contains(": no") && !expectedNo.Any(l.Contains)).ToList();
        Assert.True(failed.Count == 0, $"normal run {index + 1}: a relation the probe checks does not hold:\n{normal}"); // the fixture itself is right
        Assert.Contains("maps: anonymous executable mappings: 0, pages of libresident: 0", normal.StdoutText);
        if (index > 0)
            foreach (var what in FreshPerExec.Concat(AslrOn ? FrozenPerImage : []))
                Assert.True(normal.StdoutText.Contains(FreshLine(what, "yes") + "\n"), $"normal run {index + 1}: {what} is not fresh:\n{normal}");
    }

    static bool AslrOn => File.ReadAllText("/proc/sys/kernel/randomize_va_space").Trim() != "0";

    /// <summary>
    /// N normal runs, then N resident runs of SPEC (whose last argument is the probe's state file,
    /// at host path STATE); run i of each compared. PROBE is the probe as the hook names it.
    /// EXPECTEDNO: lines of a normal run allowed to say "no" (what the conditions of the run
    /// take away, e.g. rseq under a filter that refuses it).
    /// </summary>
    public static void AssertSame(ResidentSession s, RunSpec spec, string state, string probe, params string[] expectedNo) =>
        AssertSame(s, spec, state, probe, initLevel: false, expectedNo);

    /// <summary>As above, for a probe registered at the init level when <paramref name="initLevel"/>.</summary>
    public static void AssertSame(ResidentSession s, RunSpec spec, string state, string probe, bool initLevel, params string[] expectedNo)
    {
        int runs = LongMode.Runs(3, 20);
        var normals = Series(s.RunNormal, spec, state, runs);
        var residents = Series(r => s.RunResident(r), spec, state, runs);
        for (int i = 0; i < runs; i++)
        {
            AssertNormalProbe(normals[i], i, expectedNo);
            var debug = ResidentSession.AssertSameOutput(normals[i], Unfreeze(residents[i], i, initLevel));
            ResidentSession.AssertRestored(debug, probe, 2, residents[i]); // the probe and its exec'd child
        }
    }
}
