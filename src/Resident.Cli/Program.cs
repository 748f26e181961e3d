using Resident.Cli;

// resident: resident executables for Linux. One file per verb; each verb's Run() is what tests call.
return Cli.Main(args, Console.Out, Console.Error);
