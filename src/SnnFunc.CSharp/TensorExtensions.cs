using Microsoft.FSharp.Core;

namespace SnnFunc.CSharp;

/// <summary>
/// C# forms of the <see cref="Tensor"/> members whose F# signatures use F# optional arguments
/// (which C# cannot omit or pass plainly): axis reductions with <c>keepDims</c>, softmax axes, dtype
/// arguments of the creation functions, concatenation axes. With <c>using SnnFunc.CSharp;</c> they
/// read like members of <see cref="Tensor"/> itself: <c>t.Sum(1, keepDims: true)</c>,
/// <c>Tensor.Full([2, 3], 0.5)</c>, <c>Tensor.Concat([a, b], axis: 1)</c>. The tensor's own
/// members cover everything else (<c>Sin()</c>, <c>Sum()</c>, <c>MatMul(...)</c>, operators,
/// <c>Shape</c>, which is an <c>int[]</c> and so an <see cref="IReadOnlyList{T}"/> of <see cref="int"/>).
/// </summary>
public static class TensorExtensions
{
    private static FSharpOption<bool> Flag(bool keepDims) => FSharpOption<bool>.Some(keepDims);

    /// <summary>Instance members of <see cref="Tensor"/> with C# optional parameters.</summary>
    /// <param name="t">The tensor.</param>
    extension(Tensor t)
    {
        /// <summary>The sum along one axis (negative axes count from the end).</summary>
        /// <param name="axis">The axis to reduce.</param>
        /// <param name="keepDims">Keep the reduced axis with extent 1.</param>
        /// <returns>The reduced tensor.</returns>
        public Tensor Sum(int axis, bool keepDims = false) => t.Sum(axis, Flag(keepDims));

        /// <summary>The sum over several axes.</summary>
        /// <param name="axes">The axes to reduce.</param>
        /// <param name="keepDims">Keep the reduced axes with extent 1.</param>
        /// <returns>The reduced tensor.</returns>
        public Tensor SumAxes(int[] axes, bool keepDims = false) => t.SumAxes(axes, Flag(keepDims));

        /// <summary>The mean along one axis.</summary>
        /// <param name="axis">The axis to reduce.</param>
        /// <param name="keepDims">Keep the reduced axis with extent 1.</param>
        /// <returns>The reduced tensor.</returns>
        public Tensor Mean(int axis, bool keepDims = false) => t.Mean(axis, Flag(keepDims));

        /// <summary>The mean over several axes.</summary>
        /// <param name="axes">The axes to reduce.</param>
        /// <param name="keepDims">Keep the reduced axes with extent 1.</param>
        /// <returns>The reduced tensor.</returns>
        public Tensor MeanAxes(int[] axes, bool keepDims = false) => t.MeanAxes(axes, Flag(keepDims));

        /// <summary>The maximum along one axis.</summary>
        /// <param name="axis">The axis to reduce.</param>
        /// <param name="keepDims">Keep the reduced axis with extent 1.</param>
        /// <returns>The reduced tensor.</returns>
        public Tensor Max(int axis, bool keepDims = false) => t.Max(axis, Flag(keepDims));

        /// <summary>The maximum over several axes.</summary>
        /// <param name="axes">The axes to reduce.</param>
        /// <param name="keepDims">Keep the reduced axes with extent 1.</param>
        /// <returns>The reduced tensor.</returns>
        public Tensor MaxAxes(int[] axes, bool keepDims = false) => t.MaxAxes(axes, Flag(keepDims));

        /// <summary>The minimum along one axis.</summary>
        /// <param name="axis">The axis to reduce.</param>
        /// <param name="keepDims">Keep the reduced axis with extent 1.</param>
        /// <returns>The reduced tensor.</returns>
        public Tensor Min(int axis, bool keepDims = false) => t.Min(axis, Flag(keepDims));

        /// <summary>The minimum over several axes.</summary>
        /// <param name="axes">The axes to reduce.</param>
        /// <param name="keepDims">Keep the reduced axes with extent 1.</param>
        /// <returns>The reduced tensor.</returns>
        public Tensor MinAxes(int[] axes, bool keepDims = false) => t.MinAxes(axes, Flag(keepDims));

        /// <summary>log(sum(exp(t))) along an axis, computed stably.</summary>
        /// <param name="axis">The axis to reduce.</param>
        /// <param name="keepDims">Keep the reduced axis with extent 1.</param>
        /// <returns>The reduced tensor.</returns>
        public Tensor LogSumExp(int axis, bool keepDims = false) => t.LogSumExp(axis, Flag(keepDims));

        /// <summary>Softmax along an axis (the last by default).</summary>
        /// <param name="axis">The axis whose entries sum to 1.</param>
        /// <returns>A tensor of the same shape.</returns>
        public Tensor Softmax(int axis = -1) => t.Softmax(FSharpOption<int>.Some(axis));

