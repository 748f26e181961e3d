namespace Resident.Tests.Integration.Harness;

/// <summary>
/// The C/C++ fixture programs of tests/fixtures, compiled with gcc/g++ (make OUT=dir) into a
/// temporary directory. Used as an xunit class fixture; the build itself happens once per test
/// process and is shared by every class (it takes a few seconds on two cores).
/// </summary>
public sealed class Fixtures
{
    static readonly Lazy<string> Built = new(Build, LazyThreadSafetyMode.ExecutionAndPublication);

    public string Dir => Built.Value;

    /// <summary>Absolute path of a fixture program or library, e.g. Path("libs"), Path("libalpha.so").</summary>
    public string Path(string name) => System.IO.Path.Combine(Dir, name);

    /// <summary>A private copy of every fixture in DEST (programs find their libraries via $ORIGIN).</summary>
    public void CopyTo(string dest)
    {
        Directory.CreateDirectory(dest);
        foreach (var f in Directory.GetFiles(Dir))
            File.Copy(f, System.IO.Path.Combine(dest, System.IO.Path.GetFileName(f)));
    }

    static string Build()
    {
        var dir = Directory.CreateTempSubdirectory("resident-fixtures-").FullName;
        AppDomain.CurrentDomain.ProcessExit += (_, _) => TempDir.Delete(dir);
        var r = ProcessRunner.Run(new RunSpec("/usr/bin/make", ["-s", "-C", Product.FixtureSources, "OUT=" + dir, "-j2"])
        {
            Env = new Dictionary<string, string> { ["PATH"] = "/usr/bin:/bin", ["LANG"] = "C" },
            Timeout = TimeSpan.FromMinutes(3),
        });
        if (r.ExitCode != 0)
            throw new InvalidOperationException("building the fixtures failed:\n" + r);
        return dir;
    }
}

/// <summary>Temporary directories that are removed even when a test fails.</summary>
public static class TempDir
{
    public static string Create(string prefix) => Directory.CreateTempSubdirectory(prefix).FullName;

    public static void Delete(string dir)
    {
        try
        {
            if (Directory.Exists(dir))
                Directory.Delete(dir, recursive: true);
        }
        catch (IOException)
        {
        }
        catch (UnauthorizedAccessException)
        {
        }
    }
}
