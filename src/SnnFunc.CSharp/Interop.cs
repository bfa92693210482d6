using Microsoft.FSharp.Collections;
using Microsoft.FSharp.Core;

namespace SnnFunc.CSharp;

/// Conversions between the F# core's types (functions, lists, options, tuples) and C# ones. Nothing
/// here is public: the facade's signatures use only C# and .NET types.
internal static class Interop
{
    public static FSharpFunc<TIn, TOut> Fn<TIn, TOut>(Func<TIn, TOut> f)
    {
        ArgumentNullException.ThrowIfNull(f);
        return FuncConvert.FromFunc(f);
    }

    public static FSharpFunc<T1, FSharpFunc<T2, TOut>> Fn<T1, T2, TOut>(Func<T1, T2, TOut> f)
    {
        ArgumentNullException.ThrowIfNull(f);
        return FuncConvert.FromFunc(f);
    }

    public static Func<TIn, TOut> Func<TIn, TOut>(FSharpFunc<TIn, TOut> f) => f.Invoke;

    public static FSharpList<T> List<T>(IEnumerable<T> items) => ListModule.OfSeq(items);

    public static FSharpOption<T>? Option<T>(T? value) where T : struct =>
        value.HasValue ? FSharpOption<T>.Some(value.Value) : null;

    public static FSharpOption<T>? OptionRef<T>(T? value) where T : class =>
        value is null ? null : FSharpOption<T>.Some(value);

    public static int[] Labels(IReadOnlyList<int> labels)
    {
        ArgumentNullException.ThrowIfNull(labels);
        return labels as int[] ?? labels.ToArray();
    }

    public static int[] Shape(IReadOnlyList<int> shape)
    {
        ArgumentNullException.ThrowIfNull(shape);
        return shape.ToArray();
    }

    public static DType DTypeOr32(DType? dtype) => dtype ?? DType.Float32;
}
