using System.CommandLine;
using System.Text.Json;
using Spectre.Console;

namespace Resident.Cli;

/// <param name="Json">print a JSON array of <see cref="ListItem"/> instead of the table.</param>
public sealed record ListSettings(string RegistryDir, bool Json = false);

/// <summary>
/// resident list — one row per image: id, program, image size, level, state (fresh, or stale
/// with the reason the hook would fall back for), capture time.
/// </summary>
public static class ListCommand
{
    public static Command Create(TextWriter stdout, TextWriter stderr)
    {
        var json = new Option<bool>("--json") { Description = "a JSON array, one object per image (id, program, image, size, level, state, reason, captured, lazyBind)" };
        var system = Cli.SystemOption();
        var cmd = new Command("list",
            "List registered programs and whether their images are still usable.\n" +
            "Examples: resident list   resident list --json | jq -r '.[] | select(.state != \"fresh\") | .program'")
        { json, system };
        cmd.SetAction(r => Run(new ListSettings(Cli.RegistryDirFor(r.GetValue(system)), r.GetValue(json)), stdout, stderr));
        return cmd;
    }

    public static int Run(ListSettings s, TextWriter stdout, TextWriter stderr)
    {
        var registry = Cli.OpenRegistry(s.RegistryDir, stderr);
        if (registry is null) return 1;
        var items = registry.Entries().Select(ListItem.From).ToList();
        if (s.Json)
        {
            stdout.WriteLine(JsonSerializer.Serialize(items, ResidentJson.Default.ListListItem));
            return 0;
        }
        if (items.Count == 0)
        {
            stdout.WriteLine($"no programs registered in {registry.Directory}");
            return 0;
        }
        var table = new Table().Border(TableBorder.Simple)
            .AddColumns("id", "program", "image", "level", "state", "captured");
        foreach (var i in items)
            table.AddRow(i.Id?.ToString() ?? "-", Markup.Escape(i.Program ?? Path.GetFileName(i.Image)),
                i.Size is long size ? Cli.FormatSize(size) : "-", i.Level ?? "-", Markup.Escape(i.StateText),
                i.Captured?.ToLocalTime().ToString("yyyy-MM-dd HH:mm:ss") ?? "-");
        Cli.Console(stdout).Write(table);
        return 0;
    }
}
