using Xunit;
using Resident.Cli;
using Resident.Tests.Integration.Harness;

namespace Resident.Tests.Cli;

/// <summary>The verbs' Run methods, called directly with a temporary registry (STYLE: a testable CLI per verb).</summary>
public sealed class CliVerbTests : IDisposable
{
    readonly string dir = TempDir.Create("resident-cli-");
    string Registry => Path.Combine(dir, "registry");

    public void Dispose() => TempDir.Delete(dir);

    (int Code, string Out, string Err) Add(params string[] programs)
    {
        var o = new StringWriter(); var e = new StringWriter();
        int code = AddCommand.Run(new AddSettings(programs, Registry), o, e);
        return (code, o.ToString(), e.ToString());
    }

    (int Code, string Out, string Err) Remove(string[] programs, ulong[] ids, bool all = false)
    {
        var o = new StringWriter(); var e = new StringWriter();
        int code = RemoveCommand.Run(new RemoveSettings(programs, ids, all, Registry), o, e);
        return (code, o.ToString(), e.ToString());
    }

    string[] Images() => Directory.Exists(Registry) ? Directory.GetFiles(Registry, "*.img") : [];

    [Fact]
    public void AddMissingFileIsOneLineAndWritesNothing()
    {
        var r = Add(Path.Combine(dir, "nope"));
        Assert.Equal(1, r.Code);
        Assert.Single(r.Err.TrimEnd('\n').Split('\n'));
        Assert.Contains("cannot register", r.Err);
        Assert.Empty(Images());
    }

    [Fact]
    public void AddScriptIsRefusedAndExistingImageStays()
    {
        Assert.Equal(0, Add("/usr/bin/true").Code);
        string image = Assert.Single(Images());
        byte[] before = File.ReadAllBytes(image);
        string script = Path.Combine(dir, "script.sh");
        File.WriteAllText(script, "#!/bin/sh\necho hi\n");
        File.SetUnixFileMode(script, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);

        var r = Add(script, "/usr/bin/true");
        Assert.Equal(1, r.Code);
        Assert.Single(r.Err.TrimEnd('\n').Split('\n'));
        Assert.Contains("registered /usr/bin/true", r.Out);
        Assert.Equal(before.Length, File.ReadAllBytes(Assert.Single(Images())).Length);
    }

    [Fact]
    public void IdsAreStableAndNeverReused()
    {
        Assert.Contains("(id 1)", Add("/usr/bin/true").Out);
        Assert.Contains("(id 2)", Add("/usr/bin/env").Out);
        Assert.Contains("(id 1)", Add("/usr/bin/true").Out); // re-registering keeps the id
        Assert.Equal(0, Remove([], [1]).Code);
        Assert.Contains("(id 3)", Add("/usr/bin/true").Out);
        Assert.Equal(0, Remove([], [], all: true).Code);
        Assert.Empty(Images());
        Assert.Contains("(id 4)", Add("/usr/bin/env").Out);
    }

    [Fact]
    public void RemoveUnknownIsAnError()
    {
        var r = Remove(["/usr/bin/true"], [99]);
        Assert.Equal(1, r.Code);
        Assert.Contains("no registration with id 99", r.Err);
        Assert.Contains("/usr/bin/true is not registered", r.Err);
        Assert.Equal(1, Remove([], []).Code);
    }

    [Fact]
    public void ListShowsFreshImages()
    {
        Add("/usr/bin/true");
        var o = new StringWriter(); var e = new StringWriter();
        Assert.Equal(0, ListCommand.Run(new ListSettings(Registry), o, e));
        Assert.Contains("/usr/bin/true", o.ToString());
        Assert.Contains("fresh", o.ToString());
    }

    [Theory]
    [InlineData("zsh", "/usr/bin/zsh")]
    [InlineData("fish", "/usr/bin/fish")]
    public void ShellInitIsIdempotentInZshAndFish(string shell, string binary)
    {
        var o = new StringWriter();
        Assert.Equal(0, ShellInitCommand.Run(new ShellInitSettings(shell, Product.Hook), o, new StringWriter()));
        string twice = $"{o}\n{o}\necho $LD_AUDIT";
        var env = new Dictionary<string, string> { ["PATH"] = "/usr/bin:/bin", ["HOME"] = dir };
        var fresh = ProcessRunner.Run(new RunSpec(binary, ["-c", twice]) { Env = env });
        Assert.Equal(Product.Hook + "\n", fresh.StdoutText);
        var kept = ProcessRunner.Run(new RunSpec(binary, ["-c", twice]) { Env = new Dictionary<string, string>(env) { ["LD_AUDIT"] = "/other.so" } });
        Assert.Equal($"{Product.Hook}:/other.so\n", kept.StdoutText);
    }

    [Fact]
    public void ShellInitIsIdempotentInBash()
    {
        var o = new StringWriter();
        Assert.Equal(0, ShellInitCommand.Run(new ShellInitSettings("bash", Product.Hook), o, new StringWriter()));
        string script = $"LD_AUDIT=/other.so; {o} {o} printf %s \"$LD_AUDIT\"";
        var r = ProcessRunner.Run(new RunSpec("/bin/bash", ["-c", script]) { Env = new Dictionary<string, string> { ["PATH"] = "/usr/bin:/bin" } });
        Assert.Equal($"{Product.Hook}:/other.so", r.StdoutText);
    }
}
