using System.Text;
using Xunit;
using Resident.Format;

namespace Resident.Tests.Integration.Harness;

/// <summary>
/// One test's world: a fresh temporary registry (RESIDENT_DIR), HOME, TMPDIR and working
/// directory, an explicit environment, and the two ways to run a command — normally, and
/// resident (LD_AUDIT = dist/libresident.so, RESIDENT_DEBUG=1) — plus the comparison of both.
/// Nothing is inherited from the test host's environment: a stray LD_* variable would make
/// every restore fall back. With a <see cref="Portability.Chroot"/>, every command runs in that
/// chroot (dist/ mounted at /opt/resident); the paths of this class stay host paths, and
/// <see cref="Seen"/> gives the path the programs see.
/// </summary>
public sealed class ResidentSession : IDisposable
{
    readonly Portability.Chroot? chroot;

    public string Root { get; }
    public string RegistryDir => System.IO.Path.Combine(Root, "registry");
    public string Home => System.IO.Path.Combine(Root, "home");
    public string WorkDir => System.IO.Path.Combine(Root, "work");

    /// <summary>dist/resident and dist/libresident.so as the session's programs reach them.</summary>
    public string CliPath => chroot is null ? Product.Cli : Portability.Chroot.Dist + "/resident";
    public string HookPath => chroot is null ? Product.Hook : Portability.Chroot.Dist + "/libresident.so";

    /// <summary>A host path as this session's programs see it: inside the chroot, if there is one.</summary>
    public string Seen(string hostPath) => chroot?.Inside(hostPath) ?? hostPath;

    public ResidentSession() : this(null) { }

    public ResidentSession(Portability.Chroot? chroot)
    {
        this.chroot = chroot;
        Root = chroot?.CreateTemp("resident-test-") ?? TempDir.Create("resident-test-");
        Directory.CreateDirectory(Home);
        Directory.CreateDirectory(WorkDir);
        Directory.CreateDirectory(System.IO.Path.Combine(Root, "tmp"));
    }

    public void Dispose() => TempDir.Delete(Root);

    /// <summary>The environment of every run (normal, resident and the CLI).</summary>
    public Dictionary<string, string> BaseEnv() => new()
    {
        ["PATH"] = "/usr/local/bin:/usr/bin:/bin",
        ["HOME"] = Seen(Home),
        ["LANG"] = "C.UTF-8",
        ["TMPDIR"] = Seen(System.IO.Path.Combine(Root, "tmp")),
        ["RESIDENT_DIR"] = Seen(RegistryDir),
    };

    /// <summary>A command in this session's environment and working directory; EXTRA adds or overrides variables.</summary>
    public RunSpec Spec(string program, IEnumerable<string>? args = null, IDictionary<string, string>? extra = null, byte[]? stdin = null)
    {
        var env = BaseEnv();
        foreach (var (k, v) in extra ?? new Dictionary<string, string>())
            env[k] = v;
        return new RunSpec(program, (args ?? []).ToList()) { Env = env, WorkingDirectory = Seen(WorkDir), Stdin = stdin };
    }

    public RunSpec Spec(string program, params string[] args) => Spec(program, args, null);

    /// <summary>Runs dist/resident ARGS with this session's registry.</summary>
    public RunResult Cli(params string[] args) => Cli(args, null);

    /// <summary>
    /// Whether `add` times the starts. Off by default: most tests register small fixtures to test
    /// something else, and a fixture that gains nothing would be refused; with it off, every
    /// `add` through <see cref="Cli(string[], IDictionary{string, string}?)"/> gets --no-measure.
    /// AddMeasureTests turn it on.
    /// </summary>
    public bool MeasureAdds { get; init; }

    /// <summary>Runs dist/resident ARGS with this session's registry and EXTRA variables.</summary>
    public RunResult Cli(string[] args, IDictionary<string, string>? extra)
    {
        Product.RequireBuilt();
        if (!MeasureAdds && args is ["add", ..])
            args = ["add", "--no-measure", .. args[1..]];
        return Run(Spec(CliPath, args, extra) with { Timeout = TimeSpan.FromMinutes(2) });
    }

    /// <summary>`resident add PROGRAMS`: must succeed with one line per program.</summary>
    public void Register(params string[] programs) => Register(null, programs);

