using System.Diagnostics;
using System.Reflection;
using System.Runtime.InteropServices;
using System.Text;
using System.Text.RegularExpressions;
using Xunit;
using Resident.Export;
using Resident.Format;
using Resident.HookContract;

namespace Resident.Tests.Image;

/// <summary>
/// Pins the C# mirror (ImageFormat.cs) to native/image.h: the structs and their fields are
/// parsed from the header itself, a generated C program prints sizeof/offsetof of every one,
/// and each must equal the mirror's. A field added on either side only fails the test.
/// </summary>
public class LayoutTests
{
    static readonly Regex StructStart = new(@"^struct\s+(rs_\w+)\s*\{", RegexOptions.Compiled);
    static readonly Regex FieldLine = new(@"^\s*(?:struct\s+)?\w+\s+(\w+)\s*(?:\[\s*\w+\s*\])?\s*;", RegexOptions.Compiled);
    static readonly Regex Define = new(@"^#define\s+(RS_\w+)\s+(\d+u|0x[0-9a-f]+ull|\d+)\b", RegexOptions.Compiled);

    // Every numeric RS_ macro and its mirror; a macro missing here fails the test.
    static readonly Dictionary<string, ulong> Constants = new()
    {
        ["RS_VERSION"] = ImageFormat.Version,
        ["RS_PAGE"] = ImageFormat.PageSize,
        ["RS_LEVEL_LINK"] = ImageFormat.LevelLink,
        ["RS_LEVEL_INIT"] = ImageFormat.LevelInit,
        ["RS_FRAME_MAX"] = ImageFormat.FrameMax,
        ["RS_HF_LAZY_BIND"] = ImageFormat.HeaderFlagLazyBind,
        ["RS_FILE_MAPPED"] = ImageFormat.FileMapped,
        ["RS_FILE_STAMP"] = ImageFormat.FileStamp,
        ["RS_FILE_ABSENT"] = ImageFormat.FileAbsent,
        ["RS_REGION_FILE"] = ImageFormat.RegionFile,
        ["RS_REGION_IMAGE"] = ImageFormat.RegionImage,
        ["RS_REGION_ZERO"] = ImageFormat.RegionZero,
        ["RS_RF_PATCHED"] = ImageFormat.RegionFlagPatched,
        ["RS_PATCH_ARGC"] = ImageFormat.PatchArgc,
        ["RS_PATCH_ARGV"] = ImageFormat.PatchArgv,
        ["RS_PATCH_ENVP"] = ImageFormat.PatchEnvp,
        ["RS_PATCH_AUXV"] = ImageFormat.PatchAuxv,
        ["RS_PATCH_ARG_STRING"] = ImageFormat.PatchArgString,
        ["RS_PATCH_ENV_STRING"] = ImageFormat.PatchEnvString,
        ["RS_PATCH_AUXV_VALUE"] = ImageFormat.PatchAuxvValue,
        ["RS_PATCH_ARGC_COUNT"] = ImageFormat.PatchArgcCount,
        ["RS_PATCH_ARG_BASENAME"] = ImageFormat.PatchArgBasename,
        ["RS_PATCH_MANGLED"] = ImageFormat.PatchMangled,
        ["RS_PATCH_MANGLED_ARGC"] = ImageFormat.PatchMangledArgc,
        ["RS_PATCH_RANDOM"] = ImageFormat.PatchRandom,
        ["RS_PATCH_CANARY"] = ImageFormat.PatchCanary,
        ["RS_PATCH_KIND_MAX"] = ImageFormat.PatchCanary,
        ["RS_KOP_SIGACTION"] = ImageFormat.KopSigaction,
        ["RS_KOP_SIGPROCMASK"] = ImageFormat.KopSigprocmask,
        ["RS_KOP_UMASK"] = ImageFormat.KopUmask,
        ["RS_KOP_RLIMIT"] = ImageFormat.KopRlimit,
        ["RS_KOP_NAME"] = ImageFormat.KopName,
        ["RS_KOP_MAX"] = ImageFormat.KopName,
        ["RS_VDSO_VVAR"] = ImageFormat.VdsoVvar,
        ["RS_VDSO_VVAR_VCLOCK"] = ImageFormat.VdsoVvarVclock,
        ["RS_VDSO_VDSO"] = ImageFormat.VdsoVdso,
        ["RS_MAX_VDSO_VMAS"] = ImageFormat.MaxVdsoVmas,
        ["RS_FNV_OFFSET"] = ImageFormat.FnvOffset,
        ["RS_FNV_PRIME"] = ImageFormat.FnvPrime,
        ["RS_HEAP_PREFAULT_MAX"] = ImageFormat.HeapPrefaultMax,
        ["RS_PREFAULT_MAX"] = ImageFormat.PrefaultMax,
        ["RS_VARIANTS_MAX"] = ImageFormat.VariantsMax,
        ["RS_KOP_TABLE_MAX"] = ImageFormat.KernelOpsMax,
    };

