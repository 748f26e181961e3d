using System.Text.Json;
using Xunit;
using Resident.Cli;
using Resident.Tests.Integration.Harness;

namespace Resident.Tests.Cli;

/// <summary>list and show, as text and as JSON parsed back with the same source-generated context.</summary>
public sealed class ListShowTests : IDisposable
{
    readonly string dir = TempDir.Create("resident-show-");
    string Registry => Path.Combine(dir, "registry");

    public void Dispose() => TempDir.Delete(dir);

    void Add(params string[] programs)
    {
        var r = CliRun.Of((o, e) => AddCommand.Run(new AddSettings(programs, Registry), o, e));
        Assert.True(r.Code == 0, r.ToString());
    }

    List<ListItem> ListJson() => CliRun.ListJson(Registry);

    [Fact]
    public void ListJson_FreshStaleAndCorrupt()
    {
        string copy = Path.Combine(dir, "mytrue");
        File.Copy("/usr/bin/true", copy);
        File.SetUnixFileMode(copy, File.GetUnixFileMode("/usr/bin/true"));
        Add("/usr/bin/env", copy);
        File.SetLastWriteTimeUtc(copy, DateTime.UtcNow.AddSeconds(5));
        File.WriteAllText(Path.Combine(Registry, "0-0.img"), "not an image");

        var items = ListJson();
        Assert.Equal(3, items.Count);
        var env = items.Single(i => i.Program == "/usr/bin/env");
        Assert.Equal(("fresh", null, 1UL, "link"), (env.State, env.Reason, env.Id!.Value, env.Level));
        Assert.Equal(new FileInfo(env.Image).Length, env.Size);
        Assert.InRange(env.Captured!.Value, DateTimeOffset.UtcNow.AddMinutes(-5), DateTimeOffset.UtcNow);
        Assert.Equal((null, null, null), (env.StartRatio, env.NormalMs, env.ResidentMs)); // added without timing
        var stale = items.Single(i => i.Program == copy);
        Assert.Equal(("stale", "executable changed", 2UL), (stale.State, stale.Reason, stale.Id!.Value));
        var corrupt = items.Single(i => i.State == "corrupt");
        Assert.Null(corrupt.Id);
        Assert.Contains("truncated", corrupt.Reason);

        var text = CliRun.Of((o, e) => ListCommand.Run(new ListSettings(Registry), o, e));
        Assert.Contains("stale: executable changed", text.Out);
        Assert.Contains("corrupt: ", text.Out);
    }

    [Fact]
    public void ListJsonOfAnEmptyRegistryIsAnEmptyArray() => Assert.Empty(ListJson());

    [Fact]
    public void ListMentionsTheSystemRegistrysImages()
    {
        string system = Path.Combine(dir, "system");
        Directory.CreateDirectory(system);
        var none = CliRun.Of((o, e) => ListCommand.Run(new ListSettings(Registry, SystemRegistryDir: system), o, e));
        Assert.Equal($"no programs registered in {Registry}\n", none.Out);
        File.WriteAllBytes(Path.Combine(system, "1-2.img"), []);
        var one = CliRun.Of((o, e) => ListCommand.Run(new ListSettings(Registry, SystemRegistryDir: system), o, e));
        Assert.Equal([$"no programs registered in {Registry}", $"and 1 image(s) in the system registry {system}: resident list --system"], one.OutLines);
    }

    [Fact]
    public void ShowJson_RegionsFilesPatchesMachine()
    {
        Add("/usr/bin/env");
        var r = CliRun.Of((o, e) => ShowCommand.Run(new ShowSettings("env", Registry, Json: true), o, e));
        Assert.True(r.Code == 0, r.ToString());
        var show = JsonSerializer.Deserialize(r.Out, ResidentJson.Default.ShowItem)!;

        Assert.Equal("/usr/bin/env", show.Registration.Program);
        Assert.Equal(("/usr/bin/env", "mapped", "unchanged"), (show.Files[0].Path, show.Files[0].Kind, show.Files[0].State));
        Assert.Contains(show.Files, f => f.Path.EndsWith("/libc.so.6") && f.Kind == "mapped");
        Assert.Contains(show.Files, f => f.Path == "/etc/ld.so.cache" && f.Kind == "stamp");
        Assert.All(show.Regions, g => Assert.Contains(g.Source, new[] { "file", "image", "zero" }));
        Assert.Equal(show.Regions.Where(g => g.Source == "image").Sum(g => (long)g.Size), show.BytesStored);
        Assert.Equal(show.Regions.Where(g => g.Source == "file").Sum(g => (long)g.Size), show.BytesMapped);
        Assert.True(show.BytesMapped > show.BytesStored, "libc's text is mapped from its file, not stored");
        Assert.All(show.Regions.Where(g => g.Source == "file"), g => Assert.NotNull(g.File));
        Assert.True(show.Patches.GetValueOrDefault("argv") >= 1, string.Join(",", show.Patches));
        Assert.Equal(File.ReadAllText("/proc/sys/kernel/osrelease").Trim(), show.Machine.KernelRelease);
        Assert.Equal("x86_64", show.Machine.Platform);
    }

    [Fact]
    public void ShowText_ByNameAndById_UnknownIsAnError()
    {
        Add("/usr/bin/true");
        var byName = CliRun.Of((o, e) => ShowCommand.Run(new ShowSettings("/usr/bin/true", Registry), o, e));
        var byId = CliRun.Of((o, e) => ShowCommand.Run(new ShowSettings("1", Registry), o, e));
        Assert.True(byName.Code == 0, byName.ToString());
        Assert.Equal(byName.Out, byId.Out);
        foreach (var part in new[] { "program     /usr/bin/true (id 1)", "state       fresh", "start       not timed", "stored in the image", "mapped from files",
                     "address", "source", "/etc/ld.so.cache", "unchanged" })
            Assert.Contains(part, byName.Out);

        var unknown = CliRun.Of((o, e) => ShowCommand.Run(new ShowSettings("42", Registry), o, e));
        Assert.Equal(1, unknown.Code);
        Assert.Equal($"resident: 42 is not registered in {Registry}\n", unknown.Err);
    }
}
