using Resident.Cli;

// resident: resident executables for Linux. One file per verb; each verb's Run() is what tests call.
return Cli.Run(args, Console.Out, Console.Error);