    [Fact]
    public void EveryStructAndFieldMatchesTheHeader()
    {
        var structs = ParseStructs(File.ReadAllLines(TestPaths.ImageHeader));
        Assert.Equal(8, structs.Count);
        var c = RunLayoutProgram(structs);
        foreach (var (name, fields) in structs)
        {
            var type = MirrorType(name);
            Assert.Equal(c[name], (ulong)Marshal.SizeOf(type));
            Assert.Equal(c[name], UnsafeSizeOf(type));
            var mirror = type.GetFields(BindingFlags.Instance | BindingFlags.Public | BindingFlags.NonPublic)
                .OrderBy(f => (long)Marshal.OffsetOf(type, f.Name)).ToList();
            Assert.Equal(fields.Select(Pascal), mirror.Select(f => f.Name));
            foreach (var f in mirror)
            {
                string key = $"{name}.{fields[mirror.IndexOf(f)]}";
                Assert.True(c[key + "@"] == (ulong)Marshal.OffsetOf(type, f.Name), $"offset of {key}");
                Assert.True(c[key] == (ulong)Marshal.SizeOf(f.FieldType), $"size of {key}");
            }
        }
    }

    [Fact]
    public void EveryConstantMatchesTheHeader()
    {
        var lines = File.ReadAllLines(TestPaths.ImageHeader);
        var defined = lines.Select(l => Define.Match(l)).Where(m => m.Success)
            .ToDictionary(m => m.Groups[1].Value, m => ParseNumber(m.Groups[2].Value));
        Assert.Equal(Constants.Keys.Order(), defined.Keys.Order());
        foreach (var (name, value) in defined)
            Assert.True(Constants[name] == value, name);
        Assert.Contains($"#define RS_MAGIC \"{ImageFormat.Magic}\"", lines.Select(l => l.Split(" /*")[0]));
    }

    [Fact]
    public void ChecksumIsFnv1aOverLittleEndianWords()
    {
        // Reference values computed by the C definition in image.h (see RunChecksumProgram).
        var data = Enumerable.Range(0, 64).Select(i => (byte)(i * 7 + 3)).ToArray();
        Assert.Equal(RunChecksumProgram(data), ImageFormat.Checksum(data));
        Assert.Equal(ImageFormat.FnvOffset, ImageFormat.Checksum([]));
        Assert.Throws<ArgumentException>(() => ImageFormat.Checksum(new byte[5]));
    }

    static ulong ParseNumber(string s) =>
        s.StartsWith("0x") ? Convert.ToUInt64(s[2..].TrimEnd('u', 'l'), 16) : ulong.Parse(s.TrimEnd('u'));

    static string Pascal(string snake) =>
        string.Concat(snake.Split('_').Select(p => char.ToUpperInvariant(p[0]) + p[1..]));

    static Type MirrorType(string cName) =>
        typeof(RsHeader).Assembly.GetType("Resident.Format." + Pascal(cName))
        ?? throw new Xunit.Sdk.XunitException($"no C# mirror for struct {cName}");

    static ulong UnsafeSizeOf(Type t) =>
        (ulong)(int)typeof(System.Runtime.CompilerServices.Unsafe).GetMethod("SizeOf")!
            .MakeGenericMethod(t).Invoke(null, null)!;

    static List<(string Name, List<string> Fields)> ParseStructs(string[] lines)
    {
        var result = new List<(string, List<string>)>();
        List<string>? current = null;
        foreach (var line in lines)
        {
            var s = StructStart.Match(line);
            if (s.Success) { current = []; result.Add((s.Groups[1].Value, current)); continue; }
            if (current == null) continue;
            if (line.StartsWith("};")) { current = null; continue; }
            var f = FieldLine.Match(line);
            if (f.Success) current.Add(f.Groups[1].Value);
        }
        return result;
    }

