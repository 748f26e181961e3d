using System.CommandLine;
using Resident.Capture;

namespace Resident.Cli;

/// <param name="Programs">programs to deregister (by path or PATH name)</param>
/// <param name="Ids">registration ids to deregister</param>
/// <param name="All">deregister everything</param>
public sealed record RemoveSettings(IReadOnlyList<string> Programs, IReadOnlyList<ulong> Ids, bool All, string RegistryDir);

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
        var cmd = new Command("remove",
            "Deregister programs: their next exec links normally again.\n" +
            "Examples: resident remove /usr/bin/perl   resident remove --id 3   resident remove --all")
        { programs, ids, all };
        cmd.SetAction(r => Run(new RemoveSettings(r.GetValue(programs) ?? [], r.GetValue(ids) ?? [], r.GetValue(all), Cli.RegistryDir), stdout, stderr));
        return cmd;
    }

    public static int Run(RemoveSettings s, TextWriter stdout, TextWriter stderr)
    {
        if (!s.All && s.Programs.Count == 0 && s.Ids.Count == 0)
        {
            stderr.WriteLine("resident: remove needs PROG..., --id N or --all");
            return 1;
        }
        var registry = Cli.OpenRegistry(s.RegistryDir, stderr);
        if (registry is null) return 1;
        var entries = registry.Entries();
        var victims = new List<Registry.RegistryEntry>();
        int failures = 0;
        if (s.All) victims.AddRange(entries);
        foreach (ulong id in s.Ids)
        {
            var e = entries.FirstOrDefault(x => x.Image?.Header.Id == id);
            if (e is null) { stderr.WriteLine($"resident: no registration with id {id}"); failures++; }
            else victims.Add(e);
        }
        foreach (string program in s.Programs)
        {
            var e = FindProgram(registry, entries, program);
            if (e is null) { stderr.WriteLine($"resident: {program} is not registered"); failures++; }
            else victims.Add(e);
        }
        foreach (var e in victims.Distinct())
        {
            try
            {
                File.Delete(e.Path);
                stdout.WriteLine($"removed {e.Image?.ExePath ?? e.Path}{(e.Image is null ? "" : $" (id {e.Image.Header.Id})")}");
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
            {
                stderr.WriteLine($"resident: cannot remove {e.Path}: {ex.Message}"); failures++;
            }
        }
        return failures == 0 ? 0 : 1;
    }

    /// <summary>By the program's current dev/ino, else (program replaced or gone) by the registered path.</summary>
    static Registry.RegistryEntry? FindProgram(Registry.ImageRegistry registry, IReadOnlyList<Registry.RegistryEntry> entries, string program)
    {
        try
        {
            var file = ProgramFile.Identify(program);
            string path = registry.ImagePath(file.Dev, file.Ino);
            return entries.FirstOrDefault(e => e.Path == path) ?? entries.FirstOrDefault(e => e.Image?.ExePath == file.Path);
        }
        catch (CaptureException)
        {
            string full = program.Contains('/') ? Path.GetFullPath(program) : program;
            return entries.FirstOrDefault(e => e.Image?.ExePath == full);
        }
    }
}
