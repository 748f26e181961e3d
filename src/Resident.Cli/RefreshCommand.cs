using System.CommandLine;
using Resident.Registry;

namespace Resident.Cli;

/// <param name="Programs">only these registered programs; empty: every image.</param>
/// <param name="DryRun">say what would be done, change nothing.</param>
/// <param name="Rerandomize">capture fresh images too, every layout variant anew.</param>
public sealed record RefreshSettings(IReadOnlyList<string> Programs, string RegistryDir, bool DryRun = false, bool Quiet = false,
    bool System = false, bool Rerandomize = false);

/// <summary>
/// resident refresh [PROG...] — re-captures every stale image (executable, library, ld.so cache,
/// kernel or cpu changed) under its id, and deletes the images of programs that are gone. One
/// line per change, a summary line; exit status 1 if any re-capture failed.
/// </summary>
public static class RefreshCommand
{
    public static Command Create(TextWriter stdout, TextWriter stderr)
    {
        var programs = new Argument<string[]>("program") { Arity = ArgumentArity.ZeroOrMore, Description = "registered programs to refresh (default: all)" };
        var dryRun = new Option<bool>("--dry-run", "-n") { Description = "only say what would be re-captured or removed" };
        var quiet = Cli.QuietOption();
        var system = Cli.SystemOption();
        var rerandomize = new Option<bool>("--rerandomize")
        {
            Description = "capture fresh images again too, each of their layout variants in a new address layout: addresses leaked "
                + "from earlier runs stop being valid. The new set is written beside the old one and switched to at the end: a "
                + "start meanwhile uses a complete image (contrib/systemd/resident-rerandomize.timer runs it weekly)",
        };
        var cmd = new Command("refresh",
            "Re-capture stale images and remove those whose program is gone.\n" +
            "Examples: resident refresh   resident refresh --dry-run   resident refresh --system --quiet  (the apt hook)\n" +
            "          resident refresh --rerandomize   (new address layouts for every image)")
        { programs, dryRun, quiet, system, rerandomize };
        cmd.SetAction(r => Run(new RefreshSettings(r.GetValue(programs) ?? [], Cli.RegistryDirFor(r.GetValue(system)), r.GetValue(dryRun),
            r.GetValue(quiet), r.GetValue(system), r.GetValue(rerandomize)), stdout, stderr));
        return cmd;
    }

    public static int Run(RefreshSettings s, TextWriter stdout, TextWriter stderr)
    {
        var registry = Cli.OpenRegistry(s.RegistryDir, stderr, s.System, writable: !s.DryRun);
        if (registry is null) return 1;
        var entries = registry.Entries();
        var selected = new List<RegistryEntry>();
        int failures = 0;
        foreach (string program in s.Programs)
        {
            if (registry.Find(entries, program) is { } e) selected.Add(e);
            else { stderr.WriteLine($"resident: {program} is not registered"); failures++; }
        }
        if (s.Programs.Count == 0)
            selected.AddRange(entries);

        var results = new List<RefreshResult>();
        var registrar = new Registrar(registry, Registrar.ProcessEnvironment());
        Cli.ForEachWithProgress(selected, e => e.ExePath ?? e.Path, s.Quiet, stdout, (entry, output) =>
        {
            var result = registrar.Refresh(entry, s.DryRun, s.Rerandomize);
            Report(result, s.DryRun, s.Quiet, output, stderr);
            results.Add(result);
        });
        if (!s.Quiet)
            stdout.WriteLine(Summary(results, s.DryRun));
        return failures == 0 && results.All(r => r.Action != RefreshAction.Failed) ? 0 : 1;
    }

    /// <summary>One line for anything but a fresh image: stdout, or stderr for a failure. Shared with sync.</summary>
    internal static void Report(RefreshResult r, bool dryRun, bool quiet, TextWriter stdout, TextWriter stderr)
    {
        string who = $"{r.Program} (id {r.Id})";
        if (r.Action == RefreshAction.Failed)
            stderr.WriteLine($"resident: cannot refresh {who}: {r.Reason}");
        else if (quiet || r.Action == RefreshAction.Fresh)
            return;
        else if (r.Action == RefreshAction.Removed)
            stdout.WriteLine($"{(dryRun ? "would remove" : "removed")} {who}: {r.Reason}");
        else if (dryRun)
            stdout.WriteLine($"would refresh {who}: {r.Reason}");
        else if (r.Action == RefreshAction.Restamped)
            stdout.WriteLine($"refreshed {who}: {r.Reason}; it loads the same files: stamps rewritten in {r.Took.TotalMilliseconds:0} ms");
        else
            stdout.WriteLine($"refreshed {who}: {r.Reason}; image {Cli.FormatSize(r.Capture!.ImageSize)}, captured in {r.Capture.Elapsed.TotalMilliseconds:0} ms");
    }

    internal static string Summary(IReadOnlyList<RefreshResult> results, bool dryRun)
    {
        int Count(RefreshAction a) => results.Count(r => r.Action == a);
        return dryRun
            ? $"{Count(RefreshAction.Recaptured)} would be refreshed, {Count(RefreshAction.Removed)} removed, {Count(RefreshAction.Fresh)} fresh"
            : $"{Count(RefreshAction.Recaptured) + Count(RefreshAction.Restamped)} refreshed, {Count(RefreshAction.Removed)} removed, {Count(RefreshAction.Fresh)} fresh, {Count(RefreshAction.Failed)} failed";
    }
}
