using System.Runtime.InteropServices;
using Resident.HookContract;

namespace Resident.Format;

// The C# mirror of native/image.h (format version 8); docs/image-format.md is the spec.
// Field order, widths and names (snake_case there, PascalCase here) must match the header
// exactly: tests/Resident.Tests/Image/LayoutTests.cs compiles image.h with gcc and compares
// every size and offset. Fields are only appended; see the spec's versioning rules.
// Every struct is blittable and little-endian, so it is read and written with MemoryMarshal.

/// <summary>Constants of image.h (RS_*).</summary>
public static class ImageFormat
{
    public const string Magic = "RESIDENT";
    public const uint Version = 8; // 2: rlimit_stack appended to rs_header; 3: heap_word, heap_prefault; 4: prefault; 5: rs_file ctime, rs_header mm_*; 6: the init level; 7: kernel_ops, fallback_*; 8: variant_count, variant_index
    public const uint VariantsMax = 256;
    public const uint PageSize = Interop.PageSize;
    public const int MaxVdsoVmas = 4;

    public const uint LevelLink = 1;
    public const uint LevelInit = 2;
    public const uint FrameMax = 4096;
    public const uint HeaderFlagLazyBind = 1;

    public const uint FileMapped = 1;
    public const uint FileStamp = 2;
    public const uint FileAbsent = 4;

    public const uint RegionFile = 1;
    public const uint RegionImage = 2;
    public const uint RegionZero = 3;

    public const uint RegionFlagPatched = 1;

    public const uint PatchArgc = 1;
    public const uint PatchArgv = 2;
    public const uint PatchEnvp = 3;
    public const uint PatchAuxv = 4;
    public const uint PatchArgString = 5;
    public const uint PatchEnvString = 6;
    public const uint PatchAuxvValue = 7;
    public const uint PatchArgcCount = 8;
    public const uint PatchArgBasename = 9;
    public const uint PatchMangled = 10;
    public const uint PatchMangledArgc = 11;
    public const uint PatchRandom = 12;
    public const uint PatchCanary = 13;

    public const uint KopSigaction = 1;
    public const uint KopSigprocmask = 2;
    public const uint KopUmask = 3;
    public const uint KopRlimit = 4;
    public const uint KopName = 5;

    public const uint VdsoVvar = 1;
    public const uint VdsoVvarVclock = 2;
    public const uint VdsoVdso = 3;

    public const ulong FnvOffset = 0xcbf29ce484222325UL;
    public const ulong FnvPrime = 0x100000001b3UL;

    public const uint HeapPrefaultMax = 1u << 20;
    public const uint PrefaultMax = 4096;
    public const uint KernelOpsMax = 256;

    /// <summary>
    /// rs_checksum: FNV-1a-64 over little-endian 8-byte words (not bytes: 8x fewer
    /// multiplications in the freestanding hook). data.Length must be a multiple of 8.
    /// </summary>
    public static ulong Checksum(ReadOnlySpan<byte> data)
    {
        if (data.Length % 8 != 0)
            throw new ArgumentException("checksum input must be a multiple of 8 bytes", nameof(data));
        ulong h = FnvOffset;
        foreach (ulong w in MemoryMarshal.Cast<byte, ulong>(data))
            h = (h ^ w) * FnvPrime;
        return h;
    }

    public static ulong AlignUp(ulong v, ulong a) => (v + a - 1) / a * a;
}

[StructLayout(LayoutKind.Sequential, Pack = 1)]
public struct RsTable
{
    public ulong Offset;
    public uint Count;
    public uint EntrySize;
}

[StructLayout(LayoutKind.Sequential, Pack = 1)]
public struct RsSpan
{
    public ulong Start;
    public ulong End;
}

[StructLayout(LayoutKind.Sequential, Pack = 1)]
public struct RsFile
{
    public uint Path;
    public uint Flags;
    public ulong Dev;
    public ulong Ino;
    public ulong Size;
    public long MtimeSec;
    public long MtimeNsec;

    // version 5
    public long CtimeSec;
    public long CtimeNsec;
}

[StructLayout(LayoutKind.Sequential, Pack = 1)]
public struct RsRegion
{
    public ulong Start;
    public ulong End;
    public ulong Offset;
    public uint Prot;
    public uint Kind;
    public uint File;
    public uint Flags;
    public uint Name;
    public uint Reserved;
}

[StructLayout(LayoutKind.Sequential, Pack = 1)]
public struct RsPatch
{
    public ulong Addr;
    public uint Kind;
    public uint Index;
    public long Delta;
}

