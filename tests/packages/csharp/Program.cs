// A fresh C# console application on the packed SnnFunc.CSharp package: the gradient of
// f(x) = Σ sin(x) · x against its closed form sin(x) + x · cos(x). Exit code 1 if they differ.
using SnnFunc;
using SnnFunc.CSharp;

double[] xs = [0.3, -1.2, 2.0, 0.7];
var x = Tensor.FromArray(xs, xs.Length);
var gradient = Autodiff.Grad((Tensor t) => (t.Sin() * t).Sum())(x).ToDoubleArray();
var error = xs.Select((v, i) => Math.Abs(gradient[i] - (Math.Sin(v) + v * Math.Cos(v)))).Max();
Console.WriteLine($"csharp gradient=[{string.Join(", ", gradient.Select(g => g.ToString("G6")))}] max_error={error:E1}");
return error < 1e-12 ? 0 : 1;
