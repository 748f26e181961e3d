using System.Collections.Concurrent;
using Xunit;
using Resident.Tests.Integration.Harness;

namespace Resident.Tests.Portability;

/// <summary>
/// One Debian chroot of the portability matrix, built once and cached outside the repository by
/// tests/portability/chroots.sh, and the way commands run in it (tests/portability/run-in.sh):
/// each in a private mount namespace with /proc, /dev and the repository's dist/ (at
/// <see cref="Dist"/>) mounted, all gone when the command ends. Needs root; a missing chroot that cannot be built
/// (no root, no archive) fails the test with chroots.sh's reason.
/// </summary>
public sealed class Chroot
{
    /// <summary>Where dist/ appears inside.</summary>
    public const string Dist = "/opt/resident";

    static readonly ConcurrentDictionary<string, Lazy<Chroot>> Cache = new();

    public string Suite { get; }

    /// <summary>The chroot's root directory on the host.</summary>
    public string Root { get; }

    Chroot(string suite, string root) => (Suite, Root) = (suite, root);

    /// <summary>The cached chroot of SUITE, built first if need be (minutes).</summary>
    public static Chroot Get(string suite) => Cache.GetOrAdd(suite, s => new Lazy<Chroot>(() => Build(s))).Value;

    static Chroot Build(string suite)
    {
        Assert.True(Resident.Interop.GetEuid() == 0, "the portability matrix needs root (debootstrap, chroot, mount): run the tests as root");
        var r = ProcessRunner.Run(new RunSpec(Path.Combine(Product.RepoRoot, "tests", "portability", "chroots.sh"), ["--path", suite])
        {
            Env = HostEnv,
            Timeout = TimeSpan.FromMinutes(20),
        });
        Assert.True(r.ExitCode == 0, $"the {suite} chroot is not there and could not be built:\n{r}");
        return new Chroot(suite, r.StdoutText.Trim());
    }

    /// <summary>tests/portability/run-in.sh: the one place that knows how a command enters a chroot.</summary>
    static string RunIn => Path.Combine(Product.RepoRoot, "tests", "portability", "run-in.sh");

    static Dictionary<string, string> HostEnv => new() { ["PATH"] = "/usr/sbin:/usr/bin:/sbin:/bin", ["LANG"] = "C" };

    /// <summary>HOSTPATH (under <see cref="Root"/>) as seen inside.</summary>
    public string Inside(string hostPath)
    {
        var full = Path.GetFullPath(hostPath);
        Assert.True(full.StartsWith(Root + "/", StringComparison.Ordinal), $"{hostPath} is not inside the {Suite} chroot ({Root})");
        return full[Root.Length..];
    }

    /// <summary>INSIDEPATH (absolute, as seen inside) on the host.</summary>
    public string Host(string insidePath) => Root + insidePath;

    /// <summary>A fresh directory in the chroot's /tmp (host path); removed when the test process exits.</summary>
    public string CreateTemp(string prefix)
    {
        var tmp = Path.Combine(Root, "tmp");
        Directory.CreateDirectory(tmp);
        var dir = Path.Combine(tmp, prefix + Path.GetRandomFileName().Replace(".", ""));
        Directory.CreateDirectory(dir, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        AppDomain.CurrentDomain.ProcessExit += (_, _) => TempDir.Delete(dir);
        return dir;
    }

    /// <summary>
    /// Runs SPEC inside: its program, arguments and working directory are inside paths, its
    /// environment is exactly the program's (the wrapper's own comes from the host).
    /// </summary>
    public RunResult Run(RunSpec spec)
    {
        const string enterDir = "cd \"$1\" && shift && exec \"$@\"";
        var env = spec.Env.Select(kv => $"{kv.Key}={kv.Value}");
        List<string> args = [Root, "/usr/bin/env", "-i", .. env, "/bin/sh", "-c", enterDir, "sh", spec.WorkingDirectory ?? "/", spec.Program, .. spec.Args];
        var r = ProcessRunner.Run(new RunSpec(RunIn, args) { Env = HostEnv, Stdin = spec.Stdin, Timeout = spec.Timeout, WorkingDirectory = "/" });
        return r with { Spec = spec with { Program = $"[{Suite}] {spec.Program}" } };
    }

    /// <summary>readlink -f of INSIDEPATH, inside.</summary>
    public string RealPath(string insidePath)
    {
        var r = Run(new RunSpec("/usr/bin/readlink", ["-f", insidePath]) { Env = HostEnv });
        Assert.True(r.ExitCode == 0, r.ToString());
        return r.StdoutText.Trim();
    }
}