        /// <summary>Log-softmax along an axis (the last by default).</summary>
        /// <param name="axis">The normalised axis.</param>
        /// <returns>A tensor of the same shape.</returns>
        public Tensor LogSoftmax(int axis = -1) => t.LogSoftmax(FSharpOption<int>.Some(axis));

        /// <summary>NumPy's <c>take</c>: the entries at <paramref name="indices"/> along an axis.</summary>
        /// <param name="axis">The axis to index.</param>
        /// <param name="indices">The indices (row-major when <paramref name="indexShape"/> has rank &gt; 1).</param>
        /// <param name="indexShape">The shape of the index array (default: one axis of indices.Length).</param>
        /// <returns>The gathered tensor, with <paramref name="indexShape"/> in place of the axis.</returns>
        public Tensor Gather(int axis, int[] indices, int[]? indexShape = null) =>
            t.Gather(axis, indices, Interop.OptionRef(indexShape));

        /// <summary>Adds slices of this tensor into a zero tensor at the given indices along an axis
        /// (repeated indices accumulate); the transpose of <c>Gather</c>.</summary>
        /// <param name="axis">The axis of the result that is indexed.</param>
        /// <param name="indices">The target indices.</param>
        /// <param name="size">The extent of <paramref name="axis"/> in the result.</param>
        /// <param name="indexShape">The shape of the index array (default: one axis of indices.Length).</param>
        /// <returns>The scattered tensor.</returns>
        public Tensor ScatterAdd(int axis, int[] indices, int size, int[]? indexShape = null) =>
            t.ScatterAdd(axis, indices, size, Interop.OptionRef(indexShape));

        /// <summary>Gathers along an axis by an Int32 index tensor (computed from data, per example under
        /// vmap); the first <paramref name="batchDims"/> axes of this tensor and of the indices are paired
        /// batch axes: <c>out[b, p, j, q] = t[b, p, indices[b, j], q]</c>.</summary>
        /// <param name="axis">The axis to index.</param>
        /// <param name="indices">Int32 indices in [0, extent of the axis).</param>
        /// <param name="batchDims">The number of leading batch axes shared with the indices.</param>
        /// <returns>The gathered tensor.</returns>
        public Tensor Gather(int axis, Tensor indices, int batchDims = 0) =>
            t.Gather(axis, indices, FSharpOption<int>.Some(batchDims));

        /// <summary>Adds this tensor's slices into zeros whose <paramref name="axis"/> has extent
        /// <paramref name="size"/>, at Int32 indices (repeated ones accumulate); the transpose of the
        /// tensor-index <c>Gather</c>.</summary>
        /// <param name="axis">The axis of the result that is indexed.</param>
        /// <param name="indices">Int32 target indices.</param>
        /// <param name="size">The extent of <paramref name="axis"/> in the result.</param>
        /// <param name="batchDims">The number of leading batch axes shared with the indices.</param>
        /// <returns>The scattered tensor.</returns>
        public Tensor ScatterAdd(int axis, Tensor indices, int size, int batchDims = 0) =>
            t.ScatterAdd(axis, indices, size, FSharpOption<int>.Some(batchDims));

        /// <summary>The running sum along an axis.</summary>
        /// <param name="axis">The axis to sum along.</param>
        /// <param name="reverse">Sum from the end.</param>
        /// <returns>A tensor of the same shape.</returns>
        public Tensor Cumsum(int axis, bool reverse = false) => t.Cumsum(axis, Flag(reverse));

        /// <summary>The stable sorting permutation (Int32) along an axis; NaN sorts last.</summary>
        /// <param name="axis">The axis to sort along.</param>
        /// <param name="descending">Largest first.</param>
        /// <returns>Int32 indices of the same shape.</returns>
        public Tensor Argsort(int axis = -1, bool descending = false) => t.Argsort(axis, Flag(descending));

        /// <summary>The values sorted along an axis (stable, NaN last; differentiable).</summary>
        /// <param name="axis">The axis to sort along.</param>
        /// <param name="descending">Largest first.</param>
        /// <returns>The sorted tensor.</returns>
        public Tensor Sort(int axis = -1, bool descending = false) => t.Sort(axis, Flag(descending));

        /// <summary>NumPy's <c>searchsorted</c> on this tensor's sorted rows: Int32 insertion points.</summary>
        /// <param name="values">Values [..., m] with this tensor's leading axes (any shape when it is 1-d).</param>
        /// <param name="right">Count the entries at or below each value (side 'right') instead of below.</param>
        /// <returns>Int32 indices shaped like <paramref name="values"/>.</returns>
        public Tensor SearchSorted(Tensor values, bool right = false) => t.SearchSorted(values, Flag(right));

        /// <summary>The shape as a read-only list (the same values as <see cref="Tensor.Shape"/>).</summary>
        public IReadOnlyList<int> Dimensions => t.Shape;
    }

