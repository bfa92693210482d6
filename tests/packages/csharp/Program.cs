// A fresh C# console application on the packed SnnFunc.CSharp package: the gradient of
// f(x) = Σ sin(x) · x against its closed form sin(x) + x · cos(x), then (SnnFunc.Plots, whose
// ScottPlot and SkiaSharp native library must come with the package) its histogram as PNG and SVG.
// Exit code 1 if the gradient differs or a figure is not written.
using SnnFunc;
using SnnFunc.CSharp;

double[] xs = [0.3, -1.2, 2.0, 0.7];
var x = Tensor.FromArray(xs, xs.Length);
var gradient = Autodiff.Grad((Tensor t) => (t.Sin() * t).Sum())(x).ToDoubleArray();
var error = xs.Select((v, i) => Math.Abs(gradient[i] - (Math.Sin(v) + v * Math.Cos(v)))).Max();
Console.WriteLine($"csharp gradient=[{string.Join(", ", gradient.Select(g => g.ToString("G6")))}] max_error={error:E1}");
var png = Path.Combine(Path.GetTempPath(), $"snnfunc-package-{Guid.NewGuid():N}.png");
var svg = Path.ChangeExtension(png, ".svg");
var figure = Plots.Histogram(gradient, bins: 4, label: "gradient");
figure.Save(png, 320, 240);
figure.Save(svg);
var pngOk = File.ReadAllBytes(png) is [0x89, 0x50, 0x4E, 0x47, ..] && new FileInfo(png).Length > 1000;
var svgOk = File.ReadAllText(svg).Contains("<svg");
Console.WriteLine($"csharp plots png={pngOk} svg={svgOk}");
File.Delete(png);
File.Delete(svg);
return error < 1e-12 && pngOk && svgOk ? 0 : 1;
