using Xunit;
using Resident.Tests.Integration.Harness;

namespace Resident.Tests.Integration;

/// <summary>
/// When anything an image depends on changed, the hook must not restore: the program starts
/// normally (identical output, the changed library's new behaviour included) and, with
/// RESIDENT_DEBUG=1, says `resident: fallback PATH: REASON`. Each test works on a private copy
/// of the fixtures, registered from there, so the copy can be modified. (A damaged or untrusted
/// image itself: tests/Resident.Tests/Faults.)
/// </summary>
public sealed class FallbackTests(Fixtures fx) : IClassFixture<Fixtures>
{
    sealed class Copy : IDisposable
    {
        public ResidentSession S { get; } = new();
        public string Dir => Path.Combine(S.Root, "fixtures");
        public string Libs => Path.Combine(Dir, "libs");
        public string Alpha => Path.Combine(Dir, "libalpha.so");
        public RunSpec Spec => S.Spec(Libs, "arg");
        public void Dispose() => S.Dispose();
    }

    /// <summary>A private fixture copy with `libs` registered and verified to be restored.</summary>
    Copy RegisteredCopy()
    {
        var c = new Copy();
        try
        {
            fx.CopyTo(c.Dir);
            c.S.Register(c.Libs);
            c.S.AssertSameResident(c.Spec, c.Libs);
            AssertListed(c, "fresh");
            return c;
        }
        catch
        {
            c.Dispose(); // the caller's using never sees it
            throw;
        }
    }

    /// <summary>
    /// `resident list` shows the session's only program as STATE (fresh, or stale with the reason).
    /// The table may wrap a long path over lines, so the row is not looked up by path.
    /// </summary>
    static void AssertListed(Copy c, string state)
    {
        var list = c.S.Cli("list");
        Assert.True(list.ExitCode == 0, "resident list failed:\n" + list);
        var words = list.StdoutText.Split((char[])[' ', '\n', '\t', '(', ')', ':', ','], StringSplitOptions.RemoveEmptyEntries);
        var other = state == "fresh" ? "stale" : "fresh";
        Assert.True(words.Contains(state) && !words.Contains(other), $"resident list does not show the program as {state}:\n{list}");
    }

    [Fact]
    public void LibraryRewrittenInPlace_NewMtime()
    {
        using var c = RegisteredCopy();
        var inode = Inode(c.Alpha);
        var bytes = File.ReadAllBytes(c.Alpha);
        using (var f = new FileStream(c.Alpha, FileMode.Open, FileAccess.Write))
            f.Write(bytes); // same inode, same size, same content: only the mtime differs
        File.SetLastWriteTimeUtc(c.Alpha, DateTime.UtcNow.AddSeconds(2));
        Assert.Equal(inode, Inode(c.Alpha));
        c.S.AssertFallsBack(c.Spec, c.Libs);
        AssertListed(c, "stale");
    }

    [Fact]
    public void LibraryRewrittenInPlace_OldMtimePutBack()
    {
        // cat new > lib.so; touch -d "$old" lib.so: same inode, same size, same mtime, new code.
        // Only the change time (ctime), which no user can set, tells.
        using var c = RegisteredCopy();
        var inode = Inode(c.Alpha);
        var mtime = File.GetLastWriteTimeUtc(c.Alpha);
        var v2 = File.ReadAllBytes(Path.Combine(c.Dir, "libalpha_v2.so"));
        Assert.Equal(new FileInfo(c.Alpha).Length, v2.Length);   // the fixture's two versions are the same size
        using (var f = new FileStream(c.Alpha, FileMode.Open, FileAccess.Write))
            f.Write(v2);
        File.SetLastWriteTimeUtc(c.Alpha, mtime);
        Assert.Equal(inode, Inode(c.Alpha));
        Assert.Equal(mtime, File.GetLastWriteTimeUtc(c.Alpha));
        c.S.AssertFallsBack(c.Spec, c.Libs, "library changed");
        Assert.Contains("alpha: constructor (version 2)", c.S.RunNormal(c.Spec).StdoutText);
        AssertListed(c, "stale");
    }

    [Fact]
    public void LibraryReplaced_NewInodeAndNewCode()
    {
        using var c = RegisteredCopy();
        var next = c.Alpha + ".new";
        File.Copy(Path.Combine(c.Dir, "libalpha_v2.so"), next);
        File.Move(next, c.Alpha, overwrite: true); // rename: a new inode, as package managers do
        var normal = c.S.RunNormal(c.Spec);
        Assert.Contains("alpha: constructor (version 2)", normal.StdoutText);
        c.S.AssertFallsBack(c.Spec, c.Libs);
        AssertListed(c, "stale");
    }

