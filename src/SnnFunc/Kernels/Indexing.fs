/// Loops of the data-dependent indexing and ordering primitives: batched gather and scatter-add by
/// index arrays, running sums, stable argsort and sorted search. Buffers are row-major and viewed
/// as [batch; pre; n; post] blocks; indices have been range-checked by the caller.
namespace SnnFunc.Kernels

open System
open System.Numerics
open System.Numerics.Tensors

[<AbstractClass; Sealed>]
type Indexing =

    /// out[b, p, j, q] <- x[b, p, idx[b, j], q] for x [batch; pre; n; post], idx [batch; m],
    /// out [batch; pre; m; post].
    static member Gather<'T>(x: 'T[], idx: int[], batch: int, pre: int, n: int, post: int, m: int, out: 'T[]) =
        for b in 0 .. batch - 1 do
            for p in 0 .. pre - 1 do
                let src = (b * pre + p) * n
                let dst = (b * pre + p) * m

                if post = 1 then
                    for j in 0 .. m - 1 do
                        out[dst + j] <- x[src + idx[b * m + j]]
                else
                    for j in 0 .. m - 1 do
                        Array.Copy(x, (src + idx[b * m + j]) * post, out, (dst + j) * post, post)

    /// out[b, p, idx[b, j], q] += upd[b, p, j, q] into zeros, for upd [batch; pre; m; post],
    /// idx [batch; m], out [batch; pre; size; post]; repeated indices accumulate in index order.
    static member ScatterAdd<'T when 'T :> INumber<'T>>
        (upd: 'T[], idx: int[], batch: int, pre: int, m: int, post: int, size: int, out: 'T[])
        =
        Array.Clear out

        for b in 0 .. batch - 1 do
            for p in 0 .. pre - 1 do
                let src = (b * pre + p) * m
                let dst = (b * pre + p) * size

                if post = 1 then
                    for j in 0 .. m - 1 do
                        let k = dst + idx[b * m + j]
                        out[k] <- out[k] + upd[src + j]
                else
                    for j in 0 .. m - 1 do
                        let d = Span<'T>(out, (dst + idx[b * m + j]) * post, post)
                        TensorPrimitives.Add<'T>(Span<'T>.op_Implicit d, ReadOnlySpan<'T>(upd, (src + j) * post, post), d)

    /// Running sums along the middle axis of x [pre; n; post] (from the end when `reverse`).
    static member Cumsum<'T when 'T :> INumber<'T>>(x: 'T[], pre: int, n: int, post: int, reverse: bool, out: 'T[]) =
        for p in 0 .. pre - 1 do
            let row j = (p * n + j) * post

            for k in 0 .. n - 1 do
                let j = if reverse then n - 1 - k else k
                let dst = Span<'T>(out, row j, post)
                let src = ReadOnlySpan<'T>(x, row j, post)

                if k = 0 then
                    src.CopyTo dst
                else
                    let prev = row (if reverse then j + 1 else j - 1)
                    TensorPrimitives.Add<'T>(ReadOnlySpan<'T>(out, prev, post), src, dst)

    /// The stable sorting permutation along the middle axis of x [pre; n; post]: out[p, k, q] is the
    /// position of the k-th smallest (largest when `descending`) element; NaN sorts last either way
    /// and equal elements keep their order.
    static member Argsort<'T when 'T :> INumber<'T>>(x: 'T[], pre: int, n: int, post: int, descending: bool, out: int[]) =
        let keys = Array.zeroCreate<'T> n
        let order = Array.zeroCreate<int> n

        let compare =
            Comparison<int>(fun i j ->
                let a, b = keys[i], keys[j]

                let c =
                    match 'T.IsNaN a, 'T.IsNaN b with
                    | true, true -> 0
                    | true, false -> 1
                    | false, true -> -1
                    | false, false ->
                        let c = a.CompareTo b
                        if descending then -c else c

                if c <> 0 then c else i.CompareTo j)

        for p in 0 .. pre - 1 do
            for q in 0 .. post - 1 do
                for j in 0 .. n - 1 do
                    keys[j] <- x[(p * n + j) * post + q]
                    order[j] <- j

                Array.Sort(order, compare)

                for k in 0 .. n - 1 do
                    out[(p * n + k) * post + q] <- order[k]

    /// For each row r of sorted [rows; n] and each value of values [rows; m]: the number of row
    /// entries below the value (at or below it when `right`), by binary search. NaN counts as larger
    /// than every number (NumPy's order).
    static member SearchSorted<'T when 'T :> INumber<'T>>(sorted: 'T[], values: 'T[], rows: int, n: int, m: int, right: bool, out: int[]) =
        // a precedes b in NumPy's order (NaN last).
        let less (a: 'T) (b: 'T) =
            not ('T.IsNaN a) && ('T.IsNaN b || 'T.op_LessThan (a, b))

        for r in 0 .. rows - 1 do
            let o = r * n

            for k in 0 .. m - 1 do
                let v = values[r * m + k]
                let mutable lo = 0
                let mutable hi = n

                while lo < hi do
                    let mid = (lo + hi) >>> 1
                    let e = sorted[o + mid]
                    let goRight = if right then not (less v e) else less e v

                    if goRight then lo <- mid + 1 else hi <- mid

                out[r * m + k] <- lo
