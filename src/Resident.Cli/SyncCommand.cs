using System.CommandLine;
using Resident.Config;
using Resident.Elf;
using Resident.Proc;
using Resident.Registry;

namespace Resident.Cli;

/// <param name="ConfPath">the resident.conf to read (null: the user's, or /etc/resident.conf with System).</param>
/// <param name="Prune">also remove registrations the file does not name.</param>
public sealed record SyncSettings(string? ConfPath, string RegistryDir, bool System = false, bool DryRun = false, bool Prune = false,
    bool Quiet = false);

/// <summary>
/// resident sync — makes the registry match resident.conf: registers what it names and is not
/// registered, refreshes what is stale, reports (or with --prune removes) registrations it does
/// not name. Glob matches that cannot be registered (scripts, static programs) are skipped, as
/// DragonFly's rc script kept only shared executables; a line naming one program is an error if
/// that program cannot be registered.
/// </summary>
public static class SyncCommand
{
    public static Command Create(TextWriter stdout, TextWriter stderr)
    {
        var conf = new Option<string>("--conf", "-c") { Description = "resident.conf to read (default ~/.config/resident/resident.conf; /etc/resident.conf with --system)" };
        var system = Cli.SystemOption();
        var dryRun = new Option<bool>("--dry-run", "-n") { Description = "only say what would change" };
        var prune = new Option<bool>("--prune") { Description = "remove registrations the file does not name" };
        var quiet = Cli.QuietOption();
        var cmd = new Command("sync",
            "Make the registry match resident.conf (one program, name or glob per line, # comments).\n" +
            "Example: printf '/usr/bin/perl\\n/usr/bin/python3*   # every python\\n' > ~/.config/resident/resident.conf; resident sync")
        { conf, system, dryRun, prune, quiet };
        cmd.SetAction(r => Run(new SyncSettings(r.GetValue(conf), Cli.RegistryDirFor(r.GetValue(system)), r.GetValue(system),
            r.GetValue(dryRun), r.GetValue(prune), r.GetValue(quiet)), stdout, stderr));
        return cmd;
    }

    public static int Run(SyncSettings s, TextWriter stdout, TextWriter stderr)
    {
        string? confPath = s.ConfPath ?? (s.System ? ResidentConf.SystemPath : ResidentConf.UserPath(Environment.GetEnvironmentVariable));
        if (confPath is null || !File.Exists(confPath))
        {
            stderr.WriteLine($"resident: no {confPath ?? "resident.conf (HOME is not set)"}: write one program, name or glob per line");
            return 1;
        }
        var registry = Cli.OpenRegistry(s.RegistryDir, stderr, s.System, writable: !s.DryRun);
        if (registry is null) return 1;

        int failures = 0, skipped = 0;
        var (programs, initLevel, variants) = Programs(confPath, stderr, ref failures, ref skipped);
        var entries = registry.Entries();
        var registrar = new Registrar(registry, Registrar.ProcessEnvironment());
        var results = new List<RefreshResult>();
        int added = 0;
        Cli.ForEachWithProgress(programs, p => p, s.Quiet, stdout, (program, output) =>
        {
            uint want = variants.GetValueOrDefault(program, 1u);
            if (registry.Find(entries, program) is { } entry && (entry.Image is not { } img || Math.Max(img.Header.VariantCount, 1) == want))
            {
                var result = registrar.Refresh(entry, s.DryRun);
                RefreshCommand.Report(result, s.DryRun, s.Quiet, output, stderr);
                results.Add(result);
                return;
            }
            try
            {
                if (s.DryRun) { if (!s.Quiet) output.WriteLine($"would register {program}"); }
                else
                {
                    // a new registration, or one whose number of layouts the file changed
                    var summary = registrar.Add(program, options: new Resident.Trace.CaptureOptions(Init: initLevel.Contains(program)),
                        variants: want);
                    if (!s.Quiet) output.WriteLine(AddCommand.Describe(summary));
                }
                added++;
            }
            catch (Exception e) when (e is RefusalException or RegistryException or IOException or UnauthorizedAccessException)
            {
                stderr.WriteLine($"resident: cannot register {program}: {e.Message}");
                failures++;
            }
        });
        failures += results.Count(r => r.Action == RefreshAction.Failed);
        failures += Unlisted(registry, programs, confPath, s, stdout, stderr);
        if (!s.Quiet)
            stdout.WriteLine($"{confPath}: {added} {(s.DryRun ? "to register" : "registered")}, {RefreshCommand.Summary(results, s.DryRun)}"
                + (skipped > 0 ? $", {skipped} glob match(es) skipped (not registrable)" : ""));
        return failures == 0 ? 0 : 1;
    }

    /// <summary>
    /// The programs the file names, resolved (PATH, symlinks) and without duplicates, in file
    /// order, and those of them whose line asks for the init level. An entry naming nothing is an
    /// error; unregistrable glob matches are skipped.
    /// </summary>
    static (List<string> Programs, HashSet<string> InitLevel, Dictionary<string, uint> Variants) Programs(string confPath, TextWriter stderr,
        ref int failures, ref int skipped)
    {
        var programs = new List<string>();
        var initLevel = new HashSet<string>(StringComparer.Ordinal);
        var variants = new Dictionary<string, uint>(StringComparer.Ordinal);
        foreach (var entry in ResidentConf.Parse(File.ReadAllText(confPath), Environment.GetEnvironmentVariable("HOME")))
        {
            IReadOnlyList<string> matches;
            try { matches = ResidentConf.Expand(entry.Pattern); }
            catch (ArgumentException e) { stderr.WriteLine($"resident: {confPath}:{entry.Number}: {e.Message}"); failures++; continue; }
            if (matches.Count == 0)
                stderr.WriteLine($"resident: {confPath}:{entry.Number}: {entry.Pattern} matches nothing");
            foreach (string match in matches)
            {
                string path;
                try
                {
                    path = ProgramFile.Identify(match).Path;
                    if (entry.IsGlob)
                        ProgramFileCheck.Check(path);
                }
                catch (RefusalException e)
                {
                    if (entry.IsGlob) { skipped++; continue; }
                    stderr.WriteLine($"resident: {confPath}:{entry.Number}: {e.Message}");
                    failures++;
                    continue;
                }
                if (!programs.Contains(path))
                    programs.Add(path);
                if (entry.Init)
                    initLevel.Add(path);
                if (entry.Variants > 1)
                    variants[path] = entry.Variants;
            }
        }
        return (programs, initLevel, variants);
    }

    /// <summary>Registrations the file does not name: reported, or removed with --prune. Returns the failures.</summary>
    static int Unlisted(ImageRegistry registry, List<string> programs, string confPath, SyncSettings s, TextWriter stdout, TextWriter stderr)
    {
        int failures = 0;
        foreach (var e in registry.Entries().Where(e => e.ExePath is { } exe && !programs.Contains(exe)))
        {
            string who = $"{e.ExePath} (id {e.Id})";
            if (!s.Prune)
            {
                if (!s.Quiet) stdout.WriteLine($"not in {confPath}: {who} (kept; --prune removes it)");
                continue;
            }
            try
            {
                if (!s.DryRun) registry.Forget(e);
                if (!s.Quiet) stdout.WriteLine($"{(s.DryRun ? "would remove" : "removed")} {who}: not in {confPath}");
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
            {
                stderr.WriteLine($"resident: cannot remove {e.Path}: {ex.Message}");
                failures++;
            }
        }
        return failures;
    }
}
