using System.Runtime.Versioning;
using Xunit;
using Resident.Format;
using Resident.HookContract;
using Resident.Tests.Integration.Harness;

namespace Resident.Tests.HookContract;

/// <summary>
/// The environment rule exists twice — native/restore.c (env_tracked, check_env) in the hook,
/// HookContract/EnvRule.cs in C# (which variables the capture writes into the image). For each
/// variable: captured without it and run with it, captured with it and run without, captured
/// and run with it — the real hook (RESIDENT_PROBE=1) falls back with "env differs: NAME"
/// exactly where EnvRule.Tracked says the variable counts, and the image holds it exactly then.
/// </summary>
public sealed class EnvRuleTests(Fixtures fx) : IClassFixture<Fixtures>
{
    public static TheoryData<string> Entries => ["LD_LIBRARY_PATH=/nonexistent", "LD_SOMETHING=1", "LD_=1", "MALLOC_ARENA_MAX=2",
        "MALLOC_SOMETHING=1", "GLIBC_TUNABLES=glibc.malloc.arena_max=2", "LD_BIND_NOW=1", "LC_ALL=C", "XLD_FOO=1",
        "MALLOCX=1", "GLIBC_TUNABLESX=1", "ld_lower=1"];

    [Theory]
    [MemberData(nameof(Entries))]
    public void HookAndCSharpAgree(string entry)
    {
        string name = EnvRule.EnvName(entry);
        bool tracked = EnvRule.Tracked(entry);
        var with = new Dictionary<string, string> { [name] = entry[(name.Length + 1)..] };
        string fallback = $"would fall back: env differs: {name}";

        Assert.Equal(tracked ? fallback : "would restore", Probe(captureEnv: null, runEnv: with, out var imageEnv));
        Assert.DoesNotContain(imageEnv, e => e.StartsWith(name + "=", StringComparison.Ordinal));

        Assert.Equal(tracked ? fallback : "would restore", Probe(captureEnv: with, runEnv: null, out imageEnv));
        Assert.Equal(tracked, imageEnv.Contains(entry));

        Assert.Equal("would restore", Probe(captureEnv: with, runEnv: with, out _));
    }

    /// <summary>
    /// Registers `args` with CAPTUREENV added to the session's environment and asks the hook about
    /// a run with RUNENV; IMAGEENV is the image's env table.
    /// </summary>
    string Probe(Dictionary<string, string>? captureEnv, Dictionary<string, string>? runEnv, out IReadOnlyList<string> imageEnv)
    {
        using var s = new ResidentSession();
        var args = fx.Path("args");
        s.Register(captureEnv, args);
        imageEnv = ImageReader.Read(Assert.Single(s.ImageFiles())).Env;
        var env = new Dictionary<string, string>(runEnv ?? []) { ["RESIDENT_PROBE"] = "1" };
        var probe = s.RunResident(s.Spec(args, [], env), debug: false);
        string prefix = $"resident: probe {args}: ";
        Assert.True(probe.StderrText.StartsWith(prefix), probe.ToString());
        string said = probe.StderrText.Trim()[prefix.Length..];
        return said;
    }
}
