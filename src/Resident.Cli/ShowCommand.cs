using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using Spectre.Console;

namespace Resident.Cli;

/// <param name="Program">a registered program (path or name on PATH) or a registration id.</param>
public sealed record ShowSettings(string Program, string RegistryDir, bool Json = false);

/// <summary>
/// resident show PROG|ID — one image in detail: its regions and where their pages come from,
/// bytes stored vs mapped from files, patched pointers by kind, the files it depends on with
/// their recorded stamps (and whether they still match), the capture environment the hook
/// compares, and the kernel and cpu it belongs to.
/// </summary>
public static class ShowCommand
{
    public static Command Create(TextWriter stdout, TextWriter stderr)
    {
        var program = new Argument<string>("program") { Description = "registered program (path or name on PATH), or its id" };
        var json = new Option<bool>("--json") { Description = "one JSON object instead of text" };
        var system = Cli.SystemOption();
        var cmd = new Command("show", "Show what the image of a registered program holds and depends on.\nExamples: resident show perl   resident show 3 --json")
        { program, json, system };
        cmd.SetAction(r => Run(new ShowSettings(r.GetValue(program)!, Cli.RegistryDirFor(r.GetValue(system)), r.GetValue(json)), stdout, stderr));
        return cmd;
    }

    public static int Run(ShowSettings s, TextWriter stdout, TextWriter stderr)
    {
        var registry = Cli.OpenRegistry(s.RegistryDir, stderr);
        if (registry is null) return 1;
        var entries = registry.Entries();
        // A number names an id unless a file of that name exists (resident show ./3 for the file).
        var entry = ulong.TryParse(s.Program, NumberStyles.None, CultureInfo.InvariantCulture, out ulong id) && !File.Exists(s.Program)
            ? entries.FirstOrDefault(e => e.Id == id)
            : registry.Find(entries, s.Program);
        if (entry is null)
        {
            stderr.WriteLine($"resident: {s.Program} is not registered in {registry.Directory}");
            return 1;
        }
        if (entry.Image is not { } img)
        {
            stderr.WriteLine($"resident: {entry.Path}: corrupt image: {entry.Error}");
            return 1;
        }
        var item = ShowItem.From(entry, img);
        if (s.Json)
            stdout.WriteLine(JsonSerializer.Serialize(item, ResidentJson.Default.ShowItem));
        else
            WriteText(item, Cli.Console(stdout));
        return 0;
    }

    static void WriteText(ShowItem item, IAnsiConsole console)
    {
        var r = item.Registration;
        var m = item.Machine;
        console.WriteLine($"program     {r.Program} (id {r.Id})");
        console.WriteLine($"image       {r.Image}, {Cli.FormatSize(r.Size ?? 0)}, level {r.Level}{(r.LazyBind == true ? ", lazy binding" : "")}");
        console.WriteLine($"captured    {r.Captured?.ToLocalTime():yyyy-MM-dd HH:mm:ss}");
        console.WriteLine($"start       {(r.StartRatio is double ratio ? $"to main in {ratio:0.00} of a normal start's time ({r.NormalMs:0.00} → {r.ResidentMs:0.00} ms, timed by resident add)" : "not timed")}");
        console.WriteLine($"state       {r.StateText}");
        console.WriteLine(r.Variants > 1
            ? $"layouts     {r.Variants} variants, one picked per exec: {ListItem.BitsText(r.LayoutBits)} of entropy for the executable, libraries and ld.so "
              + "(stack, heap, vdso and new mappings: fully random)"
            : "layouts     1: the executable, libraries and ld.so lie where they were at capture in every restored start (0 bits; add --variants K)");
        foreach (var v in item.Layouts.Where(_ => r.Variants > 1))
            console.WriteLine($"  variant {v.Index,-3} ld.so {v.Ldso ?? "-"}, executable {v.Executable ?? "-"}: {v.State}");
        console.WriteLine($"memory      {Cli.FormatSize(item.BytesStored)} stored in the image, {Cli.FormatSize(item.BytesMapped)} mapped from files, {Cli.FormatSize(item.BytesZero)} zero");
        console.WriteLine($"prefault    {(item.PrefaultSpans == 0 ? "none" : $"{Cli.FormatSize(item.PrefaultBytes)} in {item.PrefaultSpans} spans (pages the constructors touched at capture)")}");
        console.WriteLine($"patched     {(item.Patches.Count == 0 ? "none" : string.Join(", ", item.Patches.Select(p => $"{p.Value} {p.Key}")))}");
        console.WriteLine($"kernel      {m.KernelRelease} {m.KernelVersion}");
        console.WriteLine($"cpu         platform {m.Platform}, hwcap {m.Hwcap}, hwcap2 {m.Hwcap2}, cpu_features {m.CpuFeatures}");
        console.WriteLine($"vdso        checksum {m.VdsoHash}");
        console.WriteLine($"stack limit {(m.RlimitStack == ulong.MaxValue ? "unlimited" : Cli.FormatSize((long)m.RlimitStack))}");
        console.WriteLine($"environment {(item.Environment.Count == 0 ? "(no LD_*, MALLOC_* or GLIBC_TUNABLES variable)" : string.Join(" ", item.Environment))}");
        if (r.Level == "init")
        {
            console.WriteLine($"looked up   {(item.DependsOn.Count == 0 ? "(the constructors looked up no variable)" : string.Join(" ", item.DependsOn.Select(d => d.Contains('=') ? d : d + " (unset)")))}"
                + (item.FallbackBytes is long fb ? $" - a start where one differs is restored at the link level ({Cli.FormatSize(fb)} of the image)" : "")
                + "; the files the constructors read are stamped below");
            console.WriteLine($"set         {(item.KernelState.Count == 0 ? "(the constructors set no kernel state)" : string.Join("; ", item.KernelState))}"
                + (item.KernelState.Count == 0 ? "" : " - set again by every restore"));
        }

        var regions = new Table().Border(TableBorder.Simple).AddColumns("address", "size", "prot", "source", "name");
        foreach (var g in item.Regions)
            regions.AddRow($"{g.Start}-{g.End}", Cli.FormatSize((long)g.Size), g.Prot, g.Source, Markup.Escape(g.Name));
        console.Write(regions);

        var files = new Table().Border(TableBorder.Simple).AddColumns("file", "kind", "dev:ino", "size", "mtime", "now");
        foreach (var f in item.Files)
            files.AddRow(Markup.Escape(f.Path), f.Kind, f.Kind == "absent" ? "-" : $"{f.Dev:x}:{f.Ino}", f.Kind == "absent" ? "-" : f.Size.ToString(),
                f.Mtime, Markup.Escape(f.State));
        console.Write(files);
    }
}
