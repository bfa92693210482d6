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
    { A: 'T
      B: 'T
      VLeak: 'T
      VTh: 'T
      VReset: 'T
      /// VTh - VReset, rounded once (the subtraction reset removes exactly this).
      Jump: 'T
      ResetToValue: bool }

/// Compressed sparse rows of a 0/1 matrix: row r has its ones at Cols[RowStart[r] .. RowStart[r+1]-1].
type SpikeRows =
    { Rows: int
      Width: int
      RowStart: int[]
      Cols: int[] }

/// Generic bodies of the loops (inline: specialised for each element type at its call site).
module internal Loops =

    /// Forward LIF over T steps of M neurons from zero state. c: input currents [T*M]; writes the
    /// spikes z [T*M] and the membrane before reset v1 [T*M].
    let inline lifForward (k: LifConstants< ^T>, steps: int, m: int, c: ^T[], z: ^T[], v1: ^T[])
        =
        let v = Array.zeroCreate< ^T> m
        let i = Array.zeroCreate< ^T> m

        for t in 0 .. steps - 1 do
            let o = t * m

            for j in 0 .. m - 1 do
                let vj = v[j] + (k.VLeak - v[j] + i[j]) * k.A
                i[j] <- k.B * i[j] + c[o + j]
                let spike = vj > k.VTh
                v1[o + j] <- vj
                z[o + j] <- if spike then LanguagePrimitives.GenericOne else LanguagePrimitives.GenericZero

                v[j] <-
                    if not spike then vj
                    elif k.ResetToValue then k.VReset
                    else vj - k.Jump

    /// Tangent of LifForward: from input-current tangents dc [T*M], the spike tangents dz and the
    /// membrane tangents dv1, given the surrogate derivatives s [T*M] and spikes z of the forward run.
    let inline lifTangent (k: LifConstants< ^T>, steps: int, m: int, s: ^T[], z: ^T[], dc: ^T[], dz: ^T[], dv1: ^T[])
        =
        let dv = Array.zeroCreate< ^T> m
        let di = Array.zeroCreate< ^T> m

        for t in 0 .. steps - 1 do
            let o = t * m

            for j in 0 .. m - 1 do
                let d = dv[j] + (di[j] - dv[j]) * k.A
                di[j] <- k.B * di[j] + dc[o + j]
                dv1[o + j] <- d
                dz[o + j] <- s[o + j] * d
                // The reset carries no gradient: reset to a value zeroes the tangent on a spike.
                dv[j] <- if k.ResetToValue then d * (LanguagePrimitives.GenericOne - z[o + j]) else d

    /// Transpose of LifTangent (backpropagation through time): input-current cotangents dc from the
    /// cotangents of the spikes gz and of the membrane gv1 (either may be null for zero).
    let inline lifTranspose (k: LifConstants< ^T>, steps: int, m: int, s: ^T[], z: ^T[], gz: ^T[], gv1: ^T[], dc: ^T[])
        =
        let lv = Array.zeroCreate< ^T> m
        let li = Array.zeroCreate< ^T> m
        let oneMinusA = LanguagePrimitives.GenericOne - k.A
        let hasZ = not (isNull gz)
        let hasV = not (isNull gv1)

        for t in steps - 1 .. -1 .. 0 do
            let o = t * m

            for j in 0 .. m - 1 do
                let mutable l1 = if k.ResetToValue then lv[j] * (LanguagePrimitives.GenericOne - z[o + j]) else lv[j]

                if hasZ then
                    l1 <- l1 + gz[o + j] * s[o + j]

                if hasV then
                    l1 <- l1 + gv1[o + j]

                dc[o + j] <- li[j]
                li[j] <- k.B * li[j] + k.A * l1
                lv[j] <- oneMinusA * l1

    /// Forward LI (leaky integrator, no spikes) from zero state: v[t] = (1-a) v[t-1] + a (i[t-1] + vLeak),
    /// i[t] = b i[t-1] + c[t]. Writes the membrane v [T*M].
    let inline liForward (a: ^T, b: ^T, vLeak: ^T, steps: int, m: int, c: ^T[], v: ^T[])
        =
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
    let inline liTranspose (a: ^T, b: ^T, steps: int, m: int, gv: ^T[], dc: ^T[])
        =
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

    /// The rows of a [rows; width] matrix as sparse rows when it holds only 0s and 1s and at most
    /// `maxDensity` of it is ones; otherwise None (then a dense product is the better choice).
    let inline tryCompress (x: ^T[], rows: int, width: int, maxDensity: float)
        =
        let mutable ones = 0
        let mutable binary = true
        let mutable p = 0

        while binary && p < x.Length do
            let v = x[p]

            if v = LanguagePrimitives.GenericOne then ones <- ones + 1
            elif v <> LanguagePrimitives.GenericZero then binary <- false

            p <- p + 1

        if not binary || float ones > maxDensity * float (max 1 x.Length) then
            None
        else
            let rowStart = Array.zeroCreate (rows + 1)
            let cols = Array.zeroCreate ones
            let mutable q = 0

            for r in 0 .. rows - 1 do
                rowStart[r] <- q
                let o = r * width

                for j in 0 .. width - 1 do
                    if x[o + j] = LanguagePrimitives.GenericOne then
                        cols[q] <- j
                        q <- q + 1

            rowStart[rows] <- q

            Some
                { Rows = rows
                  Width = width
                  RowStart = rowStart
                  Cols = cols }

    /// out[r, :] <- Σ over ones (r, j) of w[j, :]   (out = x · w for a sparse 0/1 x; w is [width; n]).
    let inline sparseTimesDense (x: SpikeRows, w: ^T[], n: int, out: ^T[]) =
        Array.Clear out

        for r in 0 .. x.Rows - 1 do
            let dst = Span< ^T>(out, r * n, n)

            for q in x.RowStart[r] .. x.RowStart[r + 1] - 1 do
                TensorPrimitives.Add< ^T>(Span< ^T>.op_Implicit dst, ReadOnlySpan< ^T>(w, x.Cols[q] * n, n), dst)

    /// g[j, :] <- Σ over ones (r, j) of ct[r, :]   (g = xᵀ · ct for a sparse 0/1 x; g is [width; n]).
    let inline sparseTransposeTimesDense (x: SpikeRows, ct: ^T[], n: int, g: ^T[])
        =
        Array.Clear g

        for r in 0 .. x.Rows - 1 do
            let src = ReadOnlySpan< ^T>(ct, r * n, n)

            for q in x.RowStart[r] .. x.RowStart[r + 1] - 1 do
                let dst = Span< ^T>(g, x.Cols[q] * n, n)
                TensorPrimitives.Add< ^T>(Span< ^T>.op_Implicit dst, src, dst)

