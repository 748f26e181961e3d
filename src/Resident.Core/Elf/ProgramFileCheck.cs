using Resident.Proc;

namespace Resident.Elf;

/// <summary>
/// Everything that can be refused by looking at the file alone, before a process is started.
/// Each refusal is a RefusalException whose message says what and why in one line, without
/// the program's name (the caller puts that in front, as for every RefusalException).
/// </summary>
public static class ProgramFileCheck
{
    /// <summary>The glibc x86_64 dynamic loader, the only interpreter whose entry resident knows.</summary>
    public const string SystemInterpreter = "/lib64/ld-linux-x86-64.so.2";

    /// <param name="File">the program: absolute, symlinks resolved, with what its stat said.</param>
    /// <param name="Interpreter">its PT_INTERP, absolute, symlinks resolved.</param>
    /// <param name="ResumePoint">_dl_start_user relative to ld.so's load address.</param>
    public sealed record Result(ProgramFile File, string Interpreter, LdSoEntry.ResumePoint ResumePoint)
    {
        public string ProgramPath => File.Path;
    }

    /// <summary>Resolves <paramref name="path"/> (<see cref="ProgramFile.Resolve"/>), then checks it.</summary>
    public static Result Check(string path) => Check(ProgramFile.Resolve(path));

    /// <summary>Checks a program already resolved: the checks use the stat it was resolved with.</summary>
    public static Result Check(ProgramFile file)
    {
        if ((file.Mode & Interop.S_IFMT) == Interop.S_IFDIR)
            throw new RefusalException("is a directory, not a program");
        if ((file.Mode & Interop.S_IFMT) != Interop.S_IFREG)
            throw new RefusalException("not a regular file");
        CheckPrivileges(file);
        if (!Interop.Access(file.Path, Interop.X_OK))
            throw new RefusalException("not executable (no execute permission)");
        var elf = ReadElf(file.Path);
        string interp = CheckSystemInterpreter(CheckDynamicExecutable(elf));
        return new Result(file, interp, DecodeInterpreterEntry(interp));
    }

    // The kernel runs these with raised credentials (AT_SECURE); a saved address space must
    // never stand in for that, and the hook refuses AT_SECURE anyway.
    static void CheckPrivileges(ProgramFile file)
    {
        if ((file.Mode & Interop.S_ISUID) != 0)
            throw new RefusalException("setuid programs are never registered");
        if ((file.Mode & Interop.S_ISGID) != 0)
            throw new RefusalException("setgid programs are never registered");
        if (Interop.HasXattr(file.Path, "security.capability"))
            throw new RefusalException("has file capabilities (security.capability); such programs are never registered");
    }

    static ElfFile ReadElf(string real)
    {
        ElfFile elf;
        try { elf = ElfFile.Read(real); }
        catch (InvalidDataException)
        {
            throw new RefusalException(IsScript(real)
                ? "a script (#!), not an ELF program; register its interpreter instead"
                : "not an ELF program");
        }
        if (elf.Class != 2 || elf.Machine != ElfFile.EmX86_64)
            throw new RefusalException($"not an x86_64 program (ELF class {elf.Class}, e_machine {elf.Machine})");
        return elf;
    }

    static bool IsScript(string real)
    {
        Span<byte> head = stackalloc byte[2];
        using var f = File.OpenHandle(real);
        return RandomAccess.Read(f, head, 0) == 2 && head[0] == '#' && head[1] == '!';
    }

    /// <summary>Returns PT_INTERP; refuses static executables and shared libraries.</summary>
    static string CheckDynamicExecutable(ElfFile elf)
    {
        if (elf.Type is not (ElfFile.EtExec or ElfFile.EtDyn))
            throw new RefusalException($"not an executable (ELF type {elf.Type})");
        string? interp = elf.Interpreter;
        if (interp is not null)
            return interp;
        if (elf.Type == ElfFile.EtExec)
            throw new RefusalException("statically linked (no PT_INTERP): there is no dynamic loading to skip");
        if (elf.IsPieFlagged)
            throw new RefusalException("static-pie executable (no PT_INTERP): there is no dynamic loading to skip");
        throw new RefusalException("a shared library (no PT_INTERP), not a program");
    }

    /// <summary>Returns the resolved interpreter path when it is the system ld.so.</summary>
    static string CheckSystemInterpreter(string interp)
    {
        string? interpReal = Interop.RealPath(interp);
        if (interpReal is null)
            throw new RefusalException($"its interpreter {interp} does not exist");
        string? system = Interop.RealPath(SystemInterpreter);
        if (system is null || interpReal != system)
            throw new RefusalException($"interpreter {interp} is not the system glibc loader {SystemInterpreter}");
        return interpReal;
    }

    /// <summary>Decodes the entry pattern from the file, so an unknown ld.so is refused before any start.</summary>
    public static LdSoEntry.ResumePoint DecodeInterpreterEntry(string interpReal)
    {
        ElfFile ld;
        byte[] code;
        try
        {
            ld = ElfFile.Read(interpReal);
            code = ld.ReadAtVAddr(ld.Entry, LdSoEntry.WindowSize);
        }
        catch (InvalidDataException e)
        {
            throw new RefusalException($"interpreter {interpReal} is unreadable: {e.Message}");
        }
        return LdSoEntry.Decode(code, ld.Entry);
    }
}