    /// <summary>`resident add PROGRAMS` with EXTRA variables in its environment (the capture's).</summary>
    public void Register(IDictionary<string, string>? extra, params string[] programs)
    {
        var r = Cli(["add", .. programs], extra);
        Assert.True(r.ExitCode == 0, "resident add failed:\n" + r);
        var lines = r.StdoutText.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.True(lines.Length == programs.Length, $"expected one line per program from resident add:\n{r}");
        Assert.True(ImageFiles().Count() >= programs.Length, $"resident add wrote no image into {RegistryDir}:\n{r}");
    }

    /// <summary>
    /// Rewrites <paramref name="image"/> as if written by the previous format version (its version
    /// word one lower, checksum resealed): what an upgrade of resident leaves in a registry.
    /// </summary>
    public static void MakeOlderFormat(string image)
    {
        var bytes = File.ReadAllBytes(image);
        var h = System.Runtime.InteropServices.MemoryMarshal.Read<Resident.Format.RsHeader>(bytes);
        BitConverter.TryWriteBytes(bytes.AsSpan(8, 4), Resident.Format.ImageFormat.Version - 1);
        BitConverter.TryWriteBytes(bytes.AsSpan(32, 8), 0UL);
        BitConverter.TryWriteBytes(bytes.AsSpan(32, 8), Resident.Format.ImageFormat.Checksum(bytes.AsSpan(0, (int)h.MetaSize)));
        File.WriteAllBytes(image, bytes);
    }

    /// <summary>Every image file (and leftover temporary file) in the registry.</summary>
    public IEnumerable<string> ImageFiles() =>
        Directory.Exists(RegistryDir)
            ? Directory.EnumerateFiles(RegistryDir, "*", SearchOption.AllDirectories).Where(f => f.Contains(".img"))
            : [];

    /// <summary>Runs SPEC as it is, in the chroot if the session has one.</summary>
    public RunResult Run(RunSpec spec) => chroot is null ? ProcessRunner.Run(spec) : chroot.Run(spec);

    public RunResult RunNormal(RunSpec spec) => Run(spec);

    /// <summary>SPEC with the hook enabled the way shell-init enables it; DEBUG sets RESIDENT_DEBUG=1 unless SPEC sets it.</summary>
    public RunResult RunResident(RunSpec spec, bool debug = true)
    {
        Product.RequireHook();
        var env = new Dictionary<string, string>(spec.Env) { ["LD_AUDIT"] = HookPath };
        if (debug)
            env.TryAdd("RESIDENT_DEBUG", "1");
        return Run(spec with { Env = env });
    }

    /// <summary>
    /// Runs SPEC normally and then resident (twice: the second run must not see anything the first
    /// left behind), and asserts identical stdout, stderr (minus the debug lines) and exit status,
    /// and that the debug lines say PROGRAM was restored RESTORES times and nothing else.
    /// Returns the normal run for further checks.
    /// </summary>
    public RunResult AssertSameResident(RunSpec spec, string program, int restores = 1)
    {
        var normal = RunNormal(spec);
        for (int i = 0; i < 2; i++)
        {
            var resident = RunResident(spec);
            var debug = AssertSameOutput(normal, resident);
            AssertRestored(debug, program, restores, resident);
        }
        return normal;
    }

    /// <summary>
    /// For a program whose output differs from run to run (it prints its pid, the time): SPEC run
    /// resident is restored once as PROGRAM and ends as its normal run does (exit status).
    /// </summary>
    public void AssertRestoredOnly(RunSpec spec, string program)
    {
        var normal = RunNormal(spec);
        var resident = RunResident(spec);
        var debug = DebugLines.Split(resident.Stderr);
        AssertRestored(debug, program, 1, resident);
        Assert.True(normal.ExitCode == resident.ExitCode, $"exit status differs: normal {normal.ExitCode}, resident {resident.ExitCode}\n{resident}");
    }

