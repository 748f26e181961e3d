using System.Runtime.Versioning;
using Xunit;
using Resident.HookContract;
using Resident.Tests.Integration.Harness;

namespace Resident.Tests.HookContract;

/// <summary>
/// The trust rule exists twice — native/hook.c (open_in, trusted) and HookTrust (C#, what
/// `resident doctor` and the registry report). Each case puts a registered image (or its
/// registry) in one condition and asks both: the real hook (RESIDENT_PROBE=1) and HookTrust
/// must agree on whether it is trusted.
/// </summary>
public sealed class TrustRuleTests(Fixtures fx) : IClassFixture<Fixtures>
{
    public static TheoryData<string> Conditions => ["as written", "image is a symlink", "image group-writable",
        "image other-writable", "image is a FIFO", "image owned by another user", "registry group-writable",
        "registry owned by another user", "registry reached through a symlink"];

    [Theory]
    [MemberData(nameof(Conditions))]
    public void HookAndCSharpAgree(string condition)
    {
        using var s = new ResidentSession();
        var args = fx.Path("args");
        s.Register(args);
        string image = Assert.Single(s.ImageFiles());
        string registry = s.RegistryDir;
        switch (condition)
        {
            case "image is a symlink":
                File.Move(image, image + ".real");
                File.CreateSymbolicLink(image, image + ".real");
                break;
            case "image group-writable": File.SetUnixFileMode(image, (UnixFileMode)0b110_110_100); break;
            case "image other-writable": File.SetUnixFileMode(image, (UnixFileMode)0b110_100_110); break;
            case "image is a FIFO":
                File.Delete(image);
                Assert.Equal(0, ProcessRunner.Run(new RunSpec("/usr/bin/mkfifo", ["-m", "600", image])).ExitCode);
                break;
            case "image owned by another user": Chown(image); break;
            case "registry group-writable": File.SetUnixFileMode(registry, (UnixFileMode)0b111_111_000); break;
            case "registry owned by another user": Chown(registry); break;
            case "registry reached through a symlink":
                Directory.Move(registry, registry + ".real");
                File.CreateSymbolicLink(registry, registry + ".real");
                break;
        }
        var probe = s.RunResident(s.Spec(args, ["x"], new Dictionary<string, string> { ["RESIDENT_PROBE"] = "1" }), debug: false);
        string verdict = probe.StderrText.Trim();
        bool hookTrusts = !verdict.Contains("not trusted");
        string? csharp = HookTrust.Problem(registry, HookTrust.Kind.Directory) ?? HookTrust.Problem(image, HookTrust.Kind.Image);
        Assert.True(hookTrusts == (csharp is null), $"{condition}: the hook says '{verdict}', HookTrust says '{csharp ?? "trusted"}'");
        Assert.True(verdict.StartsWith($"resident: probe {args}: "), probe.ToString());
        if (condition == "image is a symlink")
            Assert.EndsWith($"would fall back: image not trusted: symlink: {image}", verdict);
        if (condition is "as written" or "registry reached through a symlink")
            Assert.EndsWith("would restore", verdict);
    }

    static void Chown(string path) =>
        Assert.Equal(0, ProcessRunner.Run(new RunSpec("/usr/bin/chown", ["65534:65534", path])).ExitCode);
}
