/// Loops of the current-based LIF / LI recurrence over time with per-lane parameters: the forward
/// run, its tangent (forward mode) and the transposed tangent (backpropagation through time), which
/// also accumulates the cotangents of the parameters and of the initial state.
///
/// Per lane j (neuron x batch element) and step t, explicit Euler with step dt folded into a, b:
///   v1[t] = v + a (vLeak - v + i)        (the current of the previous step; held at v while refractory)
///   i[t]  = b i + c[t]
///   z[t]  = v1[t] > vTh                  (not while refractory; LI: no spikes)
///   v     = reset(v1[t], z[t])           (to vReset, or minus vTh - vReset; carries no gradient)
/// with v, i starting at v0, i0, a = dt / tauMem and b = 1 - dt / tauSyn. After a spike the lane is
/// refractory for the next `Refractory` steps.
namespace SnnFunc.Kernels

open System
open System.Numerics

/// What the recurrence does besides integrating.
[<Struct>]
type LifMode =
    {
        /// LIF (threshold, spikes, reset) or LI (membrane only).
        Spiking: bool
        ResetToValue: bool
        /// Steps a lane stays silent, its membrane held, after a spike (0: none).
        Refractory: int
    }

/// Per-lane parameters and initial state: each array holds one value per lane (length m) or one
/// value for all lanes (length 1).
[<Struct>]
type LifLanes<'T> =
    {
        A: 'T[]
        B: 'T[]
        VLeak: 'T[]
        VTh: 'T[]
        VReset: 'T[]
        V0: 'T[]
        I0: 'T[]
    }

