using Xunit;
using Resident.Config;
using Resident.Tests.Integration.Harness;

namespace Resident.Tests.Cli;

/// <summary>resident.conf: comments, ~/, and globs with the shell's rules.</summary>
public sealed class ResidentConfTests : IDisposable
{
    readonly string dir = TempDir.Create("resident-conf-");

    public void Dispose() => TempDir.Delete(dir);

    [Fact]
    public void CommentsAndBlankLinesAreDropped_HashInsideAWordIsKept()
    {
        var entries = ResidentConf.Parse("# header\n\n/usr/bin/perl   # the big one\n  python3.11\n/opt/a#b\n~/bin/tool\n#/usr/bin/off\n", "/home/u");
        Assert.Equal([(3, "/usr/bin/perl"), (4, "python3.11"), (5, "/opt/a#b"), (6, "/home/u/bin/tool")],
            entries.Select(e => (e.Number, e.Pattern)));
    }

    /// <summary>A line may end in its level: "init" (after a blank), "link", or nothing (link).</summary>
    [Fact]
    public void LevelOption_InitOrLink_AfterABlank()
    {
        var entries = ResidentConf.Parse("/usr/bin/clang-format init\nperl\tlink\n/usr/bin/git   init   # fast\n/opt/init\n~/bin/x init\n", "/home/u");
        Assert.Equal([("/usr/bin/clang-format", true), ("perl", false), ("/usr/bin/git", true), ("/opt/init", false), ("/home/u/bin/x", true)],
            entries.Select(e => (e.Pattern, e.Init)));
    }

    /// <summary>"variants K" after a blank, before or after the level; anything else is part of the pattern.</summary>
    [Fact]
    public void VariantsOption_AnyOrder_WithTheLevel()
    {
        var entries = ResidentConf.Parse("/usr/bin/perl variants 16\nclang-format init variants 4\ngit variants 2 init\n/opt/variants 3x\n/opt/v variants 0\n", null);
        Assert.Equal([("/usr/bin/perl", false, 16u), ("clang-format", true, 4u), ("git", true, 2u), ("/opt/variants 3x", false, 1u), ("/opt/v variants 0", false, 1u)],
            entries.Select(e => (e.Pattern, e.Init, e.Variants)));
    }

    [Fact]
    public void UserPathFollowsXdgThenHome()
    {
        Assert.Equal("/x/resident/resident.conf", ResidentConf.UserPath(n => n == "XDG_CONFIG_HOME" ? "/x" : "/h"));
        Assert.Equal("/h/.config/resident/resident.conf", ResidentConf.UserPath(n => n == "HOME" ? "/h" : null));
        Assert.Null(ResidentConf.UserPath(n => n == "HOME" ? "relative" : null));
    }

    [Fact]
    public void GlobsMatchExecutableFilesLikeTheShell()
    {
        foreach (var name in new[] { "t1", "t2", "tx", ".thidden", "u1" })
            Exec(Path.Combine(dir, name));
        File.WriteAllText(Path.Combine(dir, "t3"), "not executable");
        Directory.CreateDirectory(Path.Combine(dir, "sub1"));
        Exec(Path.Combine(dir, "sub1", "prog"));

        Assert.Equal(Names("t1", "t2", "tx"), ResidentConf.Expand(dir + "/t*"));
        Assert.Equal(Names("t1", "t2"), ResidentConf.Expand(dir + "/t[0-9]"));
        Assert.Equal(Names("tx", "u1"), ResidentConf.Expand(dir + "/[!t.]*").Concat(ResidentConf.Expand(dir + "/t[!0-9]")).Order().ToList());
        Assert.Equal(Names("t1", "t2", "tx", "u1"), ResidentConf.Expand(dir + "/??"));
        Assert.Equal([Path.Combine(dir, "sub1", "prog")], ResidentConf.Expand(dir + "/sub?/prog"));
        Assert.Empty(ResidentConf.Expand(dir + "/none*"));
        Assert.Equal(["perl"], ResidentConf.Expand("perl"));
        Assert.Throws<ArgumentException>(() => ResidentConf.Expand("bin/*"));
    }

    List<string> Names(params string[] names) => names.Select(n => Path.Combine(dir, n)).ToList();

    static void Exec(string path)
    {
        File.WriteAllText(path, "");
        File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
    }
}
