using System.Runtime.Intrinsics.X86;
using Iced.Intel;

namespace Resident.Elf;

/// <summary>
/// What the image needs from the ld.so file itself, as offsets from its load base: where its
/// <c>struct cpu_features</c> lives and how long it is, and a <c>syscall; ret</c> in its text.
/// ld.so is a files[] entry that the restorer validates, so the offsets hold at every restore.
/// Every fact is read from the file in use (its exported symbols, code and initialised data),
/// never looked up by glibc version, and each is checked where it can be.
/// </summary>
public sealed class LdsoFacts
{
    const uint PfX = 1;

    // The accessor returning &_rtld_global_ro._dl_x86_cpu_features: "lea rax,[rip+X]; ret".
    // Exported as _dl_x86_get_cpu_features from glibc 2.33, as __get_cpu_features before.
    static readonly string[] CpuFeaturesAccessors = ["_dl_x86_get_cpu_features", "__get_cpu_features"];

    // The struct has no initialiser, so the file holds zeros for it, and ld.so fills it in at
    // start-up. What follows it in _rtld_global_ro differs between versions: the
    // _dl_x86_hwcap_flags strings (glibc 2.26 to 2.41: data in the file), or pointers ld.so sets
    // when it sets up the CPU (2.42 and later: _dl_x86_tlsdesc_dynamic, _dl_x86_64_runtime_resolve,
    // zero in the file, different in every exec). So the struct ends at the first byte the file
    // initialises or the first word that points into the process, whichever comes first.
    const int CpuFeaturesMax = 4096;
    const int CpuFeaturesMin = 64;

    public ulong CpuFeaturesOff { get; }

    /// <summary>The most the struct can span: up to the first byte of data the file initialises after it.</summary>
    public int CpuFeaturesMaxLen { get; }

    public ulong SyscallRetOff { get; }

    LdsoFacts(ulong cpuOff, int cpuMax, ulong syscallRet)
    {
        CpuFeaturesOff = cpuOff; CpuFeaturesMaxLen = cpuMax; SyscallRetOff = syscallRet;
    }

    /// <summary>Reads the ld.so file at <paramref name="path"/>; RefusalException if a fact cannot be derived.</summary>
    public static LdsoFacts Read(string path)
    {
        try
        {
            var elf = ElfFile.Read(path);
            // Offsets are from AT_BASE, which is the load bias only when the first segment is at 0.
            if (elf.ProgramHeaders.FirstOrDefault(ph => ph.Type == ElfFile.PtLoad).VAddr != 0)
                throw new RefusalException($"{path}: the dynamic loader is not linked at address 0");
            byte[] bytes = File.ReadAllBytes(path);
            var (name, fn) = CpuFeaturesAccessors.Select(n => (n, DynamicSymbols.Find(bytes, n))).FirstOrDefault(s => s.Item2 is not null);
            if (fn is not ulong accessor)
                throw new RefusalException($"{path}: exports none of {string.Join(", ", CpuFeaturesAccessors)}");
            ulong cpu = DecodeCpuFeaturesAddress(elf.ReadAtVAddr(accessor, 16), accessor)
                ?? throw new RefusalException($"{path}: {name} is not \"lea rax,[rip+X]; ret\"");
            int len = CpuFeaturesFileExtent(elf, cpu)
                ?? throw new RefusalException($"{path}: struct cpu_features at 0x{cpu:x} is not zero-initialised data");
            ulong sysret = FindSyscallRet(bytes, elf)
                ?? throw new RefusalException($"{path}: no \"syscall; ret\" in executable text");
            return new LdsoFacts(cpu, len, sysret);
        }
        catch (InvalidDataException e)
        {
            throw new RefusalException($"{path}: malformed ELF file ({e.Message})");
        }
    }

    /// <summary>
    /// How far the zero bytes at <paramref name="cpuFeatures"/> reach in the file (rounded down to
    /// a word, at most <see cref="CpuFeaturesMax"/>); null if fewer than the struct's smallest size.
    /// </summary>
    static int? CpuFeaturesFileExtent(ElfFile elf, ulong cpuFeatures)
    {
        var seg = elf.ProgramHeaders.FirstOrDefault(ph => ph.Type == ElfFile.PtLoad && cpuFeatures >= ph.VAddr && cpuFeatures < ph.VAddr + ph.MemSize);
        if (seg.Type != ElfFile.PtLoad)
            return null;
        if (cpuFeatures >= seg.VAddr + seg.FileSize)   // in .bss: nothing initialised after it in this segment
            return CpuFeaturesMax;
        var data = elf.ReadAtVAddr(cpuFeatures, (int)Math.Min(CpuFeaturesMax, seg.VAddr + seg.FileSize - cpuFeatures));
        int zeros = data.AsSpan().IndexOfAnyExcept((byte)0);
        int extent = (zeros < 0 ? data.Length : zeros) & ~7;
        return extent >= CpuFeaturesMin ? extent : null;
    }

    /// <summary>
    /// The length of struct cpu_features, from <paramref name="live"/> (at most
    /// <see cref="CpuFeaturesMaxLen"/> bytes of it, read from the stopped process): up to the
    /// first word that points into the process (<paramref name="mapped"/>), since the struct
    /// holds CPUID results, sizes and thresholds, never an address.
    /// </summary>
    public static int CpuFeaturesEnd(ReadOnlySpan<byte> live, Func<ulong, bool> mapped)
    {
        int end = 0;
        while (end + 8 <= live.Length && !mapped(BitConverter.ToUInt64(live[end..])))
            end += 8;
        if (end < CpuFeaturesMin)
            throw new RefusalException($"ld.so's struct cpu_features is cut by an address at byte {end}: unknown layout");
        return end;
    }

    /// <summary>
    /// The mask stored next to the capture's copy of the struct: 0xff everywhere except the
    /// initial APIC id (CPUID leaf 1, EBX bits 24-31), which names the core ld.so ran on. Where
    /// leaf 1 is kept differs between glibc versions (offset 0 in 2.31, 20 from 2.33), so it is
    /// found in <paramref name="cpuFeatures"/> (read from the stopped process) by this CPU's own
    /// leaf 1: EAX (the family/model/stepping signature) and EBX bits 0-23, which every core
    /// reports alike. RefusalException when the struct does not hold them: then it is not what
    /// this reader takes it for.
    /// </summary>
    public static byte[] CpuFeaturesMask(ReadOnlySpan<byte> cpuFeatures)
    {
        if (!X86Base.IsSupported)
            throw new RefusalException("not an x86_64 CPU");
        var (eax, ebx, _, _) = X86Base.CpuId(1, 0);
        var mask = Enumerable.Repeat((byte)0xff, cpuFeatures.Length).ToArray();
        int found = 0;
        for (int p = 0; p + 8 <= cpuFeatures.Length; p += 4)
            if (BitConverter.ToInt32(cpuFeatures[p..]) == eax && (BitConverter.ToInt32(cpuFeatures[(p + 4)..]) & 0xffffff) == (ebx & 0xffffff))
            {
                mask[p + 7] = 0;
                found++;
            }
        if (found == 0)
            throw new RefusalException("ld.so's struct cpu_features does not hold this CPU's CPUID leaf 1: unknown layout");
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
            int at = bytes.AsSpan(DynamicSymbols.Offset(bytes, ph.Offset, ph.FileSize, "executable segment"), (int)ph.FileSize).IndexOf(pattern);
            if (at >= 0)
                return ph.VAddr + (ulong)at;
        }
        return null;
    }
}
