using Xunit;
using Resident.Cli;
using Resident.Format;
using Resident.Tests.Cli;
using Resident.Tests.Integration.Harness;

namespace Resident.Tests.Integration;

/// <summary>
/// resident refresh: a stale image is captured again under its id and is restored again
/// (the changed library's new behaviour included); images of programs that are gone are deleted.
/// </summary>
public sealed class RefreshTests(Fixtures fx) : IClassFixture<Fixtures>, IDisposable
{
    readonly ResidentSession s = new();
    string Copy => Path.Combine(s.Root, "fixtures");
    string Libs => Path.Combine(Copy, "libs");
    string Alpha => Path.Combine(Copy, "libalpha.so");

    public void Dispose() => s.Dispose();

    CliResult Refresh(bool dryRun = false, bool quiet = false, params string[] programs) =>
        CliRun.Of((o, e) => RefreshCommand.Run(new RefreshSettings(programs, s.RegistryDir, dryRun, quiet), o, e));

    CliResult Add(params string[] programs) => CliRun.Of((o, e) => AddCommand.Run(new AddSettings(programs, s.RegistryDir), o, e));

    List<ListItem> List() => CliRun.ListJson(s.RegistryDir);

    [Fact]
    public void LibraryReplaced_RefreshRecapturesUnderTheSameId_AndRestoresTheNewLibrary()
    {
        fx.CopyTo(Copy);
        Assert.Equal(0, Add("/usr/bin/true").Code);
        Assert.Equal(0, Add(Libs).Code);
        var spec = s.Spec(Libs, "arg");
        s.AssertSameResident(spec, Libs);

        var next = Alpha + ".new";
        File.Copy(Path.Combine(Copy, "libalpha_v2.so"), next);
        File.Move(next, Alpha, overwrite: true);   // a new inode, as package managers do
        var item = List().Single(i => i.Program == Libs);
        Assert.Equal(("stale", $"library changed: {Alpha}", 2UL), (item.State, item.Reason, item.Id!.Value));

        var image = List().Single(i => i.Program == Libs).Image;
        byte[] before = File.ReadAllBytes(image);
        var dry = Refresh(dryRun: true);
        Assert.True(dry.Code == 0, dry.ToString());
        Assert.Equal([$"would refresh {Libs} (id 2): library changed: {Alpha}", "1 would be refreshed, 0 removed, 1 fresh"], dry.OutLines);
        Assert.Equal(before, File.ReadAllBytes(image));

        var r = Refresh();
        Assert.True(r.Code == 0, r.ToString());
        Assert.StartsWith($"refreshed {Libs} (id 2): library changed: {Alpha}; image ", r.OutLines[0]);
        Assert.Equal("1 refreshed, 0 removed, 1 fresh, 0 failed", r.OutLines[1]);
        Assert.All(List(), i => Assert.Equal("fresh", i.State));
        Assert.Equal([1UL, 2UL], List().Select(i => i.Id!.Value));
        var normal = s.AssertSameResident(spec, Libs);
        Assert.Contains("alpha: constructor (version 2)", normal.StdoutText);
    }

    [Fact]
    public void ExecutableReplacedOrGone_NewImageNameSameId_OrRemoved()
    {
        string a = Path.Combine(s.Root, "a"), b = Path.Combine(s.Root, "b");
        File.Copy("/usr/bin/env", a);
        File.Copy("/usr/bin/true", b);
        File.SetUnixFileMode(a, File.GetUnixFileMode("/usr/bin/env"));
        File.SetUnixFileMode(b, File.GetUnixFileMode("/usr/bin/env"));
        Assert.Equal(0, Add(a, b).Code);
        string oldImage = List().Single(i => i.Program == a).Image;

        File.Copy("/usr/bin/env", a + ".new");
        File.SetUnixFileMode(a + ".new", File.GetUnixFileMode("/usr/bin/env"));
        File.Move(a + ".new", a, overwrite: true);
        File.Delete(b);

        var quiet = Refresh(quiet: true);
        Assert.True(quiet.Code == 0 && quiet.Out == "" && quiet.Err == "", quiet.ToString());
        var item = Assert.Single(List());
        Assert.Equal((a, 1UL, "fresh"), (item.Program, item.Id!.Value, item.State));
        Assert.NotEqual(oldImage, item.Image);
        Assert.False(File.Exists(oldImage));
        Assert.Single(s.ImageFiles());
    }

    [Fact]
    public void ExecutableReplaced_DebugAndProbeSaySo_AddKeepsOneRegistration()
    {
        fx.CopyTo(Copy);
        Assert.Equal(0, Add(Libs).Code);
        var spec = s.Spec(Libs, "arg");
        s.AssertSameResident(spec, Libs);
        File.Copy(Libs, Libs + ".new");
        File.SetUnixFileMode(Libs + ".new", File.GetUnixFileMode(Libs));
        File.Move(Libs + ".new", Libs, overwrite: true);   // a new inode: no image under its dev/ino

        // RESIDENT_DEBUG=1 used to print nothing here: the path is registered, the file is another
        const string reason = "executable changed: replaced since it was registered (resident refresh captures it again)";
        s.AssertFallsBack(spec, Libs, reason);
        var probe = s.RunResident(s.Spec(Libs, ["arg"], new Dictionary<string, string> { ["RESIDENT_PROBE"] = "1" }), debug: false);
        Assert.Equal($"resident: probe {Libs}: would fall back: {reason}", probe.StderrText.Trim());

        // add again: one registration of the path, under its id, not a second one beside the old
        Assert.Equal(0, Add(Libs).Code);
        var item = Assert.Single(List());
        Assert.Equal((Libs, 1UL, "fresh"), (item.Program, item.Id!.Value, item.State));
        Assert.Single(s.ImageFiles());
        s.AssertSameResident(spec, Libs);
        var refresh = Refresh();
        Assert.Equal(["0 refreshed, 0 removed, 1 fresh, 0 failed"], refresh.OutLines);
    }