    [Fact]
    public void LibrarySymlinkRepointed_AsPackageUpgradesDo()
    {
        // libalpha.so -> libalpha.so.1.0 at capture; the "upgrade" installs libalpha.so.2.0 and
        // repoints the link, leaving the old file in place. ld.so opens the link's name, so a
        // normal start gets version 2; the image maps the old target and must not be used.
        using var c = new Copy();
        fx.CopyTo(c.Dir);
        File.Move(c.Alpha, c.Alpha + ".1.0");
        File.CreateSymbolicLink(c.Alpha, "libalpha.so.1.0");
        c.S.Register(c.Libs);
        c.S.AssertSameResident(c.Spec, c.Libs);
        File.Copy(Path.Combine(c.Dir, "libalpha_v2.so"), c.Alpha + ".2.0");
        File.CreateSymbolicLink(c.Alpha + ".tmp", "libalpha.so.2.0");
        File.Move(c.Alpha + ".tmp", c.Alpha, overwrite: true); // ln -sfn: a new link by rename
        Assert.Contains("alpha: constructor (version 2)", c.S.RunNormal(c.Spec).StdoutText);
        c.S.AssertFallsBack(c.Spec, c.Libs);
    }

    [Fact]
    public void ExecutableTouched()
    {
        using var c = RegisteredCopy();
        File.SetLastWriteTimeUtc(c.Libs, DateTime.UtcNow.AddSeconds(2));
        c.S.AssertFallsBack(c.Spec, c.Libs);
    }

    [Fact]
    public void LdLibraryPathDiffersFromCapture()
    {
        using var c = RegisteredCopy();
        var empty = Directory.CreateDirectory(Path.Combine(c.S.Root, "empty-libdir")).FullName;
        var spec = c.S.Spec(c.Libs, ["arg"], new Dictionary<string, string> { ["LD_LIBRARY_PATH"] = empty });
        c.S.AssertFallsBack(spec, c.Libs);
    }

    [Fact]
    public void NoImage_NoLineWithDebug1()
    {
        using var s = new ResidentSession();
        var spec = s.Spec(fx.Path("libs"), "arg");
        var normal = s.RunNormal(spec);
        var resident = s.RunResident(spec);
        var debug = ResidentSession.AssertSameOutput(normal, resident);
        Assert.True(debug.Lines.Count == 0, "a program without an image printed a debug line at RESIDENT_DEBUG=1:\n" + resident);
    }

    [Fact]
    public void NoImage_OneLineWithDebug2()
    {
        using var s = new ResidentSession();
        var libs = fx.Path("libs");
        var spec = s.Spec(libs, "arg");
        var normal = s.RunNormal(spec);
        var resident = s.RunResident(spec with { Env = new Dictionary<string, string>(spec.Env) { ["RESIDENT_DEBUG"] = "2" } });
        var debug = ResidentSession.AssertSameOutput(normal, resident);
        Assert.True(debug.Lines.Count == 1 && debug.Lines[0].Contains(libs), "RESIDENT_DEBUG=2 must say why a program without an image was not restored:\n" + resident);
    }

    [Fact]
    public void Removed_NoLongerRestored()
    {
        using var c = RegisteredCopy();
        var r = c.S.Cli("remove", c.Libs);
        Assert.True(r.ExitCode == 0, "resident remove failed:\n" + r);
        Assert.Empty(c.S.ImageFiles());
        var resident = c.S.RunResident(c.Spec);
        var debug = ResidentSession.AssertSameOutput(c.S.RunNormal(c.Spec), resident);
        Assert.True(debug.Lines.Count == 0, "a removed program printed a debug line:\n" + resident);
    }

    [Fact]
    public void WithoutDebug_NothingIsPrinted()
    {
        using var c = RegisteredCopy();
        var normal = c.S.RunNormal(c.Spec);
        var debug0 = c.Spec with { Env = new Dictionary<string, string>(c.Spec.Env) { ["RESIDENT_DEBUG"] = "0" } };
        Assert.Equal(normal.Stderr, c.S.RunResident(c.Spec, debug: false).Stderr); // restored
        Assert.Equal(normal.Stderr, c.S.RunResident(debug0).Stderr);
        File.SetLastWriteTimeUtc(c.Alpha, DateTime.UtcNow.AddSeconds(2));
        Assert.Equal(normal.Stderr, c.S.RunResident(c.Spec, debug: false).Stderr); // fallback
        Assert.Equal(normal.Stderr, c.S.RunResident(debug0).Stderr);
    }

    static ulong Inode(string path)
    {
        var r = ProcessRunner.Run(new RunSpec("/usr/bin/stat", ["-c", "%i", path]) { Env = new Dictionary<string, string> { ["PATH"] = "/usr/bin" } });
        return ulong.Parse(r.StdoutText.Trim());
    }
}
