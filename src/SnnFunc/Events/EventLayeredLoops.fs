/// The inner loops of the layered event simulation (EventLayered): the LIF sweep of one interval
/// over a population's lanes, and the crossing of the polynomial an integer τm/τs ratio makes.
module internal SnnFunc.EventLayeredLoops

#nowarn "9" // NativePtr: the sweep addresses pinned arrays (comment below)

open System
open System.Runtime.Intrinsics
open Microsoft.FSharp.NativeInterop

/// State arrays are padded to a multiple of the widest vector (8 doubles).
let padded (n: int) = (n + 7) / 8 * 8

/// The sweeps' loop over the blocks: those below `full` with the weight row when `hasW`, the rest
/// without (two loops, so that the row test is not in them); `block c withRow nf` runs one block
/// and says whether it became flagged entry nf. Returns the number of flagged entries.
let inline private sweepBlocks (width: int) (lanes: int) (full: int) (hasW: bool) ([<InlineIfLambda>] block: int -> bool -> int -> bool) =
    let mutable c = 0
    let mutable nf = 0

    if hasW then
        while c < full do
            if block c true nf then
                nf <- nf + 1

            c <- c + width

    while c < lanes do
        if block c false nf then
            nf <- nf + 1

        c <- c + width

    nf

/// One block of lifSweep: the lanes at c flow over the interval in place (the weight row added
/// first when `withRow`), and when the bound flags any that the tangent certificate does not
/// clear, they become flagged entry nf (lane offset, mask, state at t0); true then.
let inline private lifBlock
    (width: int)
    ([<InlineIfLambda>] load: nativeptr<float> -> int -> ^V)
    ([<InlineIfLambda>] store: ^V -> nativeptr<float> -> int -> unit)
    ([<InlineIfLambda>] splat: float -> ^V)
    ([<InlineIfLambda>] fma: ^V -> ^V -> ^V -> ^V)
    ([<InlineIfLambda>] ge: ^V -> ^V -> ^V)
    ([<InlineIfLambda>] gt: ^V -> ^V -> ^V)
    ([<InlineIfLambda>] vmin: ^V -> ^V -> ^V)
    ([<InlineIfLambda>] vabs: ^V -> ^V)
    ([<InlineIfLambda>] select: ^V -> ^V -> ^V -> ^V)
    ([<InlineIfLambda>] bits: ^V -> uint64)
    (c: int)
    (withRow: bool)
    (vp: nativeptr<float>)
    (ip: nativeptr<float>)
    (rp: nativeptr<float>)
    (vlp: nativeptr<float>)
    (thp: nativeptr<float>)
    (row: nativeptr<float>)
    (em: ^V)
    (es: ^V)
    (k: ^V)
    (hm: ^V)
    (start: ^V)
    (zero: ^V)
    (refractory: bool)
    (tangents: bool)
    (ratio: float)
    (slope: float)
    (nf: int)
    (flagC: nativeptr<int>)
    (flagM: nativeptr<uint64>)
    (saveV: nativeptr<float>)
    (saveI: nativeptr<float>)
    : bool =
    let v0, vl, th = load vp c, load vlp c, load thp c
    let i0 = if withRow then load ip c + load row c else load ip c
    // Fused: the sweep's state may differ from the lone lanes' (unfused) by an ulp.
    let vh = fma i0 k (fma (v0 - vl) em vl)
    let h0 = vl - v0 + i0
    let ub = select (ge i0 zero) (vmin (fma h0 hm v0) (vl + i0)) vl
    let crossing = ge vh th ||| (gt h0 zero &&& ge ub th)

    let flag =
        if refractory then
            crossing ||| gt (load rp c) start
        else
            crossing

    store vh vp c
    store (i0 * es) ip c
    let mutable m = bits flag

    // The tangent certificate (lifLaneFast's, here for whole flagged blocks): with I0 >= 0, V
    // is concave in x = e^{−s/τm}, the tangents at the interval's ends bound it, and a lane
    // whose bound stays below v_th by the margin needs no lone solve. `slope` is
    // (1 − ratio·es/em)/(ratio − 1), so that dh = V0 − v_leak + I0·slope.
    if m <> 0UL && tangents then
        let margin =
            splat 1e-12 * (vabs th + vabs vl + vabs v0 + vabs i0 * splat (1.0 + ratio))

        let dh = v0 - vl + i0 * splat slope
        let xs = (vh - v0 - dh * em - h0) / (zero - h0 - dh)
        let peak = select (gt dh zero) (v0 + h0 * (splat 1.0 - xs)) vh
        // (ge dh dh: no certificate where dh is NaN, as in the lone lane.)
        let below =
            gt th v0 &&& gt th vh &&& ge i0 zero &&& ge dh dh &&& gt (th - margin) peak

        let below =
            if refractory then
                select (gt (load rp c) start) zero below
            else
                below

        m <- m &&& ~~~(bits below)

    if m <> 0UL then
        NativePtr.set flagC nf c
        NativePtr.set flagM nf m
        store v0 saveV (nf * width)
        store i0 saveI (nf * width)
        true
    else
        false