    /// <summary>
    /// Every apt run rebuilds /etc/ld.so.cache, which made every image stale until refresh
    /// captured it again. When the program still loads the same files, refresh now rewrites the
    /// stamps instead. In a private mount namespace a copy of the cache is bound over
    /// /etc/ld.so.cache (no system file is written) and rewritten in place, as ldconfig would.
    /// </summary>
    [Fact]
    public void LdSoCacheRebuilt_RefreshRestampsAndTheImageIsUsedAgain()
    {
        var cache = Path.Combine(s.Root, "ld.so.cache");
        File.Copy("/etc/ld.so.cache", cache);
        var script = $"""
            set -e
            mount --bind '{cache}' /etc/ld.so.cache
            run='env LD_AUDIT={s.HookPath} RESIDENT_DEBUG=1 /usr/bin/true'
            '{s.CliPath}' add --no-measure /usr/bin/true >/dev/null
            $run
            cat '{cache}' > '{cache}.new' && cat '{cache}.new' > '{cache}'   # same bytes, new mtime and ctime
            $run
            '{s.CliPath}' refresh
            $run
            """;
        var run = s.RunNormal(s.Spec("/usr/bin/unshare", "-m", "--propagation", "private", "/bin/bash", "-c", script));
        Assert.True(run.ExitCode == 0, run.ToString());
        Assert.Equal(["resident: restored /usr/bin/true", "resident: fallback /usr/bin/true: file changed: /etc/ld.so.cache",
            "resident: restored /usr/bin/true"], DebugLines.Split(run.Stderr).Lines);
        Assert.Matches(@"^refreshed /usr/bin/true \(id 1\): file changed: /etc/ld.so.cache; it loads the same files: stamps rewritten in \d+ ms\n1 refreshed, 0 removed, 0 fresh, 0 failed\n$",
            run.StdoutText);
    }

    [Fact]
    public void LibraryAppearsEarlierOnTheSearchPath_RefreshCapturesAgain_NotRestamps()
    {
        fx.CopyTo(Copy);
        var twodirs = Path.Combine(Copy, "libs_twodirs");
        Assert.Equal(0, Add(twodirs).Code);
        Directory.CreateDirectory(Path.Combine(Copy, "override"));
        File.Copy(Path.Combine(Copy, "libalpha_v2.so"), Path.Combine(Copy, "override", "libalpha.so"));
        var r = Refresh();
        Assert.True(r.Code == 0 && r.OutLines[0].StartsWith($"refreshed {twodirs} (id 1): file appeared: ") && r.OutLines[0].Contains("; image "),
            r.ToString());
        var normal = s.AssertSameResident(s.Spec(twodirs, "arg"), twodirs);
        Assert.Contains("alpha: constructor (version 2)", normal.StdoutText);
    }

    [Fact]
    public void ImageOfAnOlderFormat_IsStaleUnderItsId_AndRefreshCapturesItAgain()
    {
        // what an upgrade of resident leaves behind: the hook ignores the image (version differs),
        // list names its program and id, refresh writes the current format under the same id
        fx.CopyTo(Copy);
        Assert.Equal(0, Add("/usr/bin/true", Libs).Code);
        string image = List().Single(i => i.Program == Libs).Image;
        ResidentSession.MakeOlderFormat(image);

        var spec = s.Spec(Libs, "arg");
        var normal = s.RunNormal(spec);
        var resident = s.RunResident(spec);
        var debug = ResidentSession.AssertSameOutput(normal, resident);
        Assert.Contains(debug.Lines, l => l.EndsWith(": image version differs"));
        string why = $"image format version {Resident.Format.ImageFormat.Version - 1}, this resident writes {Resident.Format.ImageFormat.Version}";
        var item = List().Single(i => i.Image == image);
        Assert.Equal(("stale", why, 2UL, Libs), (item.State, item.Reason, item.Id!.Value, item.Program));

        var r = Refresh();
        Assert.True(r.Code == 0, r.ToString());
        Assert.StartsWith($"refreshed {Libs} (id 2): {why}; image ", r.OutLines[0]);
        Assert.All(List(), i => Assert.Equal("fresh", i.State));
        Assert.Equal([1UL, 2UL], List().Select(i => i.Id!.Value));
        s.AssertSameResident(spec, Libs);
    }

    [Fact]
    public void NamedProgramsOnly_UnknownIsAnError()
    {
        string a = Path.Combine(s.Root, "a");
        File.Copy("/usr/bin/true", a);
        File.SetUnixFileMode(a, File.GetUnixFileMode("/usr/bin/true"));
        Assert.Equal(0, Add(a, "/usr/bin/env").Code);
        File.SetLastWriteTimeUtc(a, DateTime.UtcNow.AddSeconds(5));

        var r = Refresh(false, false, "/usr/bin/env", "/usr/bin/true");
        Assert.Equal(1, r.Code);
        Assert.Equal(["resident: /usr/bin/true is not registered"], r.ErrLines);
        Assert.Equal(["0 refreshed, 0 removed, 1 fresh, 0 failed"], r.OutLines);
        Assert.Equal("stale", List().Single(i => i.Program == a).State);
    }
}
