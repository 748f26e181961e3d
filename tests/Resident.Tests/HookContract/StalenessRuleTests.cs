using System.Runtime.InteropServices;
using System.Runtime.Versioning;
using System.Text.Json;
using Xunit;
using Resident.Format;
using Resident.HookContract;
using Resident.Tests.Integration.Harness;

namespace Resident.Tests.HookContract;

/// <summary>
/// The staleness rule exists twice — native/files.c (check_file, changed_reason) and
/// native/restore.c (rs_check_live) in the hook, HookContract/Staleness.cs in C# (list, show,
/// refresh). Each case puts a registered image in one condition and asks both on the same
/// files: the real hook (RESIDENT_PROBE=1: "would restore" or "would fall back: REASON") and
/// Staleness.Of must give the same verdict in the same words.
/// </summary>
public sealed class StalenessRuleTests(Fixtures fx) : IClassFixture<Fixtures>
{
    public static TheoryData<string> Conditions => ["as registered", "library rewritten", "library deleted", "executable touched",
        "library appeared earlier on the search path", "kernel release differs", "hwcap differs", "platform differs"];

    [Theory]
    [MemberData(nameof(Conditions))]
    public void HookAndCSharpAgree(string condition)
    {
        using var s = new ResidentSession();
        string dir = Path.Combine(s.Root, "fixtures");
        fx.CopyTo(dir);
        string prog = Path.Combine(dir, "libs_twodirs"); // RUNPATH $ORIGIN/override:$ORIGIN
        s.Register(prog);
        string image = Assert.Single(s.ImageFiles());
        string alpha = Path.Combine(dir, "libalpha.so");
        string? expected = null;
        switch (condition)
        {
            case "library rewritten":
                File.AppendAllText(alpha, "\n");
                expected = $"library changed: {alpha}";
                break;
            case "library deleted":
                File.Delete(alpha);
                expected = $"library missing: {alpha}";
                break;
            case "executable touched":
                File.SetLastWriteTimeUtc(prog, DateTime.UtcNow.AddMinutes(1));
                expected = "executable changed";
                break;
            case "library appeared earlier on the search path":
                Directory.CreateDirectory(Path.Combine(dir, "override"));
                File.Copy(Path.Combine(dir, "libalpha_v2.so"), Path.Combine(dir, "override", "libalpha.so"));
                expected = $"file appeared: {Path.Combine(dir, "override")}"; // the directory ld.so probed was absent
                break;
            case "kernel release differs":
                EditHeader(image, (ref RsHeader h) => { unsafe { fixed (byte* p = h.KernelRelease) FixedText.Set(p, 65, "0.0.0-elsewhere", "kernel"); } });
                expected = "kernel changed";
                break;
            case "hwcap differs":
                EditHeader(image, (ref RsHeader h) => h.Hwcap ^= 1UL << 63);
                expected = "cpu differs: hwcap";
                break;
            case "platform differs":
                EditHeader(image, (ref RsHeader h) => { unsafe { fixed (byte* p = h.Platform) FixedText.Set(p, 16, "i686", "platform"); } });
                expected = "cpu differs: platform";
                break;
        }
        string? csharp = Staleness.Of(ImageReader.Read(image));
        var probe = s.RunResident(s.Spec(prog, [], new Dictionary<string, string> { ["RESIDENT_PROBE"] = "1" }), debug: false);
        string hook = probe.StderrText.Trim();
        Assert.Equal(expected, csharp);
        string prefix = $"resident: probe {prog}: ";
        Assert.True(hook.StartsWith(prefix), probe.ToString());
        string said = hook[prefix.Length..];
        if (csharp is null)
            Assert.Equal("would restore", said);
        else // the hook names the executable too, which C# leaves out of its one line per image
            Assert.True(said == $"would fall back: {csharp}" || said == $"would fall back: {csharp}: {prog}",
                $"{condition}: the hook says '{said}', Staleness says '{csharp}'");
    }

    /// <summary>The stamp of /etc/ld.so.cache, in a mount namespace where a copy is bound over it: list (C#) and the hook agree.</summary>
    [Fact]
    public void StampRewritten_HookAndListAgree()
    {
        using var s = new ResidentSession();
        var cache = Path.Combine(s.Root, "ld.so.cache");
        File.Copy("/etc/ld.so.cache", cache);
        var args = fx.Path("args");
        var script = $"""
            set -e
            mount --bind '{cache}' /etc/ld.so.cache
            '{s.CliPath}' add --no-measure '{args}' >/dev/null
            cat '{cache}' > '{cache}.new' && cat '{cache}.new' > '{cache}'
            '{s.CliPath}' list --json
            env LD_AUDIT={s.HookPath} RESIDENT_PROBE=1 '{args}'
            """;
        var run = s.RunNormal(s.Spec("/usr/bin/unshare", "-m", "--propagation", "private", "/bin/bash", "-c", script));
        Assert.True(run.ExitCode == 0, run.ToString());
        using var json = JsonDocument.Parse(run.StdoutText);
        var item = Assert.Single(json.RootElement.EnumerateArray().ToList());
        Assert.Equal("stale", item.GetProperty("state").GetString());
        Assert.Equal("file changed: /etc/ld.so.cache", item.GetProperty("reason").GetString());
        Assert.Equal($"resident: probe {args}: would fall back: file changed: /etc/ld.so.cache", run.StderrText.Trim());
    }

    delegate void HeaderEdit(ref RsHeader h);

    /// <summary>Edits the image's header and seals its checksum again, as if captured so.</summary>
    static void EditHeader(string image, HeaderEdit edit)
    {
        var bytes = File.ReadAllBytes(image);
        var h = MemoryMarshal.Read<RsHeader>(bytes);
        edit(ref h);
        h.Checksum = 0;
        MemoryMarshal.Write(bytes, in h);
        BitConverter.TryWriteBytes(bytes.AsSpan(32, 8), ImageFormat.Checksum(bytes.AsSpan(0, (int)h.MetaSize)));
        File.WriteAllBytes(image, bytes);
    }
}