    /// <summary>Keys: "rs_x" = sizeof, "rs_x.f" = sizeof field, "rs_x.f@" = offsetof.</summary>
    static Dictionary<string, ulong> RunLayoutProgram(List<(string Name, List<string> Fields)> structs)
    {
        var src = new StringBuilder("#include <stdio.h>\n#include <stddef.h>\n#include \"image.h\"\nint main(void) {\n");
        foreach (var (name, fields) in structs)
        {
            src.Append($"printf(\"{name} %zu\\n\", sizeof(struct {name}));\n");
            foreach (var f in fields)
            {
                src.Append($"printf(\"{name}.{f} %zu\\n\", sizeof(((struct {name} *)0)->{f}));\n");
                src.Append($"printf(\"{name}.{f}@ %zu\\n\", offsetof(struct {name}, {f}));\n");
            }
        }
        src.Append("return 0;\n}\n");
        return CompileAndRun(src.ToString()).Split('\n', StringSplitOptions.RemoveEmptyEntries)
            .Select(l => l.Split(' ')).ToDictionary(p => p[0], p => ulong.Parse(p[1]));
    }

    /// <summary>The export descriptor's offsets (Export/ExportDescriptor.cs) against native/export.h.</summary>
    [Fact]
    public void ExportDescriptor_MatchesExportH()
    {
        string src = "#include <stdio.h>\n#include <stddef.h>\n#include <string.h>\n#include \"export.h\"\nint main(void) {\n"
            + "printf(\"%zu %zu %zu %zu %zu %zu %zu %zu %zu %zu %zu %zu %d %u %zu\\n\", offsetof(struct rs_export, version), "
            + "offsetof(struct rs_export, cpuid_count), offsetof(struct rs_export, meta), offsetof(struct rs_export, meta_size), "
            + "offsetof(struct rs_export, file_size), offsetof(struct rs_export, self_start), offsetof(struct rs_export, self_end), "
            + "offsetof(struct rs_export, brk_from), offsetof(struct rs_export, cpuid), sizeof(struct rs_export_cpuid), "
            + "offsetof(struct rs_export_cpuid, value), sizeof(struct rs_export), RS_EXPORT_CPUID_MAX, RS_EXPORT_VERSION, "
            + "strlen(RS_EXPORT_MAGIC));\nreturn 0;\n}\n";
        var c = CompileAndRun(src).Trim().Split(' ').Select(ulong.Parse).ToArray();
        ulong[] cs = [ExportDescriptor.VersionOffset, ExportDescriptor.CpuidCountOffset, ExportDescriptor.MetaOffset,
            ExportDescriptor.MetaSizeOffset, ExportDescriptor.FileSizeOffset, ExportDescriptor.SelfStartOffset, ExportDescriptor.SelfEndOffset,
            ExportDescriptor.BrkFromOffset, ExportDescriptor.CpuidOffset, ExportDescriptor.CpuidSize, ExportDescriptor.CpuidValueOffset,
            ExportDescriptor.Size, ExportDescriptor.CpuidMax, ExportDescriptor.Version, (ulong)ExportDescriptor.Magic.Length];
        Assert.Equal(c, cs);
    }

    static ulong RunChecksumProgram(byte[] data)
    {
        string bytes = string.Join(",", data);
        string src = "#include <stdio.h>\n#include <string.h>\n#include \"image.h\"\n" +
            $"static const unsigned char d[] = {{{bytes}}};\n" +
            "int main(void) { rs_u64 h = RS_FNV_OFFSET; for (size_t i = 0; i < sizeof d; i += 8) {\n" +
            "rs_u64 w; memcpy(&w, d + i, 8); h = (h ^ w) * RS_FNV_PRIME; }\n" +
            "printf(\"%llu\\n\", h); return 0; }\n";
        return ulong.Parse(CompileAndRun(src).Trim());
    }

    static string CompileAndRun(string source)
    {
        string dir = Directory.CreateTempSubdirectory("resident-layout-").FullName;
        try
        {
            File.WriteAllText(Path.Combine(dir, "t.c"), source);
            string exe = Path.Combine(dir, "t");
            Run("gcc", ["-std=c11", "-Wall", "-Werror", "-I", Path.GetDirectoryName(TestPaths.ImageHeader)!,
                "-o", exe, Path.Combine(dir, "t.c")]);
            return Run(exe, []);
        }
        finally { Directory.Delete(dir, true); }
    }

    static string Run(string file, string[] args)
    {
        var psi = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in args) psi.ArgumentList.Add(a);
        using var p = Process.Start(psi)!;
        string stdout = p.StandardOutput.ReadToEnd();
        string stderr = p.StandardError.ReadToEnd();
        p.WaitForExit();
        Assert.True(p.ExitCode == 0, $"{file} failed: {stderr}");
        return stdout;
    }
}
