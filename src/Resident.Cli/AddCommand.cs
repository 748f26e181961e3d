using System.CommandLine;
using Resident.Capture;
using Resident.Registry;

namespace Resident.Cli;

public sealed record AddSettings(IReadOnlyList<string> Programs, string RegistryDir);

/// <summary>
/// resident add PROG... — captures each program right after ld.so relocated it and stores the
/// image in the registry. One line per program; exit status 1 if any program failed. A failed
/// capture never touches an existing image of that program.
/// </summary>
public static class AddCommand
{
    public static Command Create(TextWriter stdout, TextWriter stderr)
    {
        var programs = new Argument<string[]>("program") { Arity = ArgumentArity.OneOrMore, Description = "program name (searched on PATH) or path" };
        var cmd = new Command("add",
            "Register programs: capture each one once and store its image.\n" +
            "Example: resident add /usr/bin/perl python3.11 clang-format") { programs };
        cmd.SetAction(r => Run(new AddSettings(r.GetValue(programs)!, Cli.RegistryDir), stdout, stderr));
        return cmd;
    }

    public static int Run(AddSettings s, TextWriter stdout, TextWriter stderr)
    {
        var registry = Cli.OpenRegistry(s.RegistryDir, stderr);
        if (registry is null) return 1;
        try { registry.EnsureWritable(); }
        catch (RegistryException e) { stderr.WriteLine($"resident: {e.Message}"); return 1; }

        var env = Environment.GetEnvironmentVariables().Cast<System.Collections.DictionaryEntry>()
            .ToDictionary(e => (string)e.Key, e => (string?)e.Value ?? "");
        int failures = 0;
        foreach (string program in s.Programs)
        {
            try
            {
                stdout.WriteLine(AddOne(registry, program, env));
            }
            catch (Exception e) when (e is CaptureException or RegistryException or IOException or UnauthorizedAccessException)
            {
                stderr.WriteLine($"resident: cannot register {program}: {e.Message}");
                failures++;
            }
        }
        return failures == 0 ? 0 : 1;
    }

    static string AddOne(ImageRegistry registry, string program, IReadOnlyDictionary<string, string> env)
    {
        var file = ProgramFile.Identify(program);
        string imagePath = registry.ImagePath(file.Dev, file.Ino);
        // Re-registering keeps the program's id: ids name registrations, not captures.
        var entries = registry.Entries();
        ulong id = entries.FirstOrDefault(e => e.Path == imagePath)?.Image?.Header.Id ?? registry.AllocateId(entries);
        var summary = Capturer.Capture(file.Path, imagePath, id, env);
        string lazy = summary.LazyBind ? " (lazy binding: the program does not start with LD_BIND_NOW=1)" : "";
        return $"registered {summary.ProgramPath} (id {id}): image {Cli.FormatSize(summary.ImageSize)}, captured in {summary.Elapsed.TotalMilliseconds:0} ms{lazy}";
    }
}
