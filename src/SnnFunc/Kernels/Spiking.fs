/// Loops of the fused spiking primitives: the LIF and LI recurrences over time (forward, tangent and
/// transposed), and products of sparse 0/1 spike matrices with dense weights.
namespace SnnFunc.Kernels

open System
open System.Numerics
open System.Numerics.Tensors
open System.Runtime.CompilerServices

/// Constants of the discretised current-based LIF / LI recurrence (Euler, step dt):
///   v1 = v + a (vLeak - v + i);  i = b i + c[t];  z = v1 > vTh;  v = reset(v1, z)
/// with a = dt / tauMem and b = 1 - dt / tauSyn. Reset: to vReset (ResetToValue) or v1 - z (vTh - vReset).
[<Struct>]
type LifConstants<'T> =
    {
        A: 'T
        B: 'T
        VLeak: 'T
        VTh: 'T
        VReset: 'T
        /// VTh - VReset, rounded once (the subtraction reset removes exactly this).
        Jump: 'T
        ResetToValue: bool
    }

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

    /// Forward LIF over T steps for neurons [j0, j1) of M, from zero state. c: input currents
    /// [T*M]; writes the spikes z [T*M] and the membrane before reset v1 [T*M]. SIMD across neurons.
    let inline lifForward (k: LifConstants< ^T >, steps: int, m: int, j0: int, j1: int, c: ^T[], z: ^T[], v1: ^T[]) =
        let n = j1 - j0
        let v = Array.zeroCreate< ^T> n
        let i = Array.zeroCreate< ^T> n
        let w = Vector< ^T>.Count
        let va, vb, vleak = Vector< ^T>(k.A), Vector< ^T>(k.B), Vector< ^T>(k.VLeak)

        let vth, vreset, vjump =
            Vector< ^T>(k.VTh), Vector< ^T>(k.VReset), Vector< ^T>(k.Jump)

        let one, zero = Vector< ^T>.One, Vector< ^T>.Zero

        for t in 0 .. steps - 1 do
            let o = t * m + j0
            let mutable j = 0

            while j <= n - w do
                let vv = Vector< ^T>(v, j)
                let ii = Vector< ^T>(i, j)
                let vj = vv + (vleak - vv + ii) * va
                (ii * vb + Vector< ^T>(c, o + j)).CopyTo(i, j)
                let spike = Vector.GreaterThan< ^T>(vj, vth)
                vj.CopyTo(v1, o + j)
                Vector.ConditionalSelect< ^T>(spike, one, zero).CopyTo(z, o + j)

                let reset =
                    if k.ResetToValue then
                        Vector.ConditionalSelect< ^T>(spike, vreset, vj)
                    else
                        vj - Vector.ConditionalSelect< ^T>(spike, vjump, zero)

                reset.CopyTo(v, j)
                j <- j + w

            while j < n do
                let vj = v[j] + (k.VLeak - v[j] + i[j]) * k.A
                i[j] <- i[j] * k.B + c[o + j]
                let spike = vj > k.VTh
                v1[o + j] <- vj

                z[o + j] <-
                    if spike then
                        LanguagePrimitives.GenericOne
                    else
                        LanguagePrimitives.GenericZero

                v[j] <-
                    if not spike then vj
                    elif k.ResetToValue then k.VReset
                    else vj - k.Jump

                j <- j + 1

    /// Tangent of lifForward for neurons [j0, j1): from input-current tangents dc [T*M], the spike
    /// tangents dz and membrane tangents dv1, given the surrogate derivatives s and spikes z.
    let inline lifTangent (k: LifConstants< ^T >, steps: int, m: int, j0: int, j1: int, s: ^T[], z: ^T[], dc: ^T[], dz: ^T[], dv1: ^T[]) =
        let n = j1 - j0
        let dv = Array.zeroCreate< ^T> n
        let di = Array.zeroCreate< ^T> n
        let w = Vector< ^T>.Count
        let va, vb, one = Vector< ^T>(k.A), Vector< ^T>(k.B), Vector< ^T>.One

        for t in 0 .. steps - 1 do
            let o = t * m + j0
            let mutable j = 0

            while j <= n - w do
                let vdv = Vector< ^T>(dv, j)
                let vdi = Vector< ^T>(di, j)
                let d = vdv + (vdi - vdv) * va
                (vdi * vb + Vector< ^T>(dc, o + j)).CopyTo(di, j)
                d.CopyTo(dv1, o + j)
                (Vector< ^T>(s, o + j) * d).CopyTo(dz, o + j)
                // The reset carries no gradient: a reset to a value zeroes the tangent on a spike.
                (if k.ResetToValue then
                     d * (one - Vector< ^T>(z, o + j))
                 else
                     d)
                    .CopyTo(dv, j)

                j <- j + w

            while j < n do
                let d = dv[j] + (di[j] - dv[j]) * k.A
                di[j] <- di[j] * k.B + dc[o + j]
                dv1[o + j] <- d
                dz[o + j] <- s[o + j] * d

                dv[j] <-
                    if k.ResetToValue then
                        d * (LanguagePrimitives.GenericOne - z[o + j])
                    else
                        d

                j <- j + 1

    /// Transpose of lifTangent (backpropagation through time) for neurons [j0, j1): input-current
    /// cotangents dc from the cotangents of the spikes gz and of the membrane gv1 (null = zero).
    let inline lifTranspose (k: LifConstants< ^T >, steps: int, m: int, j0: int, j1: int, s: ^T[], z: ^T[], gz: ^T[], gv1: ^T[], dc: ^T[]) =
        let n = j1 - j0
        let lv = Array.zeroCreate< ^T> n
        let li = Array.zeroCreate< ^T> n
        let w = Vector< ^T>.Count
        let va, vb, one = Vector< ^T>(k.A), Vector< ^T>(k.B), Vector< ^T>.One
        let oneMinusA: ^T = LanguagePrimitives.GenericOne - k.A
        let vOneMinusA = Vector< ^T>(oneMinusA)
        let hasZ = not (isNull gz)
        let hasV = not (isNull gv1)

        for t in steps - 1 .. -1 .. 0 do
            let o = t * m + j0
            let mutable j = 0

            while j <= n - w do
                let vlv = Vector< ^T>(lv, j)

                let mutable l1 =
                    if k.ResetToValue then
                        vlv * (one - Vector< ^T>(z, o + j))
                    else
                        vlv

                if hasZ then
                    l1 <- l1 + Vector< ^T>(gz, o + j) * Vector< ^T>(s, o + j)

                if hasV then
                    l1 <- l1 + Vector< ^T>(gv1, o + j)

                let vli = Vector< ^T>(li, j)
                vli.CopyTo(dc, o + j)
                (vb * vli + va * l1).CopyTo(li, j)
                (vOneMinusA * l1).CopyTo(lv, j)
                j <- j + w

            while j < n do
                let mutable l1 =
                    if k.ResetToValue then
                        lv[j] * (LanguagePrimitives.GenericOne - z[o + j])
                    else
                        lv[j]

                if hasZ then
                    l1 <- l1 + gz[o + j] * s[o + j]

                if hasV then
                    l1 <- l1 + gv1[o + j]

                dc[o + j] <- li[j]
                li[j] <- k.B * li[j] + k.A * l1
                lv[j] <- oneMinusA * l1
                j <- j + 1

    /// Forward LI (leaky integrator, no spikes) from zero state: v[t] = (1-a) v[t-1] + a (i[t-1] + vLeak),
    /// i[t] = b i[t-1] + c[t]. Writes the membrane v [T*M].
    let inline liForward (a: ^T, b: ^T, vLeak: ^T, steps: int, m: int, c: ^T[], v: ^T[]) =
        let vs = Array.zeroCreate< ^T> m
        let i = Array.zeroCreate< ^T> m

        for t in 0 .. steps - 1 do
            let o = t * m

            for j in 0 .. m - 1 do
                let vj = vs[j] + (vLeak - vs[j] + i[j]) * a
                i[j] <- b * i[j] + c[o + j]
                vs[j] <- vj
                v[o + j] <- vj

    /// Transpose of the (linear, vLeak = 0) LI map: input-current cotangents from membrane cotangents.
    let inline liTranspose (a: ^T, b: ^T, steps: int, m: int, gv: ^T[], dc: ^T[]) =
        let lv = Array.zeroCreate< ^T> m
        let li = Array.zeroCreate< ^T> m
        let oneMinusA = LanguagePrimitives.GenericOne - a

        for t in steps - 1 .. -1 .. 0 do
            let o = t * m

            for j in 0 .. m - 1 do
                let l1 = lv[j] + gv[o + j]
                dc[o + j] <- li[j]
                li[j] <- b * li[j] + a * l1
                lv[j] <- oneMinusA * l1

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
    /// Splits neurons [0, m) into chunks (multiples of the SIMD width) run on up to
    /// Parallelism.MaxThreads threads when the work is large enough to pay for it.
    static member private ForChunks(steps: int, m: int, body: int -> int -> unit) =
        let chunks = min Parallelism.MaxThreads (max 1 (steps * m / 200_000))

        if chunks <= 1 then
            body 0 m
        else
            let w = Vector<float32>.Count
            let size = ((m + chunks - 1) / chunks + w - 1) / w * w

            Threading.Tasks.Parallel.For(
                0,
                chunks,
                fun ci ->
                    let j0 = min m (ci * size)
                    let j1 = min m (j0 + size)

                    if j1 > j0 then
                        body j0 j1
            )
            |> ignore

    static member LifForward(k: LifConstants<float32>, steps, m, c: float32[], z, v1) =
        Spiking.ForChunks(steps, m, fun j0 j1 -> Spiking.LifForwardRange(k, steps, m, j0, j1, c, z, v1))

    static member LifForward(k: LifConstants<float>, steps, m, c: float[], z, v1) =
        Spiking.ForChunks(steps, m, fun j0 j1 -> Spiking.LifForwardRange(k, steps, m, j0, j1, c, z, v1))

    static member LifTangent(k: LifConstants<float32>, steps, m, s: float32[], z, dc, dz, dv1) =
        Spiking.ForChunks(steps, m, fun j0 j1 -> Spiking.LifTangentRange(k, steps, m, j0, j1, s, z, dc, dz, dv1))

    static member LifTangent(k: LifConstants<float>, steps, m, s: float[], z, dc, dz, dv1) =
        Spiking.ForChunks(steps, m, fun j0 j1 -> Spiking.LifTangentRange(k, steps, m, j0, j1, s, z, dc, dz, dv1))

    static member LifTranspose(k: LifConstants<float32>, steps, m, s: float32[], z, gz, gv1, dc) =
        Spiking.ForChunks(steps, m, fun j0 j1 -> Spiking.LifTransposeRange(k, steps, m, j0, j1, s, z, gz, gv1, dc))

    static member LifTranspose(k: LifConstants<float>, steps, m, s: float[], z, gz, gv1, dc) =
        Spiking.ForChunks(steps, m, fun j0 j1 -> Spiking.LifTransposeRange(k, steps, m, j0, j1, s, z, gz, gv1, dc))

    static member private LifForwardRange(k: LifConstants<float32>, steps, m, j0, j1, c: float32[], z, v1) =
        Loops.lifForward (k, steps, m, j0, j1, c, z, v1)

    static member private LifForwardRange(k: LifConstants<float>, steps, m, j0, j1, c: float[], z, v1) =
        Loops.lifForward (k, steps, m, j0, j1, c, z, v1)

    static member private LifTangentRange(k: LifConstants<float32>, steps, m, j0, j1, s: float32[], z, dc, dz, dv1) =
        Loops.lifTangent (k, steps, m, j0, j1, s, z, dc, dz, dv1)

    static member private LifTangentRange(k: LifConstants<float>, steps, m, j0, j1, s: float[], z, dc, dz, dv1) =
        Loops.lifTangent (k, steps, m, j0, j1, s, z, dc, dz, dv1)

    static member private LifTransposeRange(k: LifConstants<float32>, steps, m, j0, j1, s: float32[], z, gz, gv1, dc) =
        Loops.lifTranspose (k, steps, m, j0, j1, s, z, gz, gv1, dc)

    static member private LifTransposeRange(k: LifConstants<float>, steps, m, j0, j1, s: float[], z, gz, gv1, dc) =
        Loops.lifTranspose (k, steps, m, j0, j1, s, z, gz, gv1, dc)

    static member LiForward(a: float32, b, vLeak, steps, m, c, v) =
        Loops.liForward (a, b, vLeak, steps, m, c, v)

    static member LiForward(a: float, b, vLeak, steps, m, c, v) =
        Loops.liForward (a, b, vLeak, steps, m, c, v)

    static member LiTranspose(a: float32, b, steps, m, gv, dc) =
        Loops.liTranspose (a, b, steps, m, gv, dc)

    static member LiTranspose(a: float, b, steps, m, gv, dc) =
        Loops.liTranspose (a, b, steps, m, gv, dc)

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
        Spiking.CompressBits(Runtime.InteropServices.MemoryMarshal.Cast<float32, int>(ReadOnlySpan x), BitConverter.SingleToInt32Bits 1.0f, rows, width, maxDensity)

    static member TryCompress(x: float[], rows: int, width: int, maxDensity: float) =
        Spiking.CompressBits(Runtime.InteropServices.MemoryMarshal.Cast<float, int64>(ReadOnlySpan x), BitConverter.DoubleToInt64Bits 1.0, rows, width, maxDensity)

    static member SparseTimesDense(x, w: float32[], n, out) = Loops.sparseTimesDense (x, w, n, out)

    static member SparseTimesDense(x, w: float[], n, out) = Loops.sparseTimesDense (x, w, n, out)

    static member SparseTransposeTimesDense(x, ct: float32[], n, g) =
        Loops.sparseTransposeTimesDense (x, ct, n, g)

    static member SparseTransposeTimesDense(x, ct: float[], n, g) =
        Loops.sparseTransposeTimesDense (x, ct, n, g)
