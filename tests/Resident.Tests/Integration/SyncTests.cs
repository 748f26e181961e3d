using Xunit;
using Resident.Cli;
using Resident.Tests.Cli;
using Resident.Tests.Integration.Harness;

namespace Resident.Tests.Integration;

/// <summary>resident sync: the registry made to match a resident.conf with globs and comments.</summary>
public sealed class SyncTests : IDisposable
{
    readonly ResidentSession s = new();
    string Bin => Path.Combine(s.Root, "bin");
    string Conf => Path.Combine(s.Root, "resident.conf");

    public SyncTests()
    {
        Directory.CreateDirectory(Bin);
        foreach (var name in new[] { "tool1", "tool2" })
            CopyProgram("/usr/bin/true", name);
        File.WriteAllText(Path.Combine(Bin, "toolscript"), "#!/bin/sh\nexit 0\n");
        File.SetUnixFileMode(Path.Combine(Bin, "toolscript"), File.GetUnixFileMode("/usr/bin/true"));
    }

    public void Dispose() => s.Dispose();

    string CopyProgram(string from, string name)
    {
        string to = Path.Combine(Bin, name);
        File.Copy(from, to, overwrite: true);
        File.SetUnixFileMode(to, File.GetUnixFileMode(from));
        return to;
    }

    CliResult Sync(bool dryRun = false, bool prune = false, bool quiet = false) =>
        CliRun.Of((o, e) => SyncCommand.Run(new SyncSettings(Conf, s.RegistryDir, DryRun: dryRun, Prune: prune, Quiet: quiet), o, e));

    List<string> Registered() => CliRun.ListJson(s.RegistryDir).Select(i => i.Program!).Order(StringComparer.Ordinal).ToList();

    void WriteConf() => File.WriteAllText(Conf,
        "# programs I start all day\n" +
        "\n" +
        $"{Bin}/tool*     # both copies; the script is skipped\n" +
        "env   # by name, on PATH\n" +
        $"{Bin}/tool1\n");

    [Fact]
    public void AddsWhatIsMissing_ThenNothing_ThenRefreshesWhatIsStale()
    {
        WriteConf();
        var dry = Sync(dryRun: true);
        Assert.True(dry.Code == 0, dry.ToString());
        Assert.Equal([$"would register {Bin}/tool1", $"would register {Bin}/tool2", "would register /usr/bin/env"], dry.OutLines[..3]);
        Assert.Empty(Registered());

        var r = Sync();
        Assert.True(r.Code == 0, r.ToString());
        Assert.Equal(3, r.OutLines.Count(l => l.StartsWith("registered ")));
        Assert.EndsWith("3 registered, 0 refreshed, 0 removed, 0 fresh, 0 failed, 1 glob match(es) skipped (not registrable)", r.OutLines[^1]);
        Assert.Equal([$"{Bin}/tool1", $"{Bin}/tool2", "/usr/bin/env"], Registered());

        var again = Sync();
        Assert.True(again.Code == 0, again.ToString());
        Assert.Equal([$"{Conf}: 0 registered, 0 refreshed, 0 removed, 3 fresh, 0 failed, 1 glob match(es) skipped (not registrable)"], again.OutLines);

        File.SetLastWriteTimeUtc(Path.Combine(Bin, "tool2"), DateTime.UtcNow.AddSeconds(5));
        Assert.Contains($"would refresh {Bin}/tool2 (id 2): executable changed", Sync(dryRun: true).OutLines);
        var refreshed = Sync();
        Assert.True(refreshed.Code == 0, refreshed.ToString());
        Assert.StartsWith($"refreshed {Bin}/tool2 (id 2): executable changed; image ", refreshed.OutLines[0]);
        Assert.EndsWith(": 0 registered, 1 refreshed, 0 removed, 2 fresh, 0 failed, 1 glob match(es) skipped (not registrable)", refreshed.OutLines[^1]);
        var quiet = Sync(quiet: true);
        Assert.True(quiet.Code == 0 && quiet.Out == "" && quiet.Err == "", quiet.ToString());
    }

    [Fact]
    public void UnlistedRegistrationsAreReported_PruneRemovesThem()
    {
        WriteConf();
        Assert.Equal(0, CliRun.Of((o, e) => AddCommand.Run(new AddSettings(["/usr/bin/true"], s.RegistryDir), o, e)).Code);
        var r = Sync();
        Assert.Contains("not in " + Conf + ": /usr/bin/true (id 1) (kept; --prune removes it)", r.OutLines);
        Assert.Contains("/usr/bin/true", Registered());
        var pruned = Sync(prune: true);
        Assert.True(pruned.Code == 0, pruned.ToString());
        Assert.Contains($"removed /usr/bin/true (id 1): not in {Conf}", pruned.OutLines);
        Assert.DoesNotContain("/usr/bin/true", Registered());
    }

    [Fact]
    public void AnUnlistedImageOfAnOlderFormatIsARegistrationToo()
    {
        WriteConf();
        Assert.Equal(0, CliRun.Of((o, e) => AddCommand.Run(new AddSettings(["/usr/bin/true"], s.RegistryDir), o, e)).Code);
        ResidentSession.MakeOlderFormat(Assert.Single(s.ImageFiles()));
        Assert.Contains("not in " + Conf + ": /usr/bin/true (id 1) (kept; --prune removes it)", Sync().OutLines);
        Assert.Contains($"removed /usr/bin/true (id 1): not in {Conf}", Sync(prune: true).OutLines);
        Assert.DoesNotContain("/usr/bin/true", Registered());
    }

    [Fact]
    public void ALineNamingNothingRegistrableIsAnErrorWithItsLineNumber()
    {
        File.WriteAllText(Conf, $"# two bad lines\n{Bin}/missing\n{Bin}/toolscript\n{Bin}/tool1\n{Bin}/none*\n");
        var r = Sync();
        Assert.Equal(1, r.Code);
        Assert.Equal([$"resident: {Conf}:2: {Bin}/missing: no such file",
            $"resident: {Conf}:5: {Bin}/none* matches nothing",
            $"resident: cannot register {Bin}/toolscript: a script (#!), not an ELF program; register its interpreter instead"], r.ErrLines);
        Assert.Equal([$"{Bin}/tool1"], Registered());
    }

    [Fact]
    public void NoConfFileIsAnError()
    {
        File.Delete(Conf);
        var r = Sync();
        Assert.Equal(1, r.Code);
        Assert.StartsWith($"resident: no {Conf}", r.Err);
    }
}
