using System.Buffers.Binary;
using System.Text;
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
    const uint ShtDynsym = 11;
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
            ulong fn = FindDynamicSymbol(bytes, "_dl_x86_get_cpu_features")
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

    /// <summary>st_value of a defined symbol in .dynsym (found through the section headers).</summary>
    static ulong? FindDynamicSymbol(byte[] elf, string name)
    {
        if (elf.Length < 64)
            throw new InvalidDataException("truncated ELF header");
        ulong shoff = U64(elf, 40);
        int shentsize = U16(elf, 58), shnum = U16(elf, 60);
        for (int i = 0; i < shnum; i++)
        {
            int sh = checked((int)shoff + i * shentsize);
            if (U32(elf, sh + 4) != ShtDynsym)
                continue;
            int strSh = checked((int)shoff + (int)U32(elf, sh + 40) * shentsize);
            int strtab = (int)U64(elf, strSh + 24);
            int symtab = (int)U64(elf, sh + 24), size = (int)U64(elf, sh + 32), entsize = (int)U64(elf, sh + 56);
            for (int s = symtab; s + entsize <= symtab + size; s += entsize)
            {
                ushort shndx = U16(elf, s + 6);
                if (shndx != 0 && CString(elf, strtab + (int)U32(elf, s)) == name)
                    return U64(elf, s + 8);
            }
        }
        return null;
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
        var m = BannerVersion().Match(CString(elf, at));
        return m.Success ? m.Groups[1].Value : null;
    }

    static string CString(byte[] b, int o)
    {
        int n = b.AsSpan(o).IndexOf((byte)0);
        return Encoding.ASCII.GetString(b, o, n < 0 ? b.Length - o : n);
    }

    static ushort U16(byte[] b, int o) => BinaryPrimitives.ReadUInt16LittleEndian(b.AsSpan(o));
    static uint U32(byte[] b, int o) => BinaryPrimitives.ReadUInt32LittleEndian(b.AsSpan(o));
    static ulong U64(byte[] b, int o) => BinaryPrimitives.ReadUInt64LittleEndian(b.AsSpan(o));
}
