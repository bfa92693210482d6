using CSharpYinYang;

namespace SnnFunc.CSharp.Tests;

/// <summary>samples/CSharpYinYang's command-line validation: one line naming the option and the allowed
/// range, exit code 2 (before, an invalid value ended in an unhandled exception).</summary>
public class SampleOptionsTests
{
    private static void Rejected(string[] args, params string[] fragments)
    {
        var r = Options.Parse(args);
        Assert.Null(r.Options);
        Assert.Equal(2, r.ExitCode);
        Assert.NotNull(r.Message);
        Assert.DoesNotContain("\n", r.Message);
        foreach (var f in fragments) Assert.Contains(f, r.Message);
    }

    [Fact]
    public void OutOfRangeValuesNameTheOptionAndTheRange()
    {
        Rejected(["--epochs", "-3"], "CSharpYinYang", "--epochs", "[1, 100000]", "-3");
        Rejected(["--hidden", "0"], "--hidden", "got 0");
        Rejected(["--batch-size", "0"], "--batch-size", "[1, 5000]");
        Rejected(["--steps", "0"], "--steps", "[1, 100000]");
        Rejected(["--learning-rate", "-1"], "--learning-rate", "positive finite", "-1");
        Rejected(["--learning-rate", "NaN"], "--learning-rate", "positive finite");
        Rejected(["--threads", "0"], "--threads", "[1, 1024]");
        Rejected(["--epochs", "many"], "--epochs", "integer", "many");
        Rejected(["--epochs"], "--epochs needs a value");
        Rejected(["--plots", " "], "--plots must be a non-empty path");
        Rejected(["--plots", typeof(Options).Assembly.Location], "--plots", "is a file, not a folder");
        Assert.Equal("figures", Options.Parse(["--plots", "figures"]).Options!.Plots);
    }

    [Fact]
    public void ValidOptionsAndHelp()
    {
        var r = Options.Parse(["--epochs", "2", "--learning-rate", "0.5"]);
        Assert.NotNull(r.Options);
        Assert.Equal(2, r.Options!.Epochs);
        Assert.Equal(0.5, r.Options.LearningRate);
        Assert.Equal(120, r.Options.Hidden);
        var help = Options.Parse(["--help"]);
        Assert.Equal(0, help.ExitCode);
        Assert.Contains("--epochs", help.Message);
        var unknown = Options.Parse(["--no-such-option"]);
        Assert.Equal(2, unknown.ExitCode);
        Assert.Contains("unknown option --no-such-option", unknown.Message);
    }
}
