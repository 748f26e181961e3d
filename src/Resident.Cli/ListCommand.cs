using System.CommandLine;
using Spectre.Console;

namespace Resident.Cli;

public sealed record ListSettings(string RegistryDir);

/// <summary>
/// resident list — one row per image: id, program, image size, level, state (fresh, or stale
/// with the reason the hook would fall back for), capture time.
/// </summary>
public static class ListCommand
{
    public static Command Create(TextWriter stdout, TextWriter stderr)
    {
        var cmd = new Command("list", "List registered programs and whether their images are still usable.\nExample: resident list");
        cmd.SetAction(_ => Run(new ListSettings(Cli.RegistryDir), stdout, stderr));
        return cmd;
    }

    public static int Run(ListSettings s, TextWriter stdout, TextWriter stderr)
    {
        var registry = Cli.OpenRegistry(s.RegistryDir, stderr);
        if (registry is null) return 1;
        var entries = registry.Entries();
        if (entries.Count == 0)
        {
            stdout.WriteLine($"no programs registered in {registry.Directory}");
            return 0;
        }
        var table = new Table().Border(TableBorder.Simple)
            .AddColumns("id", "program", "image", "level", "state", "captured");
        foreach (var e in entries)
        {
            if (e.Image is not { } img)
            {
                table.AddRow("-", Markup.Escape(Path.GetFileName(e.Path)), "-", "-", Markup.Escape($"corrupt: {e.Error}"), "-");
                continue;
            }
            string state = img.Staleness() is { } why ? $"stale: {why}" : "fresh";
            table.AddRow(img.Header.Id.ToString(), Markup.Escape(img.ExePath), Cli.FormatSize((long)img.Header.FileSize),
                img.LevelName, Markup.Escape(state),
                img.CaptureTime.ToLocalTime().ToString("yyyy-MM-dd HH:mm:ss"));
        }
        Cli.Console(stdout).Write(table);
        return 0;
    }
}