/// The LIF sweep over one interval [t0, t1) for every lane, in place, generic in the vector type
/// (Vector256 or Vector512, whose primitives are passed in and inlined). The state at t0 is read
/// from (vp, ip); the weight row of the arrivals at t0 (`row`, when `hasW`: one arrival's, or
/// their sum) is added to the current first; then each lane flows by the shared (em, es, k) and
/// the state at t1 is written back. The blocks with lanes the bound flags (EventLayered's module
/// comment), less those the tangent certificate clears, go to (flagC, flagM) with their state at t0
/// (the current with the weights) in
/// (saveV, saveI), block z at z·width, to be redone alone after the sweep (no call in the loop,
/// so that the vectors stay in registers); returns their number. Lanes at and past `full` (the
/// last, partial block) take their weights from ip, added by the caller.
///
/// Pointers, not arrays: no bounds or null checks, and no spills of array references in the loop.
/// Every array is padded to a multiple of the vector width (`padded`), the flag and save buffers
/// hold a block per block of lanes, and the row is read only below `full`, within its length.
/// `refractory` is a constant at each call (lifSweepWidest), and the blocks with and without the
/// row are two loops: no test in the loop but the flags'.
let inline lifSweep
    (width: int)
    ([<InlineIfLambda>] load: nativeptr<float> -> int -> ^V)
    ([<InlineIfLambda>] store: ^V -> nativeptr<float> -> int -> unit)
    ([<InlineIfLambda>] splat: float -> ^V)
    ([<InlineIfLambda>] fma: ^V -> ^V -> ^V -> ^V)
    ([<InlineIfLambda>] ge: ^V -> ^V -> ^V)
    ([<InlineIfLambda>] gt: ^V -> ^V -> ^V)
    ([<InlineIfLambda>] vmin: ^V -> ^V -> ^V)
    ([<InlineIfLambda>] vabs: ^V -> ^V)
    ([<InlineIfLambda>] select: ^V -> ^V -> ^V -> ^V)
    ([<InlineIfLambda>] bits: ^V -> uint64)
    (lanes: int)
    (vp: nativeptr<float>)
    (ip: nativeptr<float>)
    (rp: nativeptr<float>)
    (vlp: nativeptr<float>)
    (thp: nativeptr<float>)
    (row: nativeptr<float>)
    (hasW: bool)
    (full: int)
    (em: float)
    (es: float)
    (k: float)
    (hOverTm: float)
    (t0: float)
    (refractory: bool)
    (tangents: bool)
    (ratio: float)
    (slope: float)
    (flagC: nativeptr<int>)
    (flagM: nativeptr<uint64>)
    (saveV: nativeptr<float>)
    (saveI: nativeptr<float>)
    : int =
    let em, es, k = splat em, splat es, splat k
    let hm, start, zero = splat hOverTm, splat t0, splat 0.0

    // One block at c (the row added when withRow), entered as flagged entry nf.
    let inline block c withRow nf =
        lifBlock
            width
            load
            store
            splat
            fma
            ge
            gt
            vmin
            vabs
            select
            bits
            c
            withRow
            vp
            ip
            rp
            vlp
            thp
            row
            em
            es
            k
            hm
            start
            zero
            refractory
            tangents
            ratio
            slope
            nf
            flagC
            flagM
            saveV
            saveI

    sweepBlocks width lanes full hasW block