    /// <summary>Static members of <see cref="Tensor"/> with C# optional parameters.</summary>
    extension(Tensor)
    {
        /// <summary>A tensor of the given shape filled with <paramref name="value"/>.</summary>
        /// <param name="shape">The dimensions.</param>
        /// <param name="value">The fill value.</param>
        /// <param name="dtype">The element type (Float32 by default).</param>
        /// <returns>The new tensor.</returns>
        public static Tensor Full(int[] shape, double value, DType? dtype = null) =>
            Tensor.Full(shape, value, Interop.OptionRef(dtype));

        /// <summary>A rank-0 tensor.</summary>
        /// <param name="value">The value.</param>
        /// <param name="dtype">The element type (Float32 by default).</param>
        /// <returns>The scalar tensor.</returns>
        public static Tensor Scalar(double value, DType? dtype = null) => Tensor.Scalar(value, Interop.OptionRef(dtype));

        /// <summary>A Float32 tensor from a two-dimensional array (shape [rows, columns]).</summary>
        /// <param name="data">The values.</param>
        /// <returns>The new tensor.</returns>
        public static Tensor FromArray(float[,] data)
        {
            ArgumentNullException.ThrowIfNull(data);
            var flat = new float[data.Length];
            Buffer.BlockCopy(data, 0, flat, 0, data.Length * sizeof(float));
            return Tensor.FromArray(flat, data.GetLength(0), data.GetLength(1));
        }

        /// <summary>A Float64 tensor from a two-dimensional array (shape [rows, columns]).</summary>
        /// <param name="data">The values.</param>
        /// <returns>The new tensor.</returns>
        public static Tensor FromArray(double[,] data)
        {
            ArgumentNullException.ThrowIfNull(data);
            var flat = new double[data.Length];
            Buffer.BlockCopy(data, 0, flat, 0, data.Length * sizeof(double));
            return Tensor.FromArray(flat, data.GetLength(0), data.GetLength(1));
        }

        /// <summary>Joins tensors along an existing axis.</summary>
        /// <param name="tensors">The tensors (same shape except along <paramref name="axis"/>).</param>
        /// <param name="axis">The axis to join along.</param>
        /// <returns>The joined tensor.</returns>
        public static Tensor Concat(Tensor[] tensors, int axis = 0) => Tensor.Concat(tensors, FSharpOption<int>.Some(axis));

        /// <summary>Joins tensors of equal shape along a new axis.</summary>
        /// <param name="tensors">The tensors.</param>
        /// <param name="axis">The position of the new axis.</param>
        /// <returns>The stacked tensor.</returns>
        public static Tensor Stack(Tensor[] tensors, int axis = 0) => Tensor.Stack(tensors, FSharpOption<int>.Some(axis));

        /// <summary>0, 1, ..., n-1.</summary>
        /// <param name="n">The number of values.</param>
        /// <param name="dtype">The element type (Float32 by default).</param>
        /// <returns>The tensor of shape [n].</returns>
        public static Tensor Arange(int n, DType? dtype = null) => Tensor.Arange(n, Interop.OptionRef(dtype));

        /// <summary>start, start + step, ... up to but excluding stop (NumPy's arange).</summary>
        /// <param name="start">The first value.</param>
        /// <param name="stop">The exclusive bound.</param>
        /// <param name="step">The non-zero increment.</param>
        /// <param name="dtype">The element type (Float32 by default).</param>
        /// <returns>The one-dimensional tensor.</returns>
        public static Tensor Arange(double start, double stop, double step, DType? dtype = null) =>
            Tensor.Arange(start, stop, step, Interop.OptionRef(dtype));

        /// <summary>n evenly spaced values from start to stop inclusive.</summary>
        /// <param name="start">The first value.</param>
        /// <param name="stop">The last value.</param>
        /// <param name="n">The number of values.</param>
        /// <param name="dtype">The element type (Float32 by default).</param>
        /// <returns>The tensor of shape [n].</returns>
        public static Tensor Linspace(double start, double stop, int n, DType? dtype = null) =>
            Tensor.Linspace(start, stop, n, Interop.OptionRef(dtype));

        /// <summary>The n×n identity matrix.</summary>
        /// <param name="n">The size.</param>
        /// <param name="dtype">The element type (Float32 by default).</param>
        /// <returns>The identity matrix.</returns>
        public static Tensor Eye(int n, DType? dtype = null) => Tensor.Eye(n, Interop.OptionRef(dtype));

        /// <summary>One-hot rows: result[i, c] = 1 where labels[i] = c.</summary>
        /// <param name="labels">Class labels in [0, classes).</param>
        /// <param name="classes">The number of classes.</param>
        /// <param name="dtype">The element type (Float32 by default).</param>
        /// <returns>The tensor of shape [labels.Count, classes].</returns>
        public static Tensor OneHot(IReadOnlyList<int> labels, int classes, DType? dtype = null) =>
            Tensor.OneHot(Interop.Labels(labels), classes, Interop.OptionRef(dtype));
    }
}
