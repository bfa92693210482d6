/// Loops of the fused spiking primitives besides the LIF recurrence (Lif.fs): closed-form surrogate
/// derivatives, and products of sparse 0/1 spike matrices with dense weights.
namespace SnnFunc.Kernels

open System
open System.Numerics
open System.Numerics.Tensors
open System.Runtime.CompilerServices

/// Closed-form surrogate derivatives the fused kernels evaluate directly (Custom: by tensor ops).
type SurrogateShape =
    /// 1 / (p |x| + 1)^2
    | SuperSpike = 0
    /// p σ(p x) (1 - σ(p x))
    | Sigmoid = 1
    /// (p/2) / (1 + (π p x / 2)^2)
    | Arctan = 2
    /// max(0, 1 - |x|/p) / p
    | Triangle = 3
    /// 1/p where |x| < p/2, else 0
    | Boxcar = 4
    /// 1
    | StraightThrough = 5
    | Custom = 99

/// Compressed sparse rows of a 0/1 matrix: row r has its ones at Cols[RowStart[r] .. RowStart[r+1]-1].
type SpikeRows =
    {
        Rows: int
        Width: int
        RowStart: int[]
        Cols: int[]
    }

/// Generic bodies of the loops (inline: specialised for each element type at its call site).
module internal Loops =

    /// out[r, :] <- Σ over ones (r, j) of w[j, :]   (out = x · w for a sparse 0/1 x; w is [width; n]).
    /// Rows in chunks over the threads (each fills its own rows of out): a row without ones is
    /// cleared, a row with ones starts as a copy of its first one's weights (one pass over it fewer
    /// than clearing first).
    let inline sparseTimesDense (x: SpikeRows, w: ^T[], n: int, out: ^T[]) =
        let chunks =
            Parallelism.ChunkCount(int64 x.Rows * int64 n + int64 x.Cols.Length * int64 n)

        Parallelism.RunChunks(
            chunks,
            fun c ->
                let r0, r1 = Parallelism.Part(x.Rows, 1, c, chunks)

                for r in r0 .. r1 - 1 do
                    let dst = Span< ^T>(out, r * n, n)
                    let q0, q1 = x.RowStart[r], x.RowStart[r + 1]

                    if q0 = q1 then
                        dst.Clear()
                    else
                        ReadOnlySpan< ^T>(w, x.Cols[q0] * n, n).CopyTo dst

                        for q in q0 + 1 .. q1 - 1 do
                            TensorPrimitives.Add< ^T>(Span< ^T>.op_Implicit dst, ReadOnlySpan< ^T>(w, x.Cols[q] * n, n), dst)
        )

    /// g[j, :] <- Σ over ones (r, j) of ct[r, :]   (g = xᵀ · ct for a sparse 0/1 x; g is [width; n]).
    /// The rows of x add into shared rows of g, so the threads split g's columns instead (slices of
    /// whole vectors), each over every one of x.
    let inline sparseTransposeTimesDense (x: SpikeRows, ct: ^T[], n: int, g: ^T[]) =
        let chunks =
            Parallelism.ChunkCount(int64 x.Width * int64 n + int64 x.Cols.Length * int64 n)

        Parallelism.RunChunks(
            chunks,
            fun c ->
                let c0, c1 = Parallelism.Part(n, Vector< ^T>.Count, c, chunks)
                let len = c1 - c0

                if len > 0 then
                    for j in 0 .. x.Width - 1 do
                        Span< ^T>(g, j * n + c0, len).Clear()

                    for r in 0 .. x.Rows - 1 do
                        let src = ReadOnlySpan< ^T>(ct, r * n + c0, len)

                        for q in x.RowStart[r] .. x.RowStart[r + 1] - 1 do
                            let dst = Span< ^T>(g, x.Cols[q] * n + c0, len)
                            TensorPrimitives.Add< ^T>(Span< ^T>.op_Implicit dst, src, dst)
        )

