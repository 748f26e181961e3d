using System.ComponentModel;
using System.Text.RegularExpressions;
using Xunit;
using Resident.Export;
using Resident.Tests.Integration.Harness;

namespace Resident.Tests.Export;

/// <summary>
/// Executables written by <see cref="ElfExecutableWriter"/>, run by the kernel and read by readelf:
/// the code runs from its entry, a data segment holds the bytes of its file slice, the program
/// headers are the segments in address order with no interpreter.
/// </summary>
public sealed partial class ElfExecutableWriterTests : IDisposable
{
    const uint R = 1, W = 2, X = 4;
    const ulong Code = 0x400000, Data = 0x600000;

    // mov edi, 42 ; mov eax, 231 ; syscall  (exit_group(42))
    static readonly byte[] Exit42 = [0xbf, 0x2a, 0x00, 0x00, 0x00, 0xb8, 0xe7, 0x00, 0x00, 0x00, 0x0f, 0x05];

    // movzx edi, byte [0x600123] ; movzx eax, byte [0x601800] ; add edi, eax ; mov eax, 231 ; syscall
    // (exit_group of the data segment's byte 0x123 plus its byte 0x1800, which lies past the file's end)
    static readonly byte[] ExitWithData =
    [
        0x0f, 0xb6, 0x3c, 0x25, 0x23, 0x01, 0x60, 0x00,
        0x0f, 0xb6, 0x04, 0x25, 0x00, 0x18, 0x60, 0x00,
        0x01, 0xc7,
        0xb8, 0xe7, 0x00, 0x00, 0x00,
        0x0f, 0x05,
    ];

    readonly string _dir = Directory.CreateTempSubdirectory("resident-elf-export-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    public void TheKernelRunsTheCodeAtTheEntry()
    {
        string exe = Executable("exit42", [new ExportSegment(Code, 0x1000, R | X, new ByteContent(Exit42))]);
        Assert.Equal(42, Run(exe));
    }

    /// <summary>
    /// The data segment is the file from 0x2000 on (all 0x11 but byte 0x2123, 77), two pages of
    /// which the second lies past the file's end: 77 + 0 if the slice starts at its offset and is
    /// zero-padded, 0x11 + 0x11 if it started at 0.
    /// </summary>
    [Fact]
    public void ADataSegmentHoldsItsFileSliceFromItsOffset()
    {
        Assert.Equal(77, Run(Executable("data", TwoSegments())));
    }

    [Fact]
    public void ReadelfSeesTheSegmentsInAddressOrderAndNoInterpreter()
    {
        string exe = Executable("data", TwoSegments());
        var r = ProcessRunner.Run(new RunSpec("readelf", ["-lW", exe]));
        Assert.True(r.ExitCode == 0, r.ToString());
        string text = r.StdoutText;
        Assert.Contains("Elf file type is EXEC", text);
        Assert.Contains("Entry point 0x400000", text);
        Assert.DoesNotContain("INTERP", text);
        Assert.DoesNotContain("DYNAMIC", text);

        var loads = LoadLine().Matches(text).Select(m => (
            Offset: Convert.ToUInt64(m.Groups[1].Value, 16), VAddr: Convert.ToUInt64(m.Groups[2].Value, 16),
            FileSize: Convert.ToUInt64(m.Groups[4].Value, 16), MemSize: Convert.ToUInt64(m.Groups[5].Value, 16),
            Flags: m.Groups[6].Value, Align: Convert.ToUInt64(m.Groups[7].Value, 16))).ToList();
        Assert.Equal([(Code, 0x1000UL, 0x1000UL, "R E", 0x1000UL), (Data, 0x2000UL, 0x2000UL, "RW ", 0x1000UL)],
            loads.Select(l => (l.VAddr, l.FileSize, l.MemSize, l.Flags, l.Align)));
        Assert.All(loads, l => Assert.Equal(0UL, l.Offset % 0x1000));
        Assert.Matches(@"GNU_STACK( +0x0+)+ RW ", text);
    }

    [Theory]
    [InlineData("overlap")]
    [InlineData("unaligned address")]
    [InlineData("unaligned size")]
    public void UnloadableSegmentsAreRefused(string fault)
    {
        var code = new ByteContent(Exit42);
        ExportSegment[] segments = fault switch
        {
            // out of order on purpose: the overlap is found in address order
            "overlap" => [new(Code + 0x1000, 0x1000, R, code), new(Code, 0x2000, R | X, code)],
            "unaligned address" => [new(Code + 0x800, 0x1000, R | X, code)],
            _ => [new(Code, 0x800, R | X, code)],
        };
        string path = Path.Combine(_dir, "refused");
        Assert.Throws<ArgumentException>(() => ElfExecutableWriter.Write(path, segments, Code));
        Assert.False(File.Exists(path));
    }

    [Fact]
    public void AFailedWriteLeavesNoFile()
    {
        string path = Path.Combine(_dir, "missing-source");
        ExportSegment[] segments = [new(Code, 0x1000, R | X, new ByteContent(Exit42)), new(Data, 0x1000, R, new FileSlice(Path.Combine(_dir, "absent"), 0))];
        Assert.Throws<FileNotFoundException>(() => ElfExecutableWriter.Write(path, segments, Code));
        Assert.False(File.Exists(path));
    }

    ExportSegment[] TwoSegments()
    {
        string file = Path.Combine(_dir, "data.bin");
        var bytes = Enumerable.Repeat((byte)0x11, 0x3000).ToArray();
        bytes[0x2123] = 77;
        File.WriteAllBytes(file, bytes);
        // the data segment first: the writer sorts them
        return [new(Data, 0x2000, R | W, new FileSlice(file, 0x2000)), new(Code, 0x1000, R | X, new ByteContent(ExitWithData))];
    }

    string Executable(string name, ExportSegment[] segments)
    {
        string path = Path.Combine(_dir, name);
        ElfExecutableWriter.Write(path, segments, Code);
        File.SetUnixFileMode(path, (UnixFileMode)0b111_101_101);
        return path;
    }

    /// <summary>
    /// The executable's exit code. Retried on ETXTBSY: a process forked by a test running in parallel
    /// can hold the just-written file open for writing until its own exec.
    /// </summary>
    static int Run(string exe)
    {
        for (int attempt = 1; ; attempt++)
        {
            try
            {
                return ProcessRunner.Run(new RunSpec(exe, []) { Timeout = TimeSpan.FromSeconds(10) }).ExitCode;
            }
            catch (Win32Exception e) when (e.NativeErrorCode == 26 && attempt < 5)
            {
                Thread.Sleep(100);
            }
        }
    }

    // readelf -lW: LOAD offset vaddr paddr filesz memsz flags align
    [GeneratedRegex(@"^\s*LOAD\s+0x([0-9a-f]+)\s+0x([0-9a-f]+)\s+0x([0-9a-f]+)\s+0x([0-9a-f]+)\s+0x([0-9a-f]+)\s([RWE ]{3})\s+0x([0-9a-f]+)$", RegexOptions.Multiline)]
    private static partial Regex LoadLine();
}