[StructLayout(LayoutKind.Sequential, Pack = 1)]
public struct RsVdsoVma
{
    public ulong Start;
    public ulong End;
    public uint Kind;
    public uint Reserved;
}

/// <summary>struct rs_header; see image.h for the meaning of every field.</summary>
[StructLayout(LayoutKind.Sequential, Pack = 1)]
public unsafe struct RsHeader
{
    public fixed byte Magic[8];
    public uint Version;
    public uint HeaderSize;
    public ulong FileSize;
    public ulong MetaSize;
    public ulong Checksum;
    public ulong DataOffset;

    public ulong Id;
    public long CaptureTimeNs;
    public uint Level;
    public uint Flags;
    public uint ExePath;
    public uint Reserved0;

    public RsTable Files;
    public RsTable Regions;
    public RsTable Patches;
    public RsTable Env;
    public ulong StringsOffset;
    public ulong StringsSize;

    public ulong Hwcap;
    public ulong Hwcap2;
    public fixed byte Platform[16];
    public fixed byte KernelRelease[65];
    public fixed byte Reserved1[7];
    public fixed byte KernelVersion[65];
    public fixed byte Reserved2[7];
    public ulong VdsoHash;
    public VdsoVmaArray VdsoVmas;

    public ulong LdsoBase;
    public ulong CpuFeaturesOff;
    public ulong CpuFeaturesLen;
    public ulong CpuFeaturesBlob;
    public ulong CpuFeaturesMask;
    public ulong SyscallRetOff;

    public ulong ResumePc;
    public ulong ResumeCont;
    public ulong UserEntry;
    public ulong FsBase;
    public ulong TidAddress;
    public ulong RobustHead;
    public ulong RobustLen;
    public ulong RseqAddr;
    public uint RseqLen;
    public uint RseqSig;

    public ulong AtPhdr;
    public ulong AtPhent;
    public ulong AtPhnum;
    public ulong AtEntry;
    public ulong AtBase;
    public ulong AtSysinfoEhdr;

    public ulong OldStackArgc;
    public ulong OldStackEnd;

    // version 2
    public ulong RlimitStack;

    // version 3
    public ulong HeapWord;
    public ulong HeapPrefault;

    // version 4
    public RsTable Prefault;

    // version 5
    public ulong MmStartCode;
    public ulong MmEndCode;
    public ulong MmStartData;
    public ulong MmEndData;
    public ulong MmBrkBase;
    public ulong StacksizeWord;
    public ulong MeasuredNormalNs;
    public ulong MeasuredResidentNs;

    // version 6: the init level
    public ulong FrameAddr;
    public ulong FrameBlob;
    public ulong FrameResume;
    public ulong MmStartBrk;
    public ulong MmBrk;
    public RsTable EnvDeps;

    // version 7
    public RsTable KernelOps;
    public ulong FallbackOffset;
    public ulong FallbackSize;

    // version 8
    public uint VariantCount;
    public uint VariantIndex;
}

[StructLayout(LayoutKind.Sequential, Pack = 1)]
public unsafe struct RsKernelOp
{
    public uint Kind;
    public uint Arg;
    public fixed ulong Value[4];
}

/// <summary>rs_header.vdso_vmas: struct rs_vdso_vma[RS_MAX_VDSO_VMAS], inline.</summary>
[StructLayout(LayoutKind.Sequential, Pack = 1)]
public struct VdsoVmaArray
{
    public RsVdsoVma V0, V1, V2, V3;

    public RsVdsoVma this[int i]
    {
        readonly get => i switch { 0 => V0, 1 => V1, 2 => V2, 3 => V3, _ => throw new IndexOutOfRangeException() };
        set
        {
            switch (i)
            {
                case 0: V0 = value; break;
                case 1: V1 = value; break;
                case 2: V2 = value; break;
                case 3: V3 = value; break;
                default: throw new IndexOutOfRangeException();
            }
        }
    }
}

/// <summary>Helpers for the fixed char arrays of <see cref="RsHeader"/> (NUL-padded, no terminator required).</summary>
public static unsafe class FixedText
{
    public static void Set(byte* dst, int capacity, string value, string what)
    {
        var bytes = System.Text.Encoding.UTF8.GetBytes(value);
        if (bytes.Length > capacity)
            throw new ArgumentException($"{what} is longer than {capacity} bytes: {value}");
        var span = new Span<byte>(dst, capacity);
        span.Clear();
        bytes.CopyTo(span);
    }

    public static string Get(byte* src, int capacity)
    {
        var span = new ReadOnlySpan<byte>(src, capacity);
        int n = span.IndexOf((byte)0);
        return System.Text.Encoding.UTF8.GetString(n < 0 ? span : span[..n]);
    }
}
