using Xunit;
using Resident.HookContract;
using Resident.Tests.Integration.Harness;

namespace Resident.Tests.HookContract;

/// <summary>
/// The registry rule exists twice — RegistryPaths (C#) and the hook (C). These tests register a
/// program under each rule's directory and check that C# resolves the same directory and that the
/// hook really finds the image there (it restores).
/// </summary>
public sealed class RegistryRuleTests : IDisposable
{
    readonly ResidentSession session = new();

    public void Dispose() => session.Dispose();

    public static TheoryData<string> Rules => new() { "RESIDENT_DIR", "XDG_CACHE_HOME", "HOME", "relative RESIDENT_DIR" };

    [Theory]
    [MemberData(nameof(Rules))]
    public void CSharpAndHookAgree(string rule)
    {
        string root = session.Root;
        var env = new Dictionary<string, string> { ["PATH"] = "/usr/bin:/bin", ["HOME"] = Path.Combine(root, "nohome") };
        switch (rule)
        {
            case "RESIDENT_DIR": env["RESIDENT_DIR"] = Path.Combine(root, "explicit"); break;
            case "XDG_CACHE_HOME": env["XDG_CACHE_HOME"] = Path.Combine(root, "xdg"); break;
            case "HOME": env["HOME"] = Path.Combine(root, "home2"); break;
            case "relative RESIDENT_DIR": env["RESIDENT_DIR"] = "explicit"; env["XDG_CACHE_HOME"] = Path.Combine(root, "xdg"); break;
        }
        string expected = rule switch
        {
            "RESIDENT_DIR" => Path.Combine(root, "explicit"),
            "HOME" => Path.Combine(root, "home2", ".cache", "resident"),
            _ => Path.Combine(root, "xdg", "resident"),
        };
        Assert.Equal(expected, RegistryPaths.Resolve(n => env.GetValueOrDefault(n)));

        var add = ProcessRunner.Run(new RunSpec(Product.Cli, ["add", "--no-measure", "/usr/bin/true"]) { Env = env, WorkingDirectory = root });
        Assert.True(add.ExitCode == 0, add.ToString());
        Assert.Single(Directory.GetFiles(expected, "*.img"));

        var run = ProcessRunner.Run(new RunSpec("/usr/bin/true", []) { Env = new Dictionary<string, string>(env) { ["LD_AUDIT"] = Product.Hook, ["RESIDENT_DEBUG"] = "1" }, WorkingDirectory = root });
        Assert.Equal(0, run.ExitCode);
        Assert.Equal("resident: restored /usr/bin/true\n", run.StderrText);
    }

    [Fact]
    public void NoAbsoluteVariableMeansNoRegistry()
    {
        Assert.Null(RegistryPaths.Resolve(n => n == "HOME" ? "relative/home" : null));
    }

    [Fact]
    public void ImageNameIsDevInoHex()
    {
        Assert.Equal("fe01-2a.img", RegistryPaths.ImageFileName(0xfe01, 42));
    }
}
