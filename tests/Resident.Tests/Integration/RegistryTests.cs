using Xunit;
using Resident.Tests.Integration.Harness;

namespace Resident.Tests.Integration;

/// <summary>
/// Where images live and how they are replaced, seen from outside: the CLI and the hook must
/// agree on the registry directory ($RESIDENT_DIR, else $XDG_CACHE_HOME/resident, else
/// ~/.cache/resident), and re-registering must not disturb a process running from the old image.
/// </summary>
public sealed class RegistryTests(Fixtures fx) : IClassFixture<Fixtures>
{
    [Theory]
    [InlineData("XDG_CACHE_HOME")]
    [InlineData("HOME")]
    public void DefaultRegistryDirectory_SameForCliAndHook(string rule)
    {
        using var s = new ResidentSession();
        var args = fx.Path("args");
        var env = s.BaseEnv();
        env.Remove("RESIDENT_DIR");
        string expectedDir;
        if (rule == "XDG_CACHE_HOME")
        {
            env["XDG_CACHE_HOME"] = Path.Combine(s.Root, "xdg-cache");
            expectedDir = Path.Combine(s.Root, "xdg-cache", "resident");
        }
        else
            expectedDir = Path.Combine(s.Home, ".cache", "resident");

        Product.RequireBuilt();
        var add = ProcessRunner.Run(new RunSpec(Product.Cli, ["add", "--no-measure", args]) { Env = env, WorkingDirectory = s.WorkDir });
        Assert.True(add.ExitCode == 0, add.ToString());
        Assert.True(Directory.Exists(expectedDir) && Directory.EnumerateFiles(expectedDir, "*.img").Any(),
            $"no image in {expectedDir} (rule {rule}):\n{add}");

        var spec = new RunSpec(args, ["3"]) { Env = env, WorkingDirectory = s.WorkDir };
        var normal = s.RunNormal(spec);
        var resident = s.RunResident(spec);
        ResidentSession.AssertRestored(ResidentSession.AssertSameOutput(normal, resident), args, 1, resident);
    }

    [Fact]
    public void AddByNameAndByRelativePath()
    {
        using var s = new ResidentSession();
        var args = Path.Combine(s.WorkDir, "args");
        File.Copy(fx.Path("args"), args);
        var byName = s.Cli("add", "perl"); // found on PATH
        var relative = s.Cli("add", "./args"); // relative to the working directory
        Assert.True(byName.ExitCode == 0 && relative.ExitCode == 0, byName + "\n" + relative);
        foreach (var (program, spec) in new[] { ("/usr/bin/perl", s.Spec("/usr/bin/perl", "-e", "print 1")), (args, s.Spec(args, "2")) })
        {
            var resident = s.RunResident(spec);
            ResidentSession.AssertRestored(ResidentSession.AssertSameOutput(s.RunNormal(spec), resident), program, 1, resident);
        }
    }

    [Fact]
    public void ConcurrentAdds_DistinctIdsAndAllRestored()
    {
        using var s = new ResidentSession();
        string[] names = ["args", "auxv", "tls", "libs", "threads", "signals"];
        var adds = names.AsParallel().WithDegreeOfParallelism(names.Length).Select(n => s.Cli("add", fx.Path(n))).ToList();
        foreach (var r in adds)
            Assert.True(r.ExitCode == 0, r.ToString());
        var ids = adds.Select(r => System.Text.RegularExpressions.Regex.Match(r.StdoutText, @"\(id (\d+)\)").Groups[1].Value).ToList();
        Assert.True(ids.All(i => i.Length > 0) && ids.Distinct().Count() == names.Length,
            "concurrent adds must get distinct ids:\n" + string.Join("\n", adds.Select(a => a.StdoutText.Trim())));
        Assert.Equal(names.Length, s.ImageFiles().Count());
        foreach (var n in names)
        {
            var spec = s.Spec(fx.Path(n));
            var resident = s.RunResident(spec);
            ResidentSession.AssertRestored(ResidentSession.AssertSameOutput(s.RunNormal(spec), resident), fx.Path(n), 1, resident);
        }
    }

    [Fact]
    public async Task ReRegisteringWhileAProgramRunsFromTheOldImage()
    {
        // the new image must replace the old one by rename: the running process keeps mapping
        // the old file, pages it has not touched yet included
        using var s = new ResidentSession();
        const string perl = "/usr/bin/perl";
        s.Register(perl);
        var spec = s.Spec(perl, "-e", "sleep 2; require POSIX; require Data::Dumper; print POSIX::floor(3.7), Data::Dumper::Dumper([1]), qq(\\n)");
        var normal = s.RunNormal(spec);
        var running = Task.Run(() => s.RunResident(spec));
        Thread.Sleep(500);
        var again = s.Cli("add", perl);
        Assert.True(again.ExitCode == 0, "re-registering failed:\n" + again);
        var resident = await running;
        ResidentSession.AssertRestored(ResidentSession.AssertSameOutput(normal, resident), perl, 1, resident);
        s.AssertSameResident(spec with { Args = ["-e", "print qq(new image\\n)"] }, perl);
    }

    [Fact]
    public void SystemRegistry_ConsultedWhenTheUsersHasNoImage_AndOnlyIfTrusted()
    {
        using var s = new ResidentSession();
        var args = fx.Path("args");
        var system = Path.Combine(s.Root, "system-registry");
        var add = s.Cli(["add", args], new Dictionary<string, string> { ["RESIDENT_DIR"] = system });
        Assert.True(add.ExitCode == 0, add.ToString());
        Assert.Empty(s.ImageFiles()); // the user's registry stays empty

        var spec = s.Spec(args, ["1", "two"], new Dictionary<string, string> { ["RESIDENT_SYSTEM_DIR"] = system });
        var normal = s.RunNormal(spec);
        var resident = s.RunResident(spec);
        ResidentSession.AssertRestored(ResidentSession.AssertSameOutput(normal, resident), args, 1, resident);

        File.SetUnixFileMode(system, File.GetUnixFileMode(system) | UnixFileMode.OtherWrite);
        var untrusted = s.RunResident(spec);
        var debug = ResidentSession.AssertSameOutput(normal, untrusted);
        ResidentSession.AssertFallback(debug, args, untrusted);
        Assert.Contains("registry not trusted", debug.Fallbacks.Single());
    }

    [Fact]
    public void Probe_SaysWhatWouldHappen_AndRunsNothing()
    {
        // RESIDENT_PROBE=1 is what `resident doctor PROG` asks the hook: one line, exit 0, and
        // not one instruction of the program (the fixture would print its arguments)
        using var s = new ResidentSession();
        var args = fx.Path("args");
        var probe = new Dictionary<string, string> { ["RESIDENT_PROBE"] = "1" };
        string Probe(IDictionary<string, string>? more = null)
        {
            var env = new Dictionary<string, string>(probe);
            foreach (var (k, v) in more ?? new Dictionary<string, string>())
                env[k] = v;
            var r = s.RunResident(s.Spec(args, ["printed-only-if-it-ran"], env), debug: false);
            Assert.True(r.ExitCode == 0 && r.Stdout.Length == 0, "a probe must exit 0 without running the program:\n" + r);
            return r.StderrText;
        }

        Assert.Equal($"resident: probe {args}: no image\n", Probe());
        s.Register(args);
        Assert.Equal($"resident: probe {args}: would restore\n", Probe());
        Assert.Equal($"resident: probe {args}: would fall back: env differs: LD_BIND_NOT\n",
            Probe(new Dictionary<string, string> { ["LD_BIND_NOT"] = "1" }));
    }
}
