using System.Globalization;
using Xunit;
using Resident.Format;
using Resident.HookContract;
using Resident.Tests.Fidelity;
using Resident.Tests.Integration.Harness;

namespace Resident.Tests.Integration;

/// <summary>
/// Layout variants (issue 13): `resident add --variants K` registers K images of one program in
/// K address layouts under one id; the hook restores the one this exec's AT_RANDOM picks.
/// </summary>
public sealed class VariantTests(Fixtures fx) : IClassFixture<Fixtures>
{
    const string Cat = "/usr/bin/cat";

    static ulong LibcBase(RunResult r) =>
        ulong.Parse(r.StdoutText.Split('\n').First(l => l.Contains("/libc.so.6") || l.Contains("/libc-2.")).Split('-')[0], NumberStyles.HexNumber);

    static string ImageOf(ResidentSession s, string program)
    {
        var r = s.Cli("show", "--json", program);
        Assert.True(r.ExitCode == 0, r.ToString());
        return System.Text.Json.JsonDocument.Parse(r.StdoutText).RootElement.GetProperty("registration").GetProperty("image").GetString()!;
    }

    /// <summary>The ld.so base of each variant file, in order.</summary>
    static List<ulong> LdsoBases(string image) =>
        Enumerable.Range(0, (int)Math.Max(ImageReader.Read(image).Header.VariantCount, 1))
            .Select(i => ImageReader.Read(RegistryPaths.VariantPath(image, (uint)i)).Header.LdsoBase).ToList();

    [Fact]
    public void SixteenVariants_256Runs_EveryOneUsed_SixteenLibcBases()
    {
        using var s = new ResidentSession();
        var add = s.Cli("add", "--variants", "16", Cat);
        Assert.True(add.ExitCode == 0 && add.StdoutText.Contains("in 16 layouts (4 bits)"), add.ToString());
        string image = ImageOf(s, Cat);
        var ldso = LdsoBases(image);
        Assert.Equal(16, ldso.Distinct().Count());
        Assert.True(RegistryPaths.VariantFiles(image).Count() == 15, string.Join(", ", Directory.GetFiles(s.RegistryDir)));
        var list = s.Cli("list", "--json");
        Assert.Contains("\"variants\": 16", list.StdoutText);
        Assert.Single(System.Text.Json.JsonDocument.Parse(list.StdoutText).RootElement.EnumerateArray());

        // the libc base of each variant, through RESIDENT_VARIANT
        var spec = s.Spec(Cat, "/proc/self/maps");
        var byVariant = Enumerable.Range(0, 16).Select(i =>
        {
            var r = s.RunResident(spec with { Env = new Dictionary<string, string>(spec.Env) { ["RESIDENT_VARIANT"] = i.ToString() } });
            ResidentSession.AssertRestored(DebugLines.Split(r.Stderr), Cat, 1, r);
            return LibcBase(r);
        }).ToList();
        Assert.Equal(16, byVariant.Distinct().Count());

        var seen = new int[16];
        for (int run = 0; run < 256; run++)
        {
            var r = s.RunResident(spec);
            ResidentSession.AssertRestored(DebugLines.Split(r.Stderr), Cat, 1, r);
            int v = byVariant.IndexOf(LibcBase(r));
            Assert.True(v >= 0, $"run {run}: libc at a base no variant has:\n{r}");
            seen[v]++;
        }
        Assert.True(seen.All(n => n > 0), "variants never picked: " + string.Join(", ", seen.Select((n, i) => (n, i)).Where(x => x.n == 0).Select(x => x.i)));
    }

    /// <summary>The fidelity probe, restored from each of its variants, equals a normal start.</summary>
    [Fact]
    public void Probe_EveryVariant_IdenticalToNormal()
    {
        using var s = new ResidentSession();
        var probe = fx.Path("probe");
        var add = s.Cli("add", "--variants", "4", probe);
        Assert.True(add.ExitCode == 0, add.ToString());
        var state = Path.Combine(s.Root, "probe-state");
        for (int i = 0; i < 4; i++)
            ProbeSeries.AssertSame(s, s.Spec(probe, ["an argument", "", state], new Dictionary<string, string> { ["RESIDENT_VARIANT"] = i.ToString() }),
                state, probe);
    }

    /// <summary>resident.conf's "variants K": sync registers that many layouts, and again when the number changes.</summary>
    [Fact]
    public void Sync_TakesTheNumberOfLayoutsFromTheConf()
    {
        using var s = new ResidentSession();
        string conf = Path.Combine(s.Root, "resident.conf");
        foreach (uint k in new uint[] { 2, 3, 1 })
        {
            File.WriteAllText(conf, $"{Cat} variants {k}\n");
            var r = s.Cli("sync", "--conf", conf);
            Assert.True(r.ExitCode == 0, r.ToString());
            string image = ImageOf(s, Cat);
            Assert.Equal(k, Math.Max(ImageReader.Read(image).Header.VariantCount, 1));
            Assert.Equal((int)k - 1, RegistryPaths.VariantFiles(image).Count());
        }
    }

    /// <summary>
    /// A missing variant file leaves variant 0 (a refresh writing the set); a variant of another
    /// set is refused; --rerandomize replaces every layout and keeps the count; remove takes all.
    /// </summary>
    [Fact]
    public void MissingForeignRerandomizedRemoved()
    {
        using var s = new ResidentSession();
        Assert.True(s.Cli("add", "--variants", "3", Cat).ExitCode == 0);
        Assert.True(s.Cli("add", "--variants", "2", fx.Path("args")).ExitCode == 0);
        string cat = ImageOf(s, Cat), args = ImageOf(s, fx.Path("args"));
        var spec = s.Spec(Cat, "/proc/self/maps");
        RunResult Pick(int i) => s.RunResident(spec with { Env = new Dictionary<string, string>(spec.Env) { ["RESIDENT_VARIANT"] = i.ToString() } });
        ulong first = LibcBase(Pick(0));

        File.Delete(RegistryPaths.VariantPath(cat, 2));
        var missing = Pick(2);
        ResidentSession.AssertRestored(DebugLines.Split(missing.Stderr), Cat, 1, missing);
        Assert.Equal(first, LibcBase(missing));

        File.Copy(RegistryPaths.VariantPath(args, 1), RegistryPaths.VariantPath(cat, 1), overwrite: true);
        var foreign = Pick(1);
        var debug = DebugLines.Split(foreign.Stderr);
        ResidentSession.AssertFallback(debug, Cat, foreign);
        Assert.Contains("not a variant of the same set", debug.Lines[0]);

        var before = LdsoBases(args);
        var refresh = s.Cli("refresh", "--rerandomize", fx.Path("args"));
        Assert.True(refresh.ExitCode == 0 && refresh.StdoutText.Contains("--rerandomize"), refresh.ToString());
        var after = LdsoBases(args);
        Assert.Equal(2, after.Distinct().Count());
        Assert.Empty(before.Intersect(after));
        s.AssertSameResident(s.Spec(fx.Path("args"), "x"), fx.Path("args"));

        Assert.True(s.Cli("remove", Cat).ExitCode == 0);
        Assert.False(File.Exists(cat) || RegistryPaths.VariantFiles(cat).Any(), string.Join(", ", Directory.GetFiles(s.RegistryDir)));
        var bad = s.Cli("add", "--variants", "0", Cat);
        Assert.True(bad.ExitCode != 0 && bad.StderrText.Contains("--variants: from 1 to 256"), bad.ToString());
    }
}
