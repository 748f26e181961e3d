using System.Runtime.Versioning;
using Xunit;
using Resident.Format;
using Resident.Tests.Integration.Harness;

namespace Resident.Tests.Faults;

/// <summary>
/// The registry changing while programs start: the image deleted and put back, several
/// `resident add` of one program at once, and exec loops running while the program is captured
/// again and again. Every run must give the normal output; the hook sees the old image or the new
/// one (the writer renames a complete file into place), never a partial one.
/// </summary>
public sealed class ConcurrencyTests(Fixtures fx) : IClassFixture<Fixtures>
{
    /// <summary>RUN resident equals NORMAL and was restored or found no image; returns a failure text or null.</summary>
    static string? Check(RunResult normal, RunResult resident, string program)
    {
        try
        {
            var debug = ResidentSession.AssertSameOutput(normal, resident);
            if (debug.Lines.Count > 0)
                ResidentSession.AssertRestored(debug, program, 1, resident);
            return null;
        }
        catch (Exception e)
        {
            return e.Message;
        }
    }

    static void AssertNoFailures(IEnumerable<string?> failures, int runs)
    {
        var failed = failures.Where(f => f != null).ToList();
        Assert.True(failed.Count == 0, $"{failed.Count} of {runs} runs failed; the first:\n{failed.FirstOrDefault()}");
    }

    [Fact]
    public async Task ImageDeletedAndPutBackWhileProgramsStart()
    {
        using var s = new ResidentSession();
        var args = fx.Path("args");
        s.Register(args);
        var image = Assert.Single(s.ImageFiles());
        var bytes = File.ReadAllBytes(image);
        var spec = s.Spec(args, "1");
        var normal = s.RunNormal(spec);
        using var stop = new CancellationTokenSource();
        var churn = Task.Run(() =>
        {
            for (int i = 0; !stop.IsCancellationRequested; i++)
            {
                File.Delete(image);
                var temp = image + $".{i}.tmp";
                File.WriteAllBytes(temp, bytes);
                File.SetUnixFileMode(temp, UnixFileMode.UserRead | UnixFileMode.UserWrite);
                File.Move(temp, image); // rename: whole or absent, as the writer does
            }
        });
        int runs = LongMode.Runs(60, 600);
        var failures = Enumerable.Range(0, runs).Select(_ => Check(normal, s.RunResident(spec), args)).ToList();
        stop.Cancel();
        await churn;
        AssertNoFailures(failures, runs);
    }

    [Fact]
    public void ConcurrentAddOfOneProgram()
    {
        using var s = new ResidentSession();
        var libs = fx.Path("libs");
        var adds = Enumerable.Range(0, 4).AsParallel().WithDegreeOfParallelism(4).Select(_ => s.Cli("add", libs)).ToList();
        foreach (var add in adds)
            Assert.True(add.ExitCode == 0 && add.StdoutText.Split('\n', StringSplitOptions.RemoveEmptyEntries).Length == 1, add.ToString());
        var image = Assert.Single(s.ImageFiles()); // one image, no temporary file left behind
        ImageReader.Read(image);
        var list = s.Cli("list");
        Assert.True(list.ExitCode == 0 && list.StdoutText.Split(libs).Length == 2, "expected the program listed once:\n" + list);
        s.AssertSameResident(s.Spec(libs, "x"), libs);
    }

    [Fact]
    public async Task EightExecLoopsDuringTwentyRecaptures()
    {
        using var s = new ResidentSession();
        var libs = fx.Path("libs");
        s.Register(libs);
        var spec = s.Spec(libs, "x");
        var normal = s.RunNormal(spec);
        var failures = new System.Collections.Concurrent.ConcurrentBag<string?>();
        int runs = 0;
        using var stop = new CancellationTokenSource();
        var loops = Enumerable.Range(0, 8).Select(_ => Task.Factory.StartNew(() =>
        {
            do
            {
                failures.Add(Check(normal, s.RunResident(spec), libs));
                Interlocked.Increment(ref runs);
            } while (!stop.IsCancellationRequested);
        }, TaskCreationOptions.LongRunning)).ToList();
        try
        {
            for (int i = 0; i < LongMode.Runs(20, 100); i++)
                s.Register(libs); // `resident add` of a registered program captures it again
        }
        finally
        {
            stop.Cancel();
            await Task.WhenAll(loops);
        }
        AssertNoFailures(failures, runs);
        Assert.Single(s.ImageFiles());
    }
}