/// The loops above, instantiated for Float32 and Float64 (the inline bodies specialise per type, so
/// the arithmetic compiles to plain machine instructions).
[<AbstractClass; Sealed>]
type Spiking =
    [<MethodImpl(MethodImplOptions.AggressiveOptimization)>]
    static member LifForward(k: LifConstants<float32>, steps, m, c: float32[], z, v1) = Loops.lifForward (k, steps, m, c, z, v1)
    [<MethodImpl(MethodImplOptions.AggressiveOptimization)>]
    static member LifForward(k: LifConstants<float>, steps, m, c: float[], z, v1) = Loops.lifForward (k, steps, m, c, z, v1)
    [<MethodImpl(MethodImplOptions.AggressiveOptimization)>]
    static member LifTangent(k: LifConstants<float32>, steps, m, s: float32[], z, dc, dz, dv1) = Loops.lifTangent (k, steps, m, s, z, dc, dz, dv1)
    [<MethodImpl(MethodImplOptions.AggressiveOptimization)>]
    static member LifTangent(k: LifConstants<float>, steps, m, s: float[], z, dc, dz, dv1) = Loops.lifTangent (k, steps, m, s, z, dc, dz, dv1)
    [<MethodImpl(MethodImplOptions.AggressiveOptimization)>]
    static member LifTranspose(k: LifConstants<float32>, steps, m, s: float32[], z, gz, gv1, dc) = Loops.lifTranspose (k, steps, m, s, z, gz, gv1, dc)
    [<MethodImpl(MethodImplOptions.AggressiveOptimization)>]
    static member LifTranspose(k: LifConstants<float>, steps, m, s: float[], z, gz, gv1, dc) = Loops.lifTranspose (k, steps, m, s, z, gz, gv1, dc)
    [<MethodImpl(MethodImplOptions.AggressiveOptimization)>]
    static member LiForward(a: float32, b, vLeak, steps, m, c, v) = Loops.liForward (a, b, vLeak, steps, m, c, v)
    [<MethodImpl(MethodImplOptions.AggressiveOptimization)>]
    static member LiForward(a: float, b, vLeak, steps, m, c, v) = Loops.liForward (a, b, vLeak, steps, m, c, v)
    [<MethodImpl(MethodImplOptions.AggressiveOptimization)>]
    static member LiTranspose(a: float32, b, steps, m, gv, dc) = Loops.liTranspose (a, b, steps, m, gv, dc)
    [<MethodImpl(MethodImplOptions.AggressiveOptimization)>]
    static member LiTranspose(a: float, b, steps, m, gv, dc) = Loops.liTranspose (a, b, steps, m, gv, dc)
    static member TryCompress(x: float32[], rows, width, maxDensity) = Loops.tryCompress (x, rows, width, maxDensity)
    static member TryCompress(x: float[], rows, width, maxDensity) = Loops.tryCompress (x, rows, width, maxDensity)
    [<MethodImpl(MethodImplOptions.AggressiveOptimization)>]
    static member SparseTimesDense(x, w: float32[], n, out) = Loops.sparseTimesDense (x, w, n, out)
    [<MethodImpl(MethodImplOptions.AggressiveOptimization)>]
    static member SparseTimesDense(x, w: float[], n, out) = Loops.sparseTimesDense (x, w, n, out)
    [<MethodImpl(MethodImplOptions.AggressiveOptimization)>]
    static member SparseTransposeTimesDense(x, ct: float32[], n, g) = Loops.sparseTransposeTimesDense (x, ct, n, g)
    [<MethodImpl(MethodImplOptions.AggressiveOptimization)>]
    static member SparseTransposeTimesDense(x, ct: float[], n, g) = Loops.sparseTransposeTimesDense (x, ct, n, g)