/// Surrogate derivatives s = f(v - vTh) in blocks that stay in L1 cache, vectorised by
/// TensorPrimitives.
module internal SurrogateLoops =
    open System.Numerics.Tensors

    let inline evaluate (shape: SurrogateShape, p: ^T, vTh: ^T, v: ^T[], s: ^T[]) =
        let one: ^T = LanguagePrimitives.GenericOne
        let half: ^T = one / (one + one)
        let pi: ^T = LanguagePrimitives.GenericOne * (^T: (static member Pi: ^T) ())
        let block = 4096
        let mutable start = 0

        while start < v.Length do
            let len = min block (v.Length - start)
            let x = Span< ^T>(s, start, len)
            let xr = ReadOnlySpan< ^T>(s, start, len)
            TensorPrimitives.Subtract< ^T>(ReadOnlySpan< ^T>(v, start, len), vTh, x)

            match shape with
            | SurrogateShape.SuperSpike ->
                TensorPrimitives.Abs< ^T>(xr, x)
                TensorPrimitives.Multiply< ^T>(xr, p, x)
                TensorPrimitives.Add< ^T>(xr, one, x)
                TensorPrimitives.Multiply< ^T>(xr, xr, x)
                TensorPrimitives.Reciprocal< ^T>(xr, x)
            | SurrogateShape.Sigmoid ->
                TensorPrimitives.Multiply< ^T>(xr, p, x)
                TensorPrimitives.Sigmoid< ^T>(xr, x)

                for q in 0 .. len - 1 do
                    x[q] <- x[q] * (one - x[q]) * p
            | SurrogateShape.Arctan ->
                TensorPrimitives.Multiply< ^T>(xr, pi * p * half, x)
                TensorPrimitives.Multiply< ^T>(xr, xr, x)
                TensorPrimitives.Add< ^T>(xr, one, x)
                TensorPrimitives.Divide< ^T>(p * half, xr, x)
            | SurrogateShape.Triangle ->
                for q in 0 .. len - 1 do
                    let r = one - abs x[q] / p

                    x[q] <-
                        (if r > LanguagePrimitives.GenericZero then
                             r
                         else
                             LanguagePrimitives.GenericZero)
                        / p
            | SurrogateShape.Boxcar ->
                for q in 0 .. len - 1 do
                    x[q] <-
                        if abs x[q] < p * half then
                            one / p
                        else
                            LanguagePrimitives.GenericZero
            | SurrogateShape.StraightThrough -> x.Fill one
            | _ -> invalidArg "shape" "SurrogateLoops.evaluate: a custom surrogate has no closed form here"

            start <- start + len