    /// <summary>Asserts RESIDENT (debug lines removed) equals NORMAL byte for byte; returns the debug lines.</summary>
    public static DebugLines AssertSameOutput(RunResult normal, RunResult resident)
    {
        var debug = DebugLines.Split(resident.Stderr);
        var context = $"\n=== normal ===\n{normal}\n=== resident ===\n{resident}";
        AssertSameBytes("stdout", normal.Stdout, resident.Stdout, context);
        AssertSameBytes("stderr (without resident: lines)", normal.Stderr, debug.Rest, context);
        Assert.True(normal.ExitCode == resident.ExitCode, $"exit status differs: normal {normal.ExitCode}, resident {resident.ExitCode}{context}");
        return debug;
    }

    public static void AssertRestored(DebugLines debug, string program, int count, RunResult run)
    {
        var names = ProgramNames(program);
        var expected = string.Join(" or ", names.Select(n => "'resident: restored " + n + "'"));
        Assert.True(debug.Lines.Count == count && debug.Lines.All(l => l.StartsWith("resident: restored ") && names.Contains(DebugLines.PathOf(l))),
            $"expected {count} debug line(s) {expected}, got:\n  {string.Join("\n  ", debug.Lines)}\n{run}");
    }

    public static void AssertFallback(DebugLines debug, string program, RunResult run)
    {
        var names = ProgramNames(program);
        Assert.True(debug.Lines.Count == 1 && debug.Fallbacks.Count() == 1 && names.Contains(DebugLines.PathOf(debug.Lines[0])),
            $"expected exactly one 'resident: fallback {program}: REASON' line, got:\n  {string.Join("\n  ", debug.Lines)}\n{run}");
    }

    /// <summary>
    /// SPEC run resident equals its normal run and the hook says `fallback PROGRAM: REASON` once,
    /// REASON containing <paramref name="reason"/> when given. Returns that line.
    /// </summary>
    public string AssertFallsBack(RunSpec spec, string program, string? reason = null)
    {
        var resident = RunResident(spec);
        var debug = AssertSameOutput(RunNormal(spec), resident);
        AssertFallback(debug, program, resident);
        var line = debug.Lines[0];
        Assert.True(reason == null || line.Contains(": " + reason), $"expected the reason '{reason}', got '{line}'");
        return line;
    }

    /// <summary>
    /// An init-level image's exec whose looked-up variable differs: SPEC run resident equals its
    /// normal run, and the hook says `level PROGRAM: link level: REASON` (REASON containing
    /// <paramref name="reason"/>), then restores PROGRAM from the link-level image the file carries.
    /// </summary>
    public void AssertRestoredAtLinkLevel(RunSpec spec, string program, string reason)
    {
        var resident = RunResident(spec);
        var debug = AssertSameOutput(RunNormal(spec), resident);
        var names = ProgramNames(program);
        Assert.True(debug.Lines.Count == 2 && debug.Lines[0].StartsWith("resident: level ") && debug.Lines[0].Contains(": link level: " + reason)
            && names.Contains(DebugLines.PathOf(debug.Lines[0])) && debug.Restored.Count() == 1 && names.Contains(DebugLines.PathOf(debug.Lines[1])),
            $"expected 'resident: level {program}: link level: {reason}...' and 'resident: restored {program}', got:\n  {string.Join("\n  ", debug.Lines)}\n{resident}");
    }

    /// <summary>The names the hook may print for PROGRAM: as registered, or resolved.</summary>
    static HashSet<string> ProgramNames(string program)
    {
        var names = new HashSet<string> { program };
        try
        {
            if (new FileInfo(program).ResolveLinkTarget(returnFinalTarget: true)?.FullName is string real)
                names.Add(real);
        }
        catch (IOException)
        {
            // a path inside a chroot, which the caller names resolved already
        }
        return names;
    }

    static void AssertSameBytes(string what, byte[] normal, byte[] resident, string context)
    {
        if (normal.AsSpan().SequenceEqual(resident))
            return;
        var a = Encoding.UTF8.GetString(normal).Split('\n');
        var b = Encoding.UTF8.GetString(resident).Split('\n');
        int i = 0;
        while (i < a.Length && i < b.Length && a[i] == b[i])
            i++;
        string At(string[] l) => i < l.Length ? l[i] : "(end)";
        Assert.Fail($"{what} differs at line {i + 1}:\n  normal:   {At(a)}\n  resident: {At(b)}{context}");
    }
}
