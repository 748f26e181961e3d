using System.CommandLine;
using System.Globalization;

namespace Resident.Cli;

/// <summary>
/// A DragonFly resident(8) command line, parsed: the actions in the order given (-x, -R, -l),
/// then the programs — registered, or with -d deregistered, with -f through a wrapper.
/// </summary>
/// <param name="Error">a usage error; nothing is done then.</param>
public sealed record DragonflySettings(IReadOnlyList<DragonflyAction> Actions, IReadOnlyList<string> Programs, bool Delete, bool Force,
    string RegistryDir, string? Error = null)
{
    /// <summary>The hook registering times starts with, as add does (null: not timed).</summary>
    public string? HookPath { get; init; }
}

/// <param name="Flag">'x' (remove <paramref name="Id"/>), 'R' (remove all) or 'l' (list).</param>
public sealed record DragonflyAction(char Flag, ulong Id = 0);

/// <summary>
/// resident [-l] [-f] [-x id] [-d] [-R] program ... — DragonFly BSD's resident(8) command line,
/// next to the verbs, mapped onto them: PROG... → add (timed: a slower program is refused; add --force registers it), -f → add --through-wrapper, -d PROG... →
/// remove, -x ID → remove --id, -R → remove --all, -l → list. Flags may be bundled (-lR) and -x
/// takes its id attached or as the next word; options end at the first program or "--".
/// Unlike DragonFly's counter, ids are never handed out twice (see ImageRegistry).
/// </summary>
public static class DragonflyCommand
{
    /// <summary>
    /// True when ARGS is the DragonFly form: the first word is a single-dash option made of
    /// DragonFly's letters, or neither a verb nor an option of the parser (a program).
    /// </summary>
    public static bool Applies(string[] args, RootCommand root)
    {
        if (args.Length == 0)
            return false;
        string first = args[0];
        if (first.Length > 1 && first[0] == '-' && first[1] != '-')
            return first[1..].All(c => "lfxdR".Contains(c)) || first.StartsWith("-x", StringComparison.Ordinal);
        // "[suggest:N]" and other System.CommandLine directives (shell completion) are the parser's.
        return first[0] is not ('-' or '[') && !root.Subcommands.Any(c => c.Name == first || c.Aliases.Contains(first));
    }

    /// <summary>getopt("lfx:dR") as DragonFly's resident.c, stopping at the first program.</summary>
    public static DragonflySettings Parse(string[] args, string registryDir)
    {
        var actions = new List<DragonflyAction>();
        bool delete = false, force = false;
        int i = 0;
        for (; i < args.Length && args[i].Length > 1 && args[i][0] == '-'; i++)
        {
            if (args[i] == "--") { i++; break; }
            string word = args[i];
            for (int j = 1; j < word.Length; j++)
            {
                char c = word[j];
                switch (c)
                {
                    case 'l': actions.Add(new DragonflyAction('l')); break;
                    case 'R': actions.Add(new DragonflyAction('R')); break;
                    case 'd': delete = true; break;
                    case 'f': force = true; break;
                    case 'x':
                        string value = j + 1 < word.Length ? word[(j + 1)..] : i + 1 < args.Length ? args[++i] : "";
                        if (!ulong.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out ulong id))
                            return Usage(registryDir, value.Length == 0 ? "-x needs an id" : $"-x {value}: not an id");
                        actions.Add(new DragonflyAction('x', id));
                        j = word.Length;
                        break;
                    default:
                        return Usage(registryDir, $"unknown option -{c}");
                }
            }
        }
        var programs = args[i..];
        if (actions.Count == 0 && programs.Length == 0)
            return Usage(registryDir, "no program given");
        if (delete && force)
            return Usage(registryDir, "-d and -f do not go together");
        return new DragonflySettings(actions, programs, delete, force, registryDir);
    }

    static DragonflySettings Usage(string registryDir, string error) => new([], [], false, false, registryDir, error);

    /// <summary>Runs the actions, then the programs; exit status 1 if anything failed (each failure has its line).</summary>
    public static int Run(DragonflySettings s, TextWriter stdout, TextWriter stderr)
    {
        if (s.Error is not null)
        {
            stderr.WriteLine($"resident: {s.Error}\nusage: resident [-l] [-f] [-x id] [-d] [-R] program ...   (or resident --help)");
            return 2;
        }
        int status = 0;
        foreach (var a in s.Actions)
            status |= a.Flag switch
            {
                'x' => RemoveCommand.Run(new RemoveSettings([], [a.Id], false, s.RegistryDir), stdout, stderr),
                'R' => RemoveCommand.Run(new RemoveSettings([], [], true, s.RegistryDir), stdout, stderr),
                _ => ListCommand.Run(new ListSettings(s.RegistryDir), stdout, stderr),
            };
        if (s.Programs.Count > 0)
            status |= s.Delete
                ? RemoveCommand.Run(new RemoveSettings(s.Programs, [], false, s.RegistryDir), stdout, stderr)
                : AddCommand.Run(new AddSettings(s.Programs, s.RegistryDir, ThroughWrapper: s.Force, HookPath: s.HookPath), stdout, stderr);
        return status == 0 ? 0 : 1;
    }
}
