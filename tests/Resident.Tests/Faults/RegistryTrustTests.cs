using System.Runtime.Versioning;
using Xunit;
using Resident.Tests.Integration.Harness;

namespace Resident.Tests.Faults;

/// <summary>
/// The hook uses an image only if the image and its registry directory belong to this euid or
/// root and are not group/other-writable, and the image is a regular file opened with
/// O_NOFOLLOW: anyone who can write there could hand the process any address space. Every
/// other case is a normal start with `fallback PATH: image not trusted` / `registry not trusted`.
/// </summary>
public sealed class RegistryTrustTests(Fixtures fx) : IClassFixture<Fixtures>
{
    public static TheoryData<string, string> Cases => new()
    {
        { "registry directory writable by others", "registry not trusted" },
        { "registry directory writable by group", "registry not trusted" },
        { "registry directory owned by another user", "registry not trusted" },
        { "image writable by group", "image not trusted" },
        { "image writable by others", "image not trusted" },
        { "image owned by another user", "image not trusted" },
        { "image is a symbolic link", "image not trusted: symlink" },
    };

    [Theory]
    [MemberData(nameof(Cases))]
    public void UnsafeRegistry_FallsBack(string how, string reason)
    {
        using var s = new ResidentSession();
        var args = fx.Path("args");
        s.Register(args);
        var image = Assert.Single(s.ImageFiles());
        var spec = s.Spec(args, "1");
        s.AssertSameResident(spec, args);
        MakeUnsafe(s, how, image);
        s.AssertFallsBack(spec, args, reason);
    }

    static void MakeUnsafe(ResidentSession s, string how, string image)
    {
        switch (how)
        {
            case "registry directory writable by others":
                File.SetUnixFileMode(s.RegistryDir, (UnixFileMode)0b111_101_111);
                break;
            case "registry directory writable by group":
                File.SetUnixFileMode(s.RegistryDir, (UnixFileMode)0b111_111_000);
                break;
            case "registry directory owned by another user":
                Chown(s, s.RegistryDir);
                break;
            case "image writable by group":
                File.SetUnixFileMode(image, File.GetUnixFileMode(image) | UnixFileMode.GroupWrite);
                break;
            case "image writable by others":
                File.SetUnixFileMode(image, File.GetUnixFileMode(image) | UnixFileMode.OtherWrite);
                break;
            case "image owned by another user":
                Chown(s, image);
                break;
            case "image is a symbolic link":
                // to a perfectly good image, in a trusted place: O_NOFOLLOW refuses it anyway
                var moved = Path.Combine(s.Root, Path.GetFileName(image));
                File.Move(image, moved);
                File.CreateSymbolicLink(image, moved);
                break;
            default:
                throw new ArgumentException(how);
        }
    }

    [Fact] // the hook opens the image O_NONBLOCK: a FIFO there must not block every exec of the program
    public void ImageIsAFifo_FallsBackAtOnce()
    {
        using var s = new ResidentSession();
        var args = fx.Path("args");
        s.Register(args);
        var image = Assert.Single(s.ImageFiles());
        File.Delete(image);
        Run(s, "/usr/bin/mkfifo", "-m", "600", image);
        s.AssertFallsBack(s.Spec(args, "1") with { Timeout = TimeSpan.FromSeconds(10) }, args, "image not trusted");
    }

    static void Chown(ResidentSession s, string path) => Run(s, "/bin/chown", "65534:65534", path);

    static void Run(ResidentSession s, string program, params string[] args)
    {
        var r = ProcessRunner.Run(new RunSpec(program, args) { Env = s.BaseEnv() });
        Assert.True(r.ExitCode == 0, r.ToString());
    }
}
