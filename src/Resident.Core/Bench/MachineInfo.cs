using Resident.Proc;

namespace Resident.Bench;

/// <summary>What a benchmark ran on: the header of every table, so numbers are never quoted without it.</summary>
public sealed record MachineInfo(string Cpu, int Cpus, string Kernel, string Glibc)
{
    public static MachineInfo Current() =>
        new(ProcFs.CpuModel(), Environment.ProcessorCount, Interop.Uname().Release, Interop.LibcVersion());

    public override string ToString() => $"{Cpu}, {Cpus} cpus, kernel {Kernel}, glibc {Glibc}";
}
