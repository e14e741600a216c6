using XenLivepatch.Cli;

return XenLivepatchTool.Run(args, Console.Out, Console.Error);
