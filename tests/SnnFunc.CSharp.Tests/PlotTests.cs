using System.Xml.Linq;

namespace SnnFunc.CSharp.Tests;

/// The C# face of the plots (SnnFunc.Plots' <c>Plots</c> class and <c>Figure</c>): C# types only in its
/// signatures, a raster SVG with one mark per spike, training curves from Trainer.Run's history as a
/// PNG of the size asked, and the errors.
public class PlotTests
{
    private static readonly XNamespace Svg = "http://www.w3.org/2000/svg";

    private static string TempFile(string name)
    {
        var dir = Path.Combine(Path.GetTempPath(), "snnfunc-cs-plots-" + Guid.NewGuid().ToString("N"));
        return Path.Combine(dir, name);
    }

    [Fact]
    public void ThePlotsClassAndFigureUseOnlyCSharpTypes() =>
        Assert.Empty(PublicSurfaceTests.Check([typeof(Plots), typeof(Figure)]));

    [Fact]
    public void ARasterSvgHasOneMarkPerSpike()
    {
        var spikes = RandomKey.FromSeed(5).Bernoulli(0.1, [40, 2, 12]);
        var values = spikes.ToDoubleArray();
        var inSample1 = 0;
        for (var t = 0; t < 40; t++)
            for (var i = 0; i < 12; i++)
                if (values[(t * 2 + 1) * 12 + i] != 0) inSample1++;

        var path = TempFile("raster.svg");
        Plots.Raster(spikes, 1e-3, sample: 1).WithTitle("hidden").Save(path, width: 700, height: 400);
        var root = XDocument.Load(path).Root!;
        Assert.Equal("700", root.Attribute("width")!.Value);
        Assert.Equal("400", root.Attribute("height")!.Value);
        var marks = root.Descendants(Svg + "path").Count(p => (string?)p.Attribute("stroke") == Palette.blue);
        Assert.True(inSample1 > 20);
        Assert.Equal(inSample1, marks);
    }

    [Fact]
    public void TrainingCurvesTakeTrainerRunsHistory()
    {
        var history = Trainer.Run(epochs: 3, batchesPerEpoch: 2,
            step: (e, b) => new Dictionary<string, double> { ["loss"] = 1.0 / (1 + e + b) },
            endEpoch: (e, _) => new Dictionary<string, double> { ["val_accuracy"] = 0.5 + 0.1 * e });
        var path = TempFile("curves.png");
        Plots.TrainingCurves(history).Save(path, 640, 360);
        var bytes = File.ReadAllBytes(path);
        Assert.Equal(new byte[] { 0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A }, bytes[..8]);
        int BigEndian(int i) => (bytes[i] << 24) | (bytes[i + 1] << 16) | (bytes[i + 2] << 8) | bytes[i + 3];
        Assert.Equal((640, 360), (BigEndian(16), BigEndian(20)));
    }

    [Fact]
    public void BadInputIsAnArgumentExceptionNamingIt()
    {
        var e = Assert.ThrowsAny<ArgumentException>(() => Plots.Histogram([1.0, 2.0], bins: 3).Save(TempFile("h.gif")));
        Assert.Contains(".png or .svg", e.Message);
        e = Assert.ThrowsAny<ArgumentException>(() => Plots.Traces(Tensor.Zeros(4, 3), 1e-3, neurons: [5]));
        Assert.Contains("neuron 5 is outside the population of 3", e.Message);
    }
}
