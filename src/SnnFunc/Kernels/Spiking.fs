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
    let inline sparseTimesDense (x: SpikeRows, w: ^T[], n: int, out: ^T[]) =
        Array.Clear out

        for r in 0 .. x.Rows - 1 do
            let dst = Span< ^T>(out, r * n, n)

            for q in x.RowStart[r] .. x.RowStart[r + 1] - 1 do
                TensorPrimitives.Add< ^T>(Span< ^T>.op_Implicit dst, ReadOnlySpan< ^T>(w, x.Cols[q] * n, n), dst)

    /// g[j, :] <- Σ over ones (r, j) of ct[r, :]   (g = xᵀ · ct for a sparse 0/1 x; g is [width; n]).
    let inline sparseTransposeTimesDense (x: SpikeRows, ct: ^T[], n: int, g: ^T[]) =
        Array.Clear g

        for r in 0 .. x.Rows - 1 do
            let src = ReadOnlySpan< ^T>(ct, r * n, n)

            for q in x.RowStart[r] .. x.RowStart[r + 1] - 1 do
                let dst = Span< ^T>(g, x.Cols[q] * n, n)
                TensorPrimitives.Add< ^T>(Span< ^T>.op_Implicit dst, src, dst)

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

    /// One pass over the bit patterns of x: runs of zeros (+0.0 is all-zero bits) are skipped by a
    /// vectorised search, every other element must have the bits of 1.0. Stops as soon as x proves
    /// not binary or too dense.
    static member private CompressBits<'I when 'I: struct and 'I :> IEquatable<'I> and 'I: (new: unit -> 'I) and 'I :> ValueType>
        (bits: ReadOnlySpan<'I>, one: 'I, rows: int, width: int, maxDensity: float)
        =
        let limit = int (maxDensity * float (max 1 bits.Length))
        let cols = ResizeArray<int>()
        let rowStart = Array.zeroCreate (rows + 1)
        let mutable row = 0
        let mutable p = 0
        let mutable ok = true

        while ok && p < bits.Length do
            let next = bits.Slice(p).IndexOfAnyExcept(Unchecked.defaultof<'I>)

            if next < 0 then
                p <- bits.Length
            else
                p <- p + next

                if not (bits[p].Equals one) || cols.Count >= limit then
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
            while row < rows do
                row <- row + 1
                rowStart[row] <- cols.Count

            Some
                {
                    Rows = rows
                    Width = width
                    RowStart = rowStart
                    Cols = cols.ToArray()
                }

    /// The rows of a [rows; width] 0/1 matrix as sparse rows, or None when it is not binary or more
    /// than maxDensity of it is ones (a dense product is then the better choice).
    static member TryCompress(x: float32[], rows: int, width: int, maxDensity: float) =
        Spiking.CompressBits(
            Runtime.InteropServices.MemoryMarshal.Cast<float32, int>(ReadOnlySpan x),
            BitConverter.SingleToInt32Bits 1.0f,
            rows,
            width,
            maxDensity
        )

    static member TryCompress(x: float[], rows: int, width: int, maxDensity: float) =
        Spiking.CompressBits(
            Runtime.InteropServices.MemoryMarshal.Cast<float, int64>(ReadOnlySpan x),
            BitConverter.DoubleToInt64Bits 1.0,
            rows,
            width,
            maxDensity
        )

    static member SparseTimesDense(x, w: float32[], n, out) = Loops.sparseTimesDense (x, w, n, out)

    static member SparseTimesDense(x, w: float[], n, out) = Loops.sparseTimesDense (x, w, n, out)

    static member SparseTransposeTimesDense(x, ct: float32[], n, g) =
        Loops.sparseTransposeTimesDense (x, ct, n, g)

    static member SparseTransposeTimesDense(x, ct: float[], n, g) =
        Loops.sparseTransposeTimesDense (x, ct, n, g)