/// The loops above, instantiated for Float32 and Float64 (the inline bodies specialise per type, so
/// the arithmetic compiles to plain machine instructions).
[<AbstractClass; Sealed>]
type Spiking =
    /// s <- f(v - vTh) for a closed-form surrogate shape with parameter p.
    static member Surrogate(shape, p: float32, vTh: float32, v: float32[], s: float32[]) =
        SurrogateLoops.evaluate (shape, p, vTh, v, s)

    static member Surrogate(shape, p: float, vTh: float, v: float[], s: float[]) =
        SurrogateLoops.evaluate (shape, p, vTh, v, s)

    /// One pass over the bit patterns of rows [r0, r1) of x: runs of zeros (+0.0 is all-zero bits)
    /// are skipped by a vectorised search, every other element must have the bits of 1.0. Their ones'
    /// columns, and per row the count of ones before it (from r0); None as soon as x proves not
    /// binary or holds more than `limit` ones.
    static member private CompressRange<'I when 'I: struct and 'I :> IEquatable<'I> and 'I: (new: unit -> 'I) and 'I :> ValueType>
        (bits: ReadOnlySpan<'I>, one: 'I, r0: int, r1: int, width: int, limit: int)
        =
        let cols = ResizeArray<int>()
        let rowStart = Array.zeroCreate (r1 - r0 + 1)
        let part = bits.Slice(r0 * width, (r1 - r0) * width)
        let mutable row = 0
        let mutable p = 0
        let mutable ok = true

        while ok && p < part.Length do
            let next = part.Slice(p).IndexOfAnyExcept(Unchecked.defaultof<'I>)

            if next < 0 then
                p <- part.Length
            else
                p <- p + next

                if not (part[p].Equals one) || cols.Count >= limit then
                    ok <- false
                else
                    let r = p / width

                    while row < r do
                        row <- row + 1
                        rowStart[row] <- cols.Count

                    cols.Add(p - r * width)
                    p <- p + 1

        if not ok then
            None
        else
            while row < r1 - r0 do
                row <- row + 1
                rowStart[row] <- cols.Count

            Some(rowStart, cols)

    /// The SpikeRows of the chunks' CompressRange results (rows in order), or None when a chunk
    /// found x not binary or the ones exceed `limit`: the same result as one pass over all rows.
    static member private Join(rows: int, width: int, limit: int, parts: (int[] * ResizeArray<int>) option[]) =
        if parts |> Array.exists Option.isNone then
            None
        else
            let parts = parts |> Array.map Option.get
            let total = parts |> Array.sumBy (fun (_, cols) -> cols.Count)

            if total > limit then
                None
            else
                let rowStart = Array.zeroCreate (rows + 1)
                let cols = Array.zeroCreate total
                let mutable r, q = 0, 0

                for starts, cs in parts do
                    for k in 1 .. starts.Length - 1 do
                        rowStart[r + k] <- q + starts[k]

                    cs.CopyTo(cols, q)
                    r <- r + starts.Length - 1
                    q <- q + cs.Count

                Some
                    {
                        Rows = rows
                        Width = width
                        RowStart = rowStart
                        Cols = cols
                    }

    /// x [rows; width] as SpikeRows when it is 0/1 (`one` the bits of 1.0 as 'I) with at most
    /// maxDensity ones, else None. The rows in chunks over the threads: the scan is a pass over
    /// memory that the product then waits for.
    static member private CompressChunks<'E, 'I
        when 'E: struct
        and 'E: (new: unit -> 'E)
        and 'E :> ValueType
        and 'I: struct
        and 'I :> IEquatable<'I>
        and 'I: (new: unit -> 'I)
        and 'I :> ValueType>
        (x: 'E[], one: 'I, rows: int, width: int, maxDensity: float)
        =
        let limit = int (maxDensity * float (max 1 x.Length))
        let chunks = Parallelism.ChunkCount(int64 x.Length)
        let parts = Array.zeroCreate chunks

        Parallelism.RunChunks(
            chunks,
            fun c ->
                let r0, r1 = Parallelism.Part(rows, 1, c, chunks)
                let bits = Runtime.InteropServices.MemoryMarshal.Cast<'E, 'I>(ReadOnlySpan x)
                parts[c] <- Spiking.CompressRange(bits, one, r0, r1, width, limit)
        )

        Spiking.Join(rows, width, limit, parts)

    /// x [rows; width] as SpikeRows when it is 0/1 with at most maxDensity ones, else None.
    static member TryCompress(x: float32[], rows: int, width: int, maxDensity: float) =
        Spiking.CompressChunks<float32, int>(x, BitConverter.SingleToInt32Bits 1.0f, rows, width, maxDensity)

    static member TryCompress(x: float[], rows: int, width: int, maxDensity: float) =
        Spiking.CompressChunks<float, int64>(x, BitConverter.DoubleToInt64Bits 1.0, rows, width, maxDensity)

    static member SparseTimesDense(x, w: float32[], n, out) = Loops.sparseTimesDense (x, w, n, out)

    static member SparseTimesDense(x, w: float[], n, out) = Loops.sparseTimesDense (x, w, n, out)

    static member SparseTransposeTimesDense(x, ct: float32[], n, g) =
        Loops.sparseTransposeTimesDense (x, ct, n, g)

    static member SparseTransposeTimesDense(x, ct: float[], n, g) =
        Loops.sparseTransposeTimesDense (x, ct, n, g)
