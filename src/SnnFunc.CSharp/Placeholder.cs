namespace SnnFunc.CSharp;

/// <summary>Version information about the SnnFunc C# facade.</summary>
public static class FacadeInfo
{
    /// <summary>The facade's version string.</summary>
    public const string Version = "0.1.0";
}