/// The LI sweep over one interval (t0, t1] for every lane, in place, generic in the vector type
/// as lifSweep: the weight row of the arrivals at t0 added to the current as lifSweep's, the flow
/// by the shared (em, es, k) and the running maximum (mv, at times mt) updated with the value at
/// t1. The blocks with a lane whose maximum may lie inside the interval
/// and beat the running one (rising at t0, falling or nearly so at t1, its bound above the
/// maximum) go to (flagC, flagM) with their state at t0 in (saveV, saveI), as lifSweep's, and
/// those lanes' maxima are left to the caller (the interior maximum, then the end value).
let inline liSweep
    (width: int)
    ([<InlineIfLambda>] load: nativeptr<float> -> int -> ^V)
    ([<InlineIfLambda>] store: ^V -> nativeptr<float> -> int -> unit)
    ([<InlineIfLambda>] splat: float -> ^V)
    ([<InlineIfLambda>] fma: ^V -> ^V -> ^V -> ^V)
    ([<InlineIfLambda>] ge: ^V -> ^V -> ^V)
    ([<InlineIfLambda>] gt: ^V -> ^V -> ^V)
    ([<InlineIfLambda>] vmin: ^V -> ^V -> ^V)
    ([<InlineIfLambda>] vabs: ^V -> ^V)
    ([<InlineIfLambda>] select: ^V -> ^V -> ^V -> ^V)
    ([<InlineIfLambda>] bits: ^V -> uint64)
    (lanes: int)
    (vp: nativeptr<float>)
    (ip: nativeptr<float>)
    (vlp: nativeptr<float>)
    (row: nativeptr<float>)
    (hasW: bool)
    (full: int)
    (mv: nativeptr<float>)
    (mt: nativeptr<float>)
    (em: float)
    (es: float)
    (k: float)
    (hOverTm: float)
    (t1: float)
    (flagC: nativeptr<int>)
    (flagM: nativeptr<uint64>)
    (saveV: nativeptr<float>)
    (saveI: nativeptr<float>)
    : int =
    let em, es, k = splat em, splat es, splat k
    let hm, tEnd, tol, zero = splat hOverTm, splat t1, splat 1e-9, splat 0.0

    // One block at c (the row added when withRow), entered as flagged entry nf.
    let inline block c withRow nf =
        let v0, vl, m0 = load vp c, load vlp c, load mv c
        let i0 = if withRow then load ip c + load row c else load ip c
        let vh = fma i0 k (fma (v0 - vl) em vl)
        let ih = i0 * es
        let h0 = vl - v0 + i0
        let hh = vl - vh + ih
        let ub = select (ge i0 zero) (vmin (fma h0 hm v0) (vl + i0)) vl
        let flag = gt h0 zero &&& gt (tol * (vabs (vh - vl) + vabs ih)) hh &&& gt ub m0
        let up = select flag zero (gt vh m0) // not flagged, and above the maximum
        store vh vp c
        store ih ip c
        store (select up vh m0) mv c
        store (select up tEnd (load mt c)) mt c
        let m = bits flag

        if m <> 0UL then
            NativePtr.set flagC nf c
            NativePtr.set flagM nf m
            store v0 saveV (nf * width)
            store i0 saveI (nf * width)
            true
        else
            false

    sweepBlocks width lanes full hasW block

// The vector primitives of the two widths, for the sweeps' inlined function arguments.
let inline private ld8 (a: nativeptr<float>) (c: int) = Vector512.Load(NativePtr.add a c)
let inline private st8 (x: Vector512<float>) (a: nativeptr<float>) (c: int) = Vector512.Store(x, NativePtr.add a c)
let inline private splat8 (x: float) = Vector512.Create x
let inline private fma8 (x: Vector512<float>) y z = Vector512.FusedMultiplyAdd(x, y, z)
let inline private ge8 (x: Vector512<float>) y = Vector512.GreaterThanOrEqual(x, y)
let inline private gt8 (x: Vector512<float>) y = Vector512.GreaterThan(x, y)
let inline private min8 (x: Vector512<float>) y = Vector512.MinNative(x, y)
let inline private abs8 (x: Vector512<float>) = Vector512.Abs x
let inline private sel8 (m: Vector512<float>) x y = Vector512.ConditionalSelect(m, x, y)
let inline private bits8 (x: Vector512<float>) = Vector512.ExtractMostSignificantBits x
let inline private ld4 (a: nativeptr<float>) (c: int) = Vector256.Load(NativePtr.add a c)
let inline private st4 (x: Vector256<float>) (a: nativeptr<float>) (c: int) = Vector256.Store(x, NativePtr.add a c)
let inline private splat4 (x: float) = Vector256.Create x
let inline private fma4 (x: Vector256<float>) y z = Vector256.FusedMultiplyAdd(x, y, z)
let inline private ge4 (x: Vector256<float>) y = Vector256.GreaterThanOrEqual(x, y)
let inline private gt4 (x: Vector256<float>) y = Vector256.GreaterThan(x, y)
let inline private min4 (x: Vector256<float>) y = Vector256.MinNative(x, y)
let inline private abs4 (x: Vector256<float>) = Vector256.Abs x
let inline private sel4 (m: Vector256<float>) x y = Vector256.ConditionalSelect(m, x, y)

let inline private bits4 (x: Vector256<float>) =
    uint64 (Vector256.ExtractMostSignificantBits x)

/// The lanes of the widest vectors the machine has: the sweeps' block width.
let sweepWidth = if Vector512.IsHardwareAccelerated then 8 else 4

/// The lanes of n rounded up to whole sweep blocks: what a sweep covers (padded's multiple of 8
/// can hold a block of padding alone when the blocks are 4 wide).
let sweepLanes (n: int) =
    (n + sweepWidth - 1) / sweepWidth * sweepWidth

