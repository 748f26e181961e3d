using System.CommandLine;
using System.Text.Json;
using Spectre.Console;

namespace Resident.Cli;

/// <param name="Json">print a JSON array of <see cref="ListItem"/> instead of the table.</param>
/// <param name="SystemRegistryDir">when listing the user's registry: the system registry, whose images are mentioned in one line.</param>
public sealed record ListSettings(string RegistryDir, bool Json = false, string? SystemRegistryDir = null);

/// <summary>
/// resident list — one row per image: id, program, image size, level, state (fresh, or stale
/// with the reason the hook would fall back for), capture time.
/// </summary>
public static class ListCommand
{
    public static Command Create(TextWriter stdout, TextWriter stderr)
    {
        var json = new Option<bool>("--json") { Description = "a JSON array, one object per image (id, program, image, size, level, state, reason, captured, lazyBind, startRatio, normalMs, residentMs: what add timed, or null)" };
        var system = Cli.SystemOption();
        var cmd = new Command("list",
            "List registered programs and whether their images are still usable.\n" +
            "Examples: resident list   resident list --json | jq -r '.[] | select(.state != \"fresh\") | .program'")
        { json, system };
        cmd.SetAction(r => Run(new ListSettings(Cli.RegistryDirFor(r.GetValue(system)), r.GetValue(json),
            r.GetValue(system) ? null : Cli.RegistryDirFor(system: true)), stdout, stderr));
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
            stdout.WriteLine($"no programs registered in {registry.Directory}");
        else
            WriteTable(items, stdout);
        int system = CountImages(s.SystemRegistryDir);
        if (system > 0)
            stdout.WriteLine($"and {system} image(s) in the system registry {s.SystemRegistryDir}: resident list --system");
        return 0;
    }

    /// <summary>The hook uses the system registry's images too (after the user's): counted, not read.</summary>
    static int CountImages(string? dir)
    {
        try { return dir is not null && Directory.Exists(dir) ? Directory.GetFiles(dir, "*.img").Length : 0; }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { return 0; }
    }

    static void WriteTable(List<ListItem> items, TextWriter stdout)
    {
        var table = new Table().Border(TableBorder.Simple)
            .AddColumns("id", "program", "image", "level", "layouts", "state", "start", "captured");
        foreach (var i in items)
            table.AddRow(i.Id?.ToString() ?? "-", Markup.Escape(i.Program ?? Path.GetFileName(i.Image)),
                i.Size is long size ? Cli.FormatSize(size) : "-", i.Level ?? "-", i.VariantsText, Markup.Escape(i.StateText), i.StartText,
                i.Captured?.ToLocalTime().ToString("yyyy-MM-dd HH:mm:ss") ?? "-");
        Cli.Console(stdout).Write(table);
    }
}