module internal LifLoops =

    /// The lane-j value of a per-lane-or-uniform array (null: zero).
    let inline at (x: ^T[]) (j: int) : ^T =
        if isNull x then LanguagePrimitives.GenericZero
        elif x.Length = 1 then x[0]
        else x[j]

    /// The vector of lanes [j, j + width) of a per-lane-or-uniform array (null: zero).
    let inline vat (x: ^T[]) (j: int) : Vector< ^T > =
        if isNull x then Vector< ^T>.Zero
        elif x.Length = 1 then Vector< ^T>(x[0])
        else Vector< ^T>(x, j)

    /// The membrane after the reset of step t-1 (the state step t starts from; v0 at t = 0).
    let inline prevV (mode: LifMode) (k: LifLanes< ^T >) (m: int) (z: ^T[]) (v1: ^T[]) (t: int) (j: int) : ^T =
        if t = 0 then
            at k.V0 j
        else
            let o = (t - 1) * m + j
            let v = v1[o]

            if not mode.Spiking then
                v
            elif mode.ResetToValue then
                (if z[o] <> LanguagePrimitives.GenericZero then
                     at k.VReset j
                 else
                     v)
            else
                v - z[o] * (at k.VTh j - at k.VReset j)

    let inline vPrevV (mode: LifMode) (k: LifLanes< ^T >) (m: int) (z: ^T[]) (v1: ^T[]) (t: int) (j: int) : Vector< ^T > =
        if t = 0 then
            vat k.V0 j
        else
            let o = (t - 1) * m + j
            let v = Vector< ^T>(v1, o)

            if not mode.Spiking then
                v
            else
                let zz = Vector< ^T>(z, o)

                if mode.ResetToValue then
                    v + zz * (vat k.VReset j - v)
                else
                    v - zz * (vat k.VTh j - vat k.VReset j)

    /// The synaptic current before step t's input (i0 at t = 0).
    let inline prevI (k: LifLanes< ^T >) (m: int) (i: ^T[]) (t: int) (j: int) : ^T =
        if t = 0 then at k.I0 j else i[(t - 1) * m + j]

    let inline vPrevI (k: LifLanes< ^T >) (m: int) (i: ^T[]) (t: int) (j: int) : Vector< ^T > =
        if t = 0 then
            vat k.I0 j
        else
            Vector< ^T>(i, (t - 1) * m + j)

    /// Forward run for lanes [j0, j1): membrane before reset v1, current i, spikes z (null for LI)
    /// and refractory flags r (null without a refractory period), all [T*m]; r0 holds the silent
    /// steps left at the start (null: none) and rEnd receives those left at the end (null: unused).
    let inline forward
        (
            mode: LifMode,
            k: LifLanes< ^T >,
            steps: int,
            m: int,
            j0: int,
            j1: int,
            c: ^T[],
            r0: ^T[],
            z: ^T[],
            v1: ^T[],
            i: ^T[],
            r: ^T[],
            rEnd: ^T[]
        ) =
        let n = j1 - j0

        // The vector loop's accesses are unchecked (VectorAt): its ranges, checked once.
        if
            j0 < 0
            || j1 > m
            || c.Length < steps * m
            || v1.Length < steps * m
            || i.Length < steps * m
            || (mode.Spiking && z.Length < steps * m)
        then
            invalidArg
                "c"
                $"LifKernels.Forward: lanes [%d{j0}, %d{j1}) of %d{m} over %d{steps} steps do not fit buffers of %d{c.Length}, %d{v1.Length}, %d{i.Length} elements"

        let v = Array.init n (fun q -> at k.V0 (j0 + q))
        let cur = Array.init n (fun q -> at k.I0 (j0 + q))
        let cnt = Array.init n (fun q -> int (float (at r0 (j0 + q))))
        let w = Vector< ^T>.Count
        let one, zero = Vector< ^T>.One, Vector< ^T>.Zero
        let vectorised = mode.Refractory = 0
        // Parameters in registers when they are the same for all lanes (the common case), else in
        // chunk-local arrays: no per-element branches in the vector loop.
        let uniform =
            k.A.Length = 1
            && k.B.Length = 1
            && k.VLeak.Length = 1
            && k.VTh.Length = 1
            && k.VReset.Length = 1

        let local (x: ^T[]) = Array.init n (fun q -> at x (j0 + q))

        let pa, pb, pl =
            (if uniform then null else local k.A), (if uniform then null else local k.B), (if uniform then null else local k.VLeak)

        let pth, prs =
            (if uniform then null else local k.VTh), (if uniform then null else local k.VReset)

        let ua, ub, ul = Vector< ^T>(k.A[0]), Vector< ^T>(k.B[0]), Vector< ^T>(k.VLeak[0])
        let uth, urs = Vector< ^T>(k.VTh[0]), Vector< ^T>(k.VReset[0])

        /// One vector of lanes [q, q + w) at step offset o, with the given parameter vectors.
        let inline lanes
            (o: int)
            (q: int)
            (va: Vector< ^T >)
            (vb: Vector< ^T >)
            (vl: Vector< ^T >)
            (vth: Vector< ^T >)
            (vrs: Vector< ^T >)
            =
            let vv = VectorAt.load v q
            let ii = VectorAt.load cur q
            let vj = vv + (vl - vv + ii) * va
            let inew = ii * vb + VectorAt.load c (o + q)
            VectorAt.store vj v1 (o + q)
            VectorAt.store inew i (o + q)
            VectorAt.store inew cur q

            if mode.Spiking then
                let spike = Vector.GreaterThan< ^T>(vj, vth)
                VectorAt.store (Vector.ConditionalSelect< ^T>(spike, one, zero)) z (o + q)

                let reset =
                    if mode.ResetToValue then
                        Vector.ConditionalSelect< ^T>(spike, vrs, vj)
                    else
                        vj - Vector.ConditionalSelect< ^T>(spike, vth - vrs, zero)

                VectorAt.store reset v q
            else
                VectorAt.store vj v q

        for t in 0 .. steps - 1 do
            let o = t * m + j0
            let mutable q = 0

            if vectorised && uniform then
                while q <= n - w do
                    lanes o q ua ub ul uth urs
                    q <- q + w
            elif vectorised then
                while q <= n - w do
                    lanes o q (VectorAt.load pa q) (VectorAt.load pb q) (VectorAt.load pl q) (VectorAt.load pth q) (VectorAt.load prs q)
                    q <- q + w

            while q < n do
                let j = j0 + q
                let refractory = cnt[q] > 0

                let vj =
                    if refractory then
                        v[q]
                    else
                        v[q] + (at k.VLeak j - v[q] + cur[q]) * at k.A j

                cur[q] <- cur[q] * at k.B j + c[o + q]
                v1[o + q] <- vj
                i[o + q] <- cur[q]

                if not (isNull r) then
                    r[o + q] <-
                        if refractory then
                            LanguagePrimitives.GenericOne
                        else
                            LanguagePrimitives.GenericZero

                if mode.Spiking then
                    let spike = not refractory && vj > at k.VTh j

                    z[o + q] <-
                        if spike then
                            LanguagePrimitives.GenericOne
                        else
                            LanguagePrimitives.GenericZero

                    v[q] <-
                        if not spike then vj
                        elif mode.ResetToValue then at k.VReset j
                        else vj - (at k.VTh j - at k.VReset j)

                    cnt[q] <- if spike then mode.Refractory else max 0 (cnt[q] - 1)
                else
                    v[q] <- vj

                q <- q + 1

        if not (isNull rEnd) then
            for q in 0 .. n - 1 do
                let mutable x = LanguagePrimitives.GenericZero

                for _ in 1 .. cnt[q] do
                    x <- x + LanguagePrimitives.GenericOne

                rEnd[j0 + q] <- x

    /// Tangents of one forward run for lanes [j0, j1), given the residuals (spikes z; refractory
    /// flags r; v1; i) and the tangents of the currents (dc, [T*m]) and of the lane parameters and
    /// initial state (dk); null = zero. Writes dv1 and di. (The spikes' tangent s (dv1 - dvTh) and
    /// the surrogate derivative s are left to tensor operations.)
    let inline tangent
        (
            mode: LifMode,
            k: LifLanes< ^T >,
            steps: int,
            m: int,
            j0: int,
            j1: int,
            z: ^T[],
            r: ^T[],
            v1: ^T[],
            i: ^T[],
            dc: ^T[],
            dk: LifLanes< ^T >,
            dv1: ^T[],
            di: ^T[]
        ) =
        let n = j1 - j0
        let dv = Array.init n (fun q -> at dk.V0 (j0 + q))
        let dcur = Array.init n (fun q -> at dk.I0 (j0 + q))
        let one = LanguagePrimitives.GenericOne
        let needPrev = not (isNull dk.A && isNull dk.B)
        let w = Vector< ^T>.Count
        // The common forward-mode case — tangents of the currents (and initial state) only, the
        // same parameters for all lanes, no refractory period — runs in vectors.
        let vectorised =
            isNull r
            && not needPrev
            && isNull dk.VLeak
            && isNull dk.VTh
            && isNull dk.VReset
            && k.A.Length = 1
            && k.B.Length = 1

        let va, vb, vone = Vector< ^T>(k.A[0]), Vector< ^T>(k.B[0]), Vector< ^T>.One

        for t in 0 .. steps - 1 do
            let o = t * m + j0
            let mutable q0 = 0

            if vectorised then
                while q0 <= n - w do
                    let vdv = Vector< ^T>(dv, q0)
                    let vdi = Vector< ^T>(dcur, q0)
                    let d = vdv + (vdi - vdv) * va

                    let di' =
                        vdi * vb
                        + (if isNull dc then
                               Vector< ^T>.Zero
                           else
                               Vector< ^T>(dc, o + q0))

                    d.CopyTo(dv1, o + q0)
                    di'.CopyTo(di, o + q0)
                    di'.CopyTo(dcur, q0)

                    (if mode.Spiking && mode.ResetToValue then
                         d * (vone - Vector< ^T>(z, o + q0))
                     else
                         d)
                        .CopyTo(dv, q0)

                    q0 <- q0 + w

            for q in q0 .. n - 1 do
                let j = j0 + q
                let held = not (isNull r) && r[o + q] <> LanguagePrimitives.GenericZero

                let ip =
                    if needPrev then
                        prevI k m i t j
                    else
                        LanguagePrimitives.GenericZero

                let d =
                    if held then
                        dv[q]
                    else
                        let integrated = dv[q] + (at dk.VLeak j - dv[q] + dcur[q]) * at k.A j

                        if isNull dk.A then
                            integrated
                        else
                            integrated + at dk.A j * (at k.VLeak j - prevV mode k m z v1 t j + ip)

                dcur[q] <- dcur[q] * at k.B j + at dk.B j * ip + at dc (o + q)
                dv1[o + q] <- d
                di[o + q] <- dcur[q]

                if mode.Spiking then
                    let zz = z[o + q]

                    dv[q] <-
                        if mode.ResetToValue then
                            d * (one - zz) + zz * at dk.VReset j
                        else
                            d - zz * (at dk.VTh j - at dk.VReset j)
                else
                    dv[q] <- d

    /// The transpose of `tangent` for lanes [j0, j1): from the cotangents of v1 and i (null = zero)
    /// writes the cotangents of the currents (gc, when not null) and of the lane parameters and
    /// initial state (the non-null arrays of gk, each [m]: one value per lane, summed over steps).
    let inline transpose
        (
            mode: LifMode,
            k: LifLanes< ^T >,
            steps: int,
            m: int,
            j0: int,
            j1: int,
            z: ^T[],
            r: ^T[],
            v1: ^T[],
            i: ^T[],
            gv1: ^T[],
            gi: ^T[],
            gc: ^T[],
            gk: LifLanes< ^T >
        ) =
        let n = j1 - j0
        let short (x: ^T[]) = not (isNull x) && x.Length < steps * m

        // The vector loop's accesses to these and to its lane arrays are unchecked (VectorAt):
        // their ranges, checked once.
        if
            j0 < 0
            || j1 > m
            || short gi
            || short gc
            || short gv1
            || (mode.Spiking && z.Length < steps * m)
        then
            invalidArg
                "gi"
                $"LifKernels.Transpose: lanes [%d{j0}, %d{j1}) of %d{m} over %d{steps} steps do not fit its cotangent or spike buffers"

        let lv = Array.zeroCreate< ^T> n
        let li = Array.zeroCreate< ^T> n

        let ga, gb, gvl =
            Array.zeroCreate< ^T> n, Array.zeroCreate< ^T> n, Array.zeroCreate< ^T> n

        let gth, grs = Array.zeroCreate< ^T> n, Array.zeroCreate< ^T> n
        let w = Vector< ^T>.Count
        let one = LanguagePrimitives.GenericOne
        let vone = Vector< ^T>.One

        let wantA, wantB, wantLeak =
            not (isNull gk.A), not (isNull gk.B), not (isNull gk.VLeak)

        let wantTh, wantReset = not (isNull gk.VTh), not (isNull gk.VReset)
        let vectorised = isNull r

        for t in steps - 1 .. -1 .. 0 do
            let o = t * m + j0
            let mutable q = 0

            if vectorised then
                while q <= n - w do
                    let j = j0 + q
                    let vlv = VectorAt.load lv q

                    let lambdaI =
                        VectorAt.load li q
                        + (if isNull gi then
                               Vector< ^T>.Zero
                           else
                               VectorAt.load gi (o + q))

                    if not (isNull gc) then
                        VectorAt.store lambdaI gc (o + q)

                    let mutable l1 = if isNull gv1 then vlv else vlv + VectorAt.load gv1 (o + q)

                    if mode.Spiking then
                        let zz = VectorAt.load z (o + q)
                        let zlv = zz * vlv

                        if mode.ResetToValue then
                            l1 <- l1 - zlv

                        if wantTh && not mode.ResetToValue then
                            VectorAt.store (VectorAt.load gth q - zlv) gth q

                        if wantReset then
                            VectorAt.store (VectorAt.load grs q + zlv) grs q

                    let a = vat k.A j

                    if wantA || wantB then
                        let ip = vPrevI k m i t j

                        if wantA then
                            let vp = vPrevV mode k m z v1 t j
                            VectorAt.store (VectorAt.load ga q + l1 * (vat k.VLeak j - vp + ip)) ga q

                        if wantB then
                            VectorAt.store (VectorAt.load gb q + lambdaI * ip) gb q

                    if wantLeak then
                        VectorAt.store (VectorAt.load gvl q + a * l1) gvl q

                    VectorAt.store (lambdaI * vat k.B j + a * l1) li q
                    VectorAt.store ((vone - a) * l1) lv q
                    q <- q + w

            while q < n do
                let j = j0 + q
                let lambdaI = li[q] + at gi (o + q)

                if not (isNull gc) then
                    gc[o + q] <- lambdaI

                let mutable l1 = lv[q] + at gv1 (o + q)

                if mode.Spiking then
                    let zlv = z[o + q] * lv[q]

                    if mode.ResetToValue then
                        l1 <- l1 - zlv
                    else
                        gth[q] <- gth[q] - zlv

                    grs[q] <- grs[q] + zlv

                let ip = prevI k m i t j
                gb[q] <- gb[q] + lambdaI * ip
                let held = not (isNull r) && r[o + q] <> LanguagePrimitives.GenericZero

                if held then
                    // v1 = v: the held membrane passes its cotangent on unchanged.
                    li[q] <- lambdaI * at k.B j
                    lv[q] <- l1
                else
                    let a = at k.A j
                    ga[q] <- ga[q] + l1 * (at k.VLeak j - prevV mode k m z v1 t j + ip)
                    gvl[q] <- gvl[q] + a * l1
                    li[q] <- lambdaI * at k.B j + a * l1
                    lv[q] <- (one - a) * l1

                q <- q + 1

        let store (dst: ^T[]) (src: ^T[]) =
            if not (isNull dst) then
                Array.blit src 0 dst j0 n

        store gk.A ga
        store gk.B gb
        store gk.VLeak gvl
        store gk.VTh gth
        store gk.VReset grs
        store gk.V0 lv
        store gk.I0 li