/// lifSweep in the widest vectors (sweepWidth), `refractory` made a constant of each copy.
let lifSweepWidest lanes vp ip rp vlp thp row hasW full em es k hOverTm t0 refractory tangents ratio slope flagC flagM saveV saveI =
    let inline sweep8 refr =
        lifSweep
            8
            ld8
            st8
            splat8
            fma8
            ge8
            gt8
            min8
            abs8
            sel8
            bits8
            lanes
            vp
            ip
            rp
            vlp
            thp
            row
            hasW
            full
            em
            es
            k
            hOverTm
            t0
            refr
            tangents
            ratio
            slope
            flagC
            flagM
            saveV
            saveI

    let inline sweep4 refr =
        lifSweep
            4
            ld4
            st4
            splat4
            fma4
            ge4
            gt4
            min4
            abs4
            sel4
            bits4
            lanes
            vp
            ip
            rp
            vlp
            thp
            row
            hasW
            full
            em
            es
            k
            hOverTm
            t0
            refr
            tangents
            ratio
            slope
            flagC
            flagM
            saveV
            saveI

    match sweepWidth, refractory with
    | 8, true -> sweep8 true
    | 8, false -> sweep8 false
    | _, true -> sweep4 true
    | _, false -> sweep4 false

/// liSweep in the widest vectors (sweepWidth).
let liSweepWidest lanes vp ip vlp row hasW full mv mt em es k hOverTm t1 flagC flagM saveV saveI =
    if sweepWidth = 8 then
        liSweep
            8
            ld8
            st8
            splat8
            fma8
            ge8
            gt8
            min8
            abs8
            sel8
            bits8
            lanes
            vp
            ip
            vlp
            row
            hasW
            full
            mv
            mt
            em
            es
            k
            hOverTm
            t1
            flagC
            flagM
            saveV
            saveI
    else
        liSweep
            4
            ld4
            st4
            splat4
            fma4
            ge4
            gt4
            min4
            abs4
            sel4
            bits4
            lanes
            vp
            ip
            vlp
            row
            hasW
            full
            mv
            mt
            em
            es
            k
            hOverTm
            t1
            flagC
            flagM
            saveV
            saveI

/// x^r for a small integer r >= 1.
let inline powInt (x: float) (r: int) =
    let mutable y = x

    for _ in 2..r do
        y <- y * x

    y

/// The root x ∈ (xlo, xhi) of F(x) = a + b·x + c·(x − x^r) (integer r >= 2, c >= 0: F is concave),
/// given F(xlo) >= 0 > F(xhi): the upward threshold crossing of a LIF neuron in x = e^{−s/τm}
/// (V − v_th with c = I0/(r − 1), as x^r = e^{−s/τs} when τm = r·τs). Halley's method (F'' is as
/// cheap as F') from xhi, bisection when a step leaves the bracket, to full precision; no exponential. A Halley step below 1e-7 relative leaves an error of its cube's
/// order, so it ends the search without another evaluation (on the MNIST16 network's crossings:
/// 2.1 evaluations on average, within 1e-15 of the root computed in 40 digits).
let solveRisingX (a: float) (b: float) (c: float) (r: int) (xlo0: float) (xhi0: float) (flo: float) (fhi: float) =
    let mutable lo = xlo0 // F >= 0
    let mutable hi = xhi0 // F < 0
    // The first step from xhi, whose F is known (and its powers are 1 when xhi = 1, the interval's
    // start); the secant's root when it leaves the bracket.
    let p2hi = if r = 2 then 1.0 else powInt xhi0 (r - 2)
    let dhi = b + c * (1.0 - float r * p2hi * xhi0)

    let mutable x =
        xhi0
        - 2.0 * fhi * dhi / (2.0 * dhi * dhi + fhi * c * float (r * (r - 1)) * p2hi)

    if not (x > lo && x < hi) then
        x <- xlo0 + (xhi0 - xlo0) * (flo / (flo - fhi))

        if not (x > lo && x < hi) then
            x <- 0.5 * (lo + hi)

    let mutable result = nan
    let mutable it = 0

    while Double.IsNaN result do
        let p2 = if r = 2 then 1.0 else powInt x (r - 2)
        let p = p2 * x
        let fx = a + b * x + c * (x - p * x)
        it <- it + 1

        if fx = 0.0 then
            result <- x
        else
            if fx > 0.0 then lo <- x else hi <- x
            let d = b + c * (1.0 - float r * p)
            let den = 2.0 * d * d + fx * c * float (r * (r - 1)) * p2
            let step = if d < 0.0 && den > 0.0 then 2.0 * fx * d / den else nan
            let next = x - step

            // The closed bracket: a converged step may round to x itself, now one of its ends.
            if abs step <= 1e-7 * x && next >= lo && next <= hi then
                result <- next
            else
                let next = if next > lo && next < hi then next else 0.5 * (lo + hi)

                if hi - lo <= 2e-16 * hi || it > 200 then
                    result <- next
                else
                    x <- next

    result
