using System.Text.RegularExpressions;
using Iced.Intel;
using Resident.Capture;
using Resident.Elf;

namespace Resident.Image;

/// <summary>
/// What the image needs from the ld.so file itself, as offsets from its load base:
/// where <c>struct cpu_features</c> lives (read from the code of the exported
/// <c>_dl_x86_get_cpu_features</c>) and a <c>syscall; ret</c> in its text. ld.so is a files[]
/// entry that the restorer validates, so the offsets hold at every restore.
/// </summary>
public sealed partial class LdsoFacts
{
    const uint PfX = 1;

    // sizeof(struct cpu_features): 480 in glibc 2.36 (checked with gdb ptype). For another
    // version only the part whose layout has been stable is compared: basic (20 bytes) and
    // features[9] (9 x 32 bytes), the CPUID leaves that ifunc resolvers read.
    const int CpuFeaturesLen236 = 480;
    const int CpuFeaturesLenStable = 308;
    // Byte 27 is leaf 1 EBX bits 24-31, the initial APIC id: it names the core the capture ran on.
    const int ApicIdByte = 27;

    public ulong CpuFeaturesOff { get; }
    public int CpuFeaturesLen { get; }
    public ulong SyscallRetOff { get; }
    public string? GlibcVersion { get; }

    LdsoFacts(ulong cpuOff, int cpuLen, ulong syscallRet, string? version)
    {
        CpuFeaturesOff = cpuOff; CpuFeaturesLen = cpuLen; SyscallRetOff = syscallRet; GlibcVersion = version;
    }

    /// <summary>Reads the ld.so file at <paramref name="path"/>; CaptureException if a pattern is unknown.</summary>
    public static LdsoFacts Read(string path)
    {
        try
        {
            var elf = ElfFile.Read(path);
            // Offsets are from AT_BASE, which is the load bias only when the first segment is at 0.
            if (elf.ProgramHeaders.FirstOrDefault(ph => ph.Type == ElfFile.PtLoad).VAddr != 0)
                throw new CaptureException($"{path}: the dynamic loader is not linked at address 0");
            byte[] bytes = File.ReadAllBytes(path);
            ulong fn = DynamicSymbols.Find(bytes, "_dl_x86_get_cpu_features")
                ?? throw new CaptureException($"{path}: no _dl_x86_get_cpu_features in .dynsym");
            ulong cpu = DecodeCpuFeaturesAddress(elf.ReadAtVAddr(fn, 16), fn)
                ?? throw new CaptureException($"{path}: _dl_x86_get_cpu_features is not \"lea rax,[rip+X]; ret\"");
            string? version = GlibcBanner(bytes);
            int len = version == "2.36" ? CpuFeaturesLen236 : CpuFeaturesLenStable;
            ulong sysret = FindSyscallRet(bytes, elf)
                ?? throw new CaptureException($"{path}: no \"syscall; ret\" in executable text");
            return new LdsoFacts(cpu, len, sysret, version);
        }
        catch (Exception e) when (e is InvalidDataException or ArgumentOutOfRangeException or IndexOutOfRangeException)
        {
            throw new CaptureException($"{path}: malformed ELF file");
        }
    }

    /// <summary>0xff everywhere except the APIC id byte: the mask stored next to the blob.</summary>
    public byte[] CpuFeaturesMask()
    {
        var mask = Enumerable.Repeat((byte)0xff, CpuFeaturesLen).ToArray();
        mask[ApicIdByte] = 0;
        return mask;
    }

    /// <summary>The X of "lea rax,[rip+X]; ret" at <paramref name="ip"/>, as an address; null for other code.</summary>
    public static ulong? DecodeCpuFeaturesAddress(byte[] code, ulong ip)
    {
        var decoder = Iced.Intel.Decoder.Create(64, new ByteArrayCodeReader(code), ip);
        var lea = decoder.Decode();
        var ret = decoder.Decode();
        bool ok = lea.Code == Code.Lea_r64_m && lea.Op0Register == Register.RAX && lea.IsIPRelativeMemoryOperand
            && ret.Code == Code.Retnq;
        return ok ? lea.IPRelativeMemoryAddress : null;
    }

    static ulong? FindSyscallRet(byte[] bytes, ElfFile elf)
    {
        ReadOnlySpan<byte> pattern = [0x0f, 0x05, 0xc3];
        foreach (var ph in elf.ProgramHeaders.Where(ph => ph.Type == ElfFile.PtLoad && (ph.Flags & PfX) != 0))
        {
            int at = bytes.AsSpan((int)ph.Offset, (int)ph.FileSize).IndexOf(pattern);
            if (at >= 0)
                return ph.VAddr + (ulong)at;
        }
        return null;
    }

    [GeneratedRegex(@"GLIBC (\d+\.\d+)")]
    private static partial Regex BannerVersion();

    /// <summary>"2.36" from ld.so's "ld.so (Debian GLIBC 2.36-9...) stable release version 2.36." banner.</summary>
    static string? GlibcBanner(byte[] elf)
    {
        int at = elf.AsSpan().IndexOf("ld.so ("u8);
        if (at < 0) return null;
        var m = BannerVersion().Match(DynamicSymbols.CString(elf, at));
        return m.Success ? m.Groups[1].Value : null;
    }
}
