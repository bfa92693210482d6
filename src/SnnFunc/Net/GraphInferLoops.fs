/// The pointer loops of Graph.infer's step (GraphInfer): the weight rows of a sparse input row
/// added into a population's currents, and one step of the LIF/LI recurrence over its lanes.
module internal SnnFunc.GraphInferLoops

#nowarn "9" // NativePtr: the loops address pinned arrays (comment below)

open System.Numerics
open System.Runtime.InteropServices
open Microsoft.FSharp.NativeInterop

// The loops below read and write through pointers (no bounds or null checks, no spills of array
// references in the vector loops): every index stays below the length of its array (the vector
// loops run to n - width over arrays of at least n lanes, weight rows lie within M·N, series
// offsets within T·B·N).

let inline internal ld (p: nativeptr< ^T >) (i: int) : Vector< ^T > = Vector.Load(NativePtr.add p i)

let inline internal st (x: Vector< ^T >) (p: nativeptr< ^T >) (i: int) = Vector.Store(x, NativePtr.add p i)

/// dst[0 .. n) <- v·w[0 ..] when `first`, else dst + v·w[0 ..] (no multiplication when v is 1).
let inline internal addRow (first: bool) (v: ^T) (w: nativeptr< ^T >) (dst: nativeptr< ^T >) (n: int) =
    let width = Vector< ^T>.Count
    let unit = v = LanguagePrimitives.GenericOne< ^T>
    let vv = Vector< ^T>(v)
    let mutable j = 0

    while j <= n - width do
        let r = ld w j
        let r = if unit then r else r * vv
        st (if first then r else ld dst j + r) dst j
        j <- j + width

    while j < n do
        let r = if unit then NativePtr.get w j else NativePtr.get w j * v
        NativePtr.set dst j (if first then r else NativePtr.get dst j + r)
        j <- j + 1

/// Asks for the cache lines of x[0 .. n) (x86; nothing elsewhere).
let inline internal prefetch (x: nativeptr< ^T >) (n: int) =
    if System.Runtime.Intrinsics.X86.Sse.IsSupported then
        let step = 64 / sizeof< ^T>
        let mutable o = 0

        while o < n do
            System.Runtime.Intrinsics.X86.Sse.Prefetch0(NativePtr.toVoidPtr (NativePtr.add x o))
            o <- o + step

/// dst[0 .. n) <- 0, in vectors (an element-by-element loop was 15 % of the step loop's time:
/// most steps of a sparse input bring no spike).
let inline internal clear (dst: nativeptr< ^T >) (n: int) =
    System.Span< ^T>(NativePtr.toVoidPtr dst, n).Clear()

/// Adds the weight rows of the nonzero inputs x[0 .. M) (scaled by the value unless it is 1) into
/// dst, the first written instead of added: the spike product's order. Whole vectors of zeros
/// are skipped at once (inputs are sparse). Returns false when every input was zero (dst untouched).
let inline internal accumulate (x: nativeptr< ^T >) (m: int) (w: nativeptr< ^T >) (n: int) (dst: nativeptr< ^T >) =
    let zero = LanguagePrimitives.GenericZero< ^T>
    let width = Vector< ^T>.Count
    let mutable first = true
    let mutable q = 0

    // Whole vectors: skipped when all zero, else their lanes checked in order; four at once when
    // all four are zero (their bits' OR is ±0 only then), as most are: one vector at a time, the
    // scan of a sparse input was a fifth of the step loop's time.
    while q <= m - width do
        if
            q <= m - 4 * width
            && Vector.EqualsAll(ld x q ||| ld x (q + width) ||| ld x (q + 2 * width) ||| ld x (q + 3 * width), Vector< ^T>.Zero)
        then
            q <- q + 4 * width
        else
            if not (Vector.EqualsAll(ld x q, Vector< ^T>.Zero)) then
                for r in q .. q + width - 1 do
                    let xr = NativePtr.get x r

                    if xr <> zero then
                        addRow first xr (NativePtr.add w (r * n)) dst n
                        first <- false

            q <- q + width

    while q < m do
        let xq = NativePtr.get x q

        if xq <> zero then
            addRow first xq (NativePtr.add w (q * n)) dst n
            first <- false

        q <- q + 1

    not first

/// One step of a population's recurrence (Kernels/Lif.fs, the same expressions) for one sample,
/// from its input currents c: v and cur hold its state; (LIF) the spikes go to rz, and when
/// `record` the membrane before the reset and the current to rv, ri (the recorded series at
/// this step's row, or scratch rows).
let inline internal stepLanes
    (spiking: bool)
    (toValue: bool)
    (record: bool)
    (uniform: bool)
    (n: int)
    (ka: nativeptr< ^T >, kb: nativeptr< ^T >, kl: nativeptr< ^T >, kth: nativeptr< ^T >, krs: nativeptr< ^T >)
    (c: nativeptr< ^T >)
    (v: nativeptr< ^T >)
    (cur: nativeptr< ^T >)
    (rz: nativeptr< ^T >)
    (rv: nativeptr< ^T >)
    (ri: nativeptr< ^T >)
    =
    let width = Vector< ^T>.Count
    let one, zero = Vector< ^T>.One, Vector< ^T>.Zero
    // Parameters shared by all lanes stay in registers (`uniform` implies n >= 1).
    let splat (p: nativeptr< ^T >) =
        if uniform then Vector< ^T>(NativePtr.get p 0) else zero

    let ua, ub, ul, uth, urs = splat ka, splat kb, splat kl, splat kth, splat krs
    let inline lane (u: Vector< ^T >) (p: nativeptr< ^T >) (j: int) = if uniform then u else ld p j
    let mutable j = 0

    while j <= n - width do
        let vv, ii = ld v j, ld cur j
        let vj = vv + (lane ul kl j - vv + ii) * lane ua ka j
        let inew = ii * lane ub kb j + ld c j
        st inew cur j

        if record then
            st vj rv j
            st inew ri j

        if spiking then
            let vth = lane uth kth j
            let spike = Vector.GreaterThan< ^T>(vj, vth)
            st (spike &&& one) rz j

            if toValue then
                st (Vector.ConditionalSelect< ^T>(spike, lane urs krs j, vj)) v j
            else
                st (vj - Vector.ConditionalSelect< ^T>(spike, vth - lane urs krs j, zero)) v j
        else
            st vj v j

        j <- j + width

    while j < n do
        let v0, i0 = NativePtr.get v j, NativePtr.get cur j
        let vj = v0 + (NativePtr.get kl j - v0 + i0) * NativePtr.get ka j
        let inew = i0 * NativePtr.get kb j + NativePtr.get c j
        NativePtr.set cur j inew

        if record then
            NativePtr.set rv j vj
            NativePtr.set ri j inew

        if spiking then
            let th, rs = NativePtr.get kth j, NativePtr.get krs j
            let spike = vj > th

            NativePtr.set
                rz
                j
                (if spike then
                     LanguagePrimitives.GenericOne
                 else
                     LanguagePrimitives.GenericZero)

            NativePtr.set
                v
                j
                (if not spike then vj
                 elif toValue then rs
                 else vj - (th - rs))
        else
            NativePtr.set v j vj

        j <- j + 1

/// A pinned array's first element (null for an empty or null array).
let inline internal pin (a: ^T[]) : GCHandle * nativeptr< ^T > =
    if isNull a || a.Length = 0 then
        Unchecked.defaultof<GCHandle>, NativePtr.nullPtr
    else
        let h = GCHandle.Alloc(a, GCHandleType.Pinned)
        h, NativePtr.ofNativeInt (h.AddrOfPinnedObject())
