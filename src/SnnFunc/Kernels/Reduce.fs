/// Reductions along one axis of a contiguous buffer viewed as [pre; n; post].
namespace SnnFunc.Kernels

open System
open System.Numerics
open System.Numerics.Tensors
open System.Runtime.CompilerServices

/// The reduction a kernel computes.
type ReduceKind =
    | Sum = 0
    | Max = 1
    | Min = 2

[<AbstractClass; Sealed>]
type Reduce =

    /// dst[p, q] <- reduce over j of src[p, j, q], for src viewed as [pre; n; post] and dst as
    /// [pre; post]. Max and min propagate NaN; the sum of an empty axis is 0 (max/min need n >= 1).
    static member Axis<'T when 'T :> INumber<'T>>(kind: ReduceKind, src: 'T[], pre: int, n: int, post: int, dst: 'T[]) =
        if post = 1 then
            for p in 0 .. pre - 1 do
                let row = ReadOnlySpan<'T>(src, p * n, n)

                dst[p] <-
                    match kind with
                    | ReduceKind.Sum -> TensorPrimitives.Sum<'T>(row)
                    | ReduceKind.Max -> TensorPrimitives.Max<'T>(row)
                    | _ -> TensorPrimitives.Min<'T>(row)
        else
            for p in 0 .. pre - 1 do
                let acc = Span<'T>(dst, p * post, post)

                if n = 0 then
                    acc.Clear()
                else
                    ReadOnlySpan<'T>(src, p * n * post, post).CopyTo(acc)

                    for j in 1 .. n - 1 do
                        let row = ReadOnlySpan<'T>(src, (p * n + j) * post, post)

                        match kind with
                        | ReduceKind.Sum -> TensorPrimitives.Add<'T>(Span<'T>.op_Implicit acc, row, acc)
                        | ReduceKind.Max -> TensorPrimitives.Max<'T>(Span<'T>.op_Implicit acc, row, acc)
                        | _ -> TensorPrimitives.Min<'T>(Span<'T>.op_Implicit acc, row, acc)

    /// dst[p, q] <- the first j maximising (or, if `smallest`, minimising) src[p, j, q]; the first NaN
    /// wins when there is one (NumPy's rule). Needs n >= 1.
    static member ArgExtremum<'T when 'T :> INumber<'T>>(smallest: bool, src: 'T[], pre: int, n: int, post: int, dst: int[]) =
        for p in 0 .. pre - 1 do
            for q in 0 .. post - 1 do
                let baseIndex = p * n * post + q
                let mutable best = src[baseIndex]
                let mutable bestIndex = 0
                let mutable j = 1

                while j < n && not ('T.IsNaN best) do
                    let v = src[baseIndex + j * post]

                    if
                        'T.IsNaN v
                        || (if smallest then
                                'T.op_LessThan (v, best)
                            else
                                'T.op_GreaterThan (v, best))
                    then
                        best <- v
                        bestIndex <- j

                    j <- j + 1

                dst[p * post + q] <- bestIndex