/// The loops above for Float32 and Float64, split over lanes on up to Parallelism.MaxThreads threads
/// when the work is large enough to pay for it.
[<AbstractClass; Sealed>]
type LifKernels =
    static member private ForChunks(steps: int, m: int, body: int -> int -> unit) =
        let chunks = Parallelism.ChunkCount(int64 steps * int64 m)

        Parallelism.RunChunks(
            chunks,
            fun ci ->
                let j0, j1 = Parallelism.Part(m, Vector<float32>.Count, ci, chunks)

                if j1 > j0 then
                    body j0 j1
        )

    static member Forward(mode, k: LifLanes<float32>, steps, m, c: float32[], r0, z, v1, i, r, rEnd) =
        LifKernels.ForChunks(steps, m, fun j0 j1 -> LifKernels.ForwardRange(mode, k, steps, m, j0, j1, c, r0, z, v1, i, r, rEnd))

    static member Forward(mode, k: LifLanes<float>, steps, m, c: float[], r0, z, v1, i, r, rEnd) =
        LifKernels.ForChunks(steps, m, fun j0 j1 -> LifKernels.ForwardRange(mode, k, steps, m, j0, j1, c, r0, z, v1, i, r, rEnd))

    static member private ForwardRange(mode, k: LifLanes<float32>, steps, m, j0, j1, c: float32[], r0, z, v1, i, r, rEnd) =
        LifLoops.forward (mode, k, steps, m, j0, j1, c, r0, z, v1, i, r, rEnd)

    static member private ForwardRange(mode, k: LifLanes<float>, steps, m, j0, j1, c: float[], r0, z, v1, i, r, rEnd) =
        LifLoops.forward (mode, k, steps, m, j0, j1, c, r0, z, v1, i, r, rEnd)

    static member Tangent(mode, k: LifLanes<float32>, steps, m, z: float32[], r, v1, i, dc, dk, dv1, di) =
        LifKernels.ForChunks(steps, m, fun j0 j1 -> LifKernels.TangentRange(mode, k, steps, m, j0, j1, z, r, v1, i, dc, dk, dv1, di))

    static member Tangent(mode, k: LifLanes<float>, steps, m, z: float[], r, v1, i, dc, dk, dv1, di) =
        LifKernels.ForChunks(steps, m, fun j0 j1 -> LifKernels.TangentRange(mode, k, steps, m, j0, j1, z, r, v1, i, dc, dk, dv1, di))

    static member private TangentRange(mode, k: LifLanes<float32>, steps, m, j0, j1, z: float32[], r, v1, i, dc, dk, dv1, di) =
        LifLoops.tangent (mode, k, steps, m, j0, j1, z, r, v1, i, dc, dk, dv1, di)

    static member private TangentRange(mode, k: LifLanes<float>, steps, m, j0, j1, z: float[], r, v1, i, dc, dk, dv1, di) =
        LifLoops.tangent (mode, k, steps, m, j0, j1, z, r, v1, i, dc, dk, dv1, di)

    static member Transpose(mode, k: LifLanes<float32>, steps, m, z: float32[], r, v1, i, gv1, gi, gc, gk) =
        LifKernels.ForChunks(steps, m, fun j0 j1 -> LifKernels.TransposeRange(mode, k, steps, m, j0, j1, z, r, v1, i, gv1, gi, gc, gk))

    static member Transpose(mode, k: LifLanes<float>, steps, m, z: float[], r, v1, i, gv1, gi, gc, gk) =
        LifKernels.ForChunks(steps, m, fun j0 j1 -> LifKernels.TransposeRange(mode, k, steps, m, j0, j1, z, r, v1, i, gv1, gi, gc, gk))

    static member private TransposeRange(mode, k: LifLanes<float32>, steps, m, j0, j1, z: float32[], r, v1, i, gv1, gi, gc, gk) =
        LifLoops.transpose (mode, k, steps, m, j0, j1, z, r, v1, i, gv1, gi, gc, gk)

    static member private TransposeRange(mode, k: LifLanes<float>, steps, m, j0, j1, z: float[], r, v1, i, gv1, gi, gc, gk) =
        LifLoops.transpose (mode, k, steps, m, j0, j1, z, r, v1, i, gv1, gi, gc, gk)
