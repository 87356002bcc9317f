// Run by dotnet ef only (docs/development.md, "Changing the schema").
Console.Error.WriteLine("Covibe.Design is the startup project of dotnet ef; see docs/development.md.");
return 2;
