using System.CommandLine;
using Resident.Registry;

namespace Resident.Cli;

/// <param name="Programs">programs to deregister (by path or PATH name)</param>
/// <param name="Ids">registration ids to deregister</param>
/// <param name="All">deregister everything</param>
/// <param name="System">RegistryDir is the system registry.</param>
public sealed record RemoveSettings(IReadOnlyList<string> Programs, IReadOnlyList<ulong> Ids, bool All, string RegistryDir,
    bool System = false, bool Quiet = false);

/// <summary>
/// resident remove PROG... | --id N... | --all — deletes images. A program that was never
/// registered, or an unknown id, is an error (exit 1) but does not stop the other removals.
/// </summary>
public static class RemoveCommand
{
    public static Command Create(TextWriter stdout, TextWriter stderr)
    {
        var programs = new Argument<string[]>("program") { Arity = ArgumentArity.ZeroOrMore, Description = "registered program (path or name on PATH)" };
        var ids = new Option<ulong[]>("--id") { Description = "registration id, as shown by 'resident list'", AllowMultipleArgumentsPerToken = true };
        var all = new Option<bool>("--all") { Description = "deregister every program" };
        var system = Cli.SystemOption();
        var quiet = Cli.QuietOption();
        var cmd = new Command("remove",
            "Deregister programs: their next exec links normally again.\n" +
            "Examples: resident remove /usr/bin/perl   resident remove --id 3   resident remove --all")
        { programs, ids, all, system, quiet };
        cmd.SetAction(r => Run(new RemoveSettings(r.GetValue(programs) ?? [], r.GetValue(ids) ?? [], r.GetValue(all),
            Cli.RegistryDirFor(r.GetValue(system)), r.GetValue(system), r.GetValue(quiet)), stdout, stderr));
        return cmd;
    }

    public static int Run(RemoveSettings s, TextWriter stdout, TextWriter stderr)
    {
        if (!s.All && s.Programs.Count == 0 && s.Ids.Count == 0)
        {
            stderr.WriteLine("resident: remove needs PROG..., --id N or --all");
            return 1;
        }
        var registry = Cli.OpenRegistry(s.RegistryDir, stderr, s.System);
        if (registry is null) return 1;
        var entries = registry.Entries();
        var victims = new List<Registry.RegistryEntry>();
        int failures = 0;
        if (s.All) victims.AddRange(entries);
        foreach (ulong id in s.Ids)
        {
            var e = entries.FirstOrDefault(x => x.Id == id);
            if (e is null) { stderr.WriteLine($"resident: no registration with id {id}"); failures++; }
            else victims.Add(e);
        }
        foreach (string program in s.Programs)
        {
            var e = registry.Find(entries, program);
            if (e is null) { stderr.WriteLine($"resident: {program} is not registered"); failures++; }
            else victims.Add(e);
        }
        foreach (var e in victims.Distinct())
        {
            try
            {
                registry.Forget(e);
                if (!s.Quiet)
                    stdout.WriteLine($"removed {e.ExePath ?? e.Path}{(e.Id is null ? "" : $" (id {e.Id})")}");
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
            {
                stderr.WriteLine($"resident: cannot remove {e.Path}: {ex.Message}"); failures++;
            }
        }
        return failures == 0 ? 0 : 1;
    }
}
