using System.Diagnostics;
using Resident.Activation;
using Resident.Capture;
using Resident.Elf;
using Resident.HookContract;
using Resident.Proc;
using Resident.Registry;

namespace Resident.Diagnosis;

/// <summary>
/// `resident doctor PROG`: not registered → would a capture succeed, and if not exactly why (a
/// real capture into a temporary directory); registered → would this environment restore it or
/// fall back, and why — asked of the hook itself (RESIDENT_PROBE=1), never re-judged here.
/// </summary>
public static class ProgramDoctor
{
    /// <summary>The hook's answer to RESIDENT_PROBE=1 must come well within this.</summary>
    static readonly TimeSpan ProbeTimeout = TimeSpan.FromSeconds(10);
    const string ProbePrefix = "resident: probe ";

    /// <param name="environment">this shell's environment, the one the program would start with.</param>
    public static IReadOnlyList<Finding> Run(string program, DoctorContext c, IReadOnlyDictionary<string, string> environment)
    {
        ProgramFile file;
        try { file = ProgramFile.Identify(program); }
        catch (RefusalException e) { return [new Finding(false, program, e.Message)]; }

        var registries = new[] { c.UserRegistry, c.SystemRegistry }.OfType<ImageRegistry>();
        var found = registries.Select(r => (Registry: r, Entry: r.Find(r.Entries(), file.Path))).FirstOrDefault(x => x.Entry is not null);
        if (found.Entry is not { Id: ulong id } entry)
            return [new Finding(false, "registered", $"no: {file.Path} has no image in {string.Join(" or ", registries.Select(r => r.Directory))}", Informational: true),
                TrialCapture(file.Path, environment)];

        string state = entry.Staleness() is { } why ? $"stale: {why}" : "fresh";
        return [new Finding(true, "registered", $"{file.Path}: id {id} in {found.Registry.Directory} ({state})"),
            SystemDoctor.HookEnabled(c.HookPath, environment.GetValueOrDefault("LD_AUDIT")),
            Probe(file.Path, c.HookPath, environment)];
    }

    /// <summary>A real capture into a temporary directory, removed afterwards.</summary>
    static Finding TrialCapture(string path, IReadOnlyDictionary<string, string> environment)
    {
        var dir = Directory.CreateTempSubdirectory("resident-doctor-");
        try
        {
            var s = Capturer.Capture(path, Path.Combine(dir.FullName, "trial.img"), 0, environment);
            return new Finding(true, "would register",
                $"a capture succeeds (image {s.ImageSize / 1024} KB, {s.Elapsed.TotalMilliseconds:0} ms): resident add {path}");
        }
        catch (Exception e) when (e is RefusalException or IOException or UnauthorizedAccessException)
        {
            return new Finding(false, "would register", $"no: {e.Message}");
        }
        finally
        {
            dir.Delete(recursive: true);
        }
    }

    /// <summary>
    /// Runs the program with the hook and RESIDENT_PROBE=1: the hook makes every check of a real
    /// exec, prints one line and exits before the program runs. A file the hook would never see
    /// (static, setuid, a script) is not started at all.
    /// </summary>
    static Finding Probe(string path, string hook, IReadOnlyDictionary<string, string> environment)
    {
        const string Subject = "restore";
        try { ProgramFileCheck.Check(path); }
        catch (RefusalException e) { return new Finding(false, Subject, $"the hook would never take it over: {e.Message}"); }
        if (!File.Exists(hook))
            return new Finding(false, Subject, $"cannot ask the hook: {hook} does not exist");

        var (exit, stderr) = RunProbe(path, hook, environment);
        string? line = stderr.Split('\n').FirstOrDefault(l => l.StartsWith(ProbePrefix, StringComparison.Ordinal));
        if (line is null)
            return new Finding(false, Subject, $"the hook did not answer (exit status {exit}; ld.so did not load it?){FirstLine(stderr)}");
        string verdict = line[(line.IndexOf(": ", ProbePrefix.Length, StringComparison.Ordinal) + 2)..];
        return new Finding(verdict == "would restore", Subject, $"the hook says, in this environment: {verdict}");
    }

    static (int Exit, string Stderr) RunProbe(string path, string hook, IReadOnlyDictionary<string, string> environment)
    {
        var psi = new ProcessStartInfo(path)
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        psi.Environment.Clear();
        foreach (var (k, v) in environment)
            psi.Environment[k] = v;
        psi.Environment["LD_AUDIT"] = HookActivation.ComposeLdAudit(hook, environment.GetValueOrDefault("LD_AUDIT"));
        psi.Environment["RESIDENT_PROBE"] = "1";
        using var p = Process.Start(psi) ?? throw new IOException($"cannot start {path}");
        p.StandardInput.Close();
        var stderr = p.StandardError.ReadToEndAsync();
        _ = p.StandardOutput.ReadToEndAsync();
        if (!p.WaitForExit(ProbeTimeout))
        {
            p.Kill(entireProcessTree: true);
            p.WaitForExit();
        }
        return (p.ExitCode, stderr.Result);
    }

    static string FirstLine(string text) =>
        text.Split('\n', StringSplitOptions.RemoveEmptyEntries).FirstOrDefault() is { } l ? ": " + l : "";
}
