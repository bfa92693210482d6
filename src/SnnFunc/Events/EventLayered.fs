/// The forward simulation of a feed-forward graph, one population at a time and vectorised over
/// its neurons: the fast path of the forward kernel (EventForward) when nothing needs the log.
///
/// Without recurrence a population's arrivals are all known before it runs (its sources' events
/// and its upstream populations' spikes, plus delays), and its neurons are independent given them.
/// So the population flows from arrival time to arrival time with one shared flow (its time
/// constants must be equal across its neurons in the sample), all neurons at once in SIMD lanes;
/// a neuron is solved alone only in an interval where a cheap bound says it may reach the
/// threshold, or while it is refractory. The bound: V(end) >= v_th, or V rising at the start and
/// its maximum bound above v_th — with I >= 0, V is concave while it rises
/// (V̈ = −(V̇ + I/τs)/τm), so V <= V0 + V̇(0)·h and V <= v_leak + I0; with I < 0, V <= v_leak.
/// The readouts' running maximum uses the same bound.
///
/// A flagged lane (lifLaneFast) first tries a tighter bound: with I0 >= 0, V is concave in
/// x = e^{−s/τm} over the whole interval, so the tangents at its two ends bound it. When τm/τs is
/// an integer r, V − v_th is the polynomial (v_leak − v_th) + (V0 − v_leak)·x + I0/(r−1)·(x − x^r)
/// and the crossing is solved in x by Halley's method (solveRisingX), the interior maximum in closed
/// form (x_e^{r−1} = (V0 − v_leak + c)/(r·c)), with no exponential; the same function as the
/// general solver's, so the times agree with it to rounding (to 1e-15 s in the tests). Any other
/// lane (non-integer ratio, refractory, V at or above threshold) takes EventSim.firstCrossing,
/// exactly as EventSimulator does.
///
/// The policies are EventSim's: a crossing at the very instant of an arrival is decided after the
/// arrival (the search of an interval stops short of its end); ties in a population's output are
/// ordered by (time, neuron). Results agree with EventSimulator to rounding (the flows are split at
/// different times): EventLayeredTests. Recurrent graphs, per-synapse delays and per-neuron time
/// constants take the general loop.
module SnnFunc.EventLayered

#nowarn "9" // NativePtr: the LIF sweep's pinned arrays (EventLayeredLoops)

open System
open System.Numerics
open System.Numerics.Tensors
open System.Runtime.Intrinsics
open System.Runtime.InteropServices
open Microsoft.FSharp.NativeInterop
open SnnFunc.EventSim
open SnnFunc.EventLayeredLoops

/// The populations in an order where every projection comes from a source or an earlier
/// population (lowest index first among the ready ones), or None when the graph needs the general
/// loop: a cycle (recurrence) or per-synapse delays.
let tryOrder (l: Layout) : int[] option =
    if l.Projs |> Array.exists (fun j -> j.DKind = 3) then
        None
    else
        let np = l.Pops.Length
        let deps = Array.zeroCreate<int> np

        for j in l.Projs do
            if l.EmitterPop[j.Src] >= 0 then
                deps[j.Tgt] <- deps[j.Tgt] + 1

        let order = ResizeArray<int>()
        let isDone = Array.zeroCreate<bool> np
        let mutable progress = true

        while progress do
            progress <- false

            match Array.tryFindIndex (fun p -> not isDone[p] && deps[p] = 0) [| 0 .. np - 1 |] with
            | Some p ->
                isDone[p] <- true
                order.Add p
                progress <- true

                for j in l.Projs do
                    if l.EmitterPop[j.Src] = p then
                        deps[j.Tgt] <- deps[j.Tgt] - 1
            | None -> ()

        if order.Count = np then Some(order.ToArray()) else None

let private lanes = Vector<float>.Count

/// The smaller of two numbers, for the lone lanes' bounds: one compare (F#'s min, as Math.Min,
/// also orders −0 and +0 and propagates NaN, which costs a dozen instructions and spills there).
let inline private lessOf (a: float) (b: float) = if a < b then a else b

/// Orders the spikes [first, last) of (times, neurons) by (time, neuron), in place: insertion, so
/// linear when they are nearly in order.
let private sortSpikes (times: float[]) (neurons: int[]) (first: int) (last: int) =
    for a in first + 1 .. last - 1 do
        let t, n = times[a], neurons[a]
        let mutable z = a - 1

        while z >= first && (times[z] > t || (times[z] = t && neurons[z] > n)) do
            times[z + 1] <- times[z]
            neurons[z + 1] <- neurons[z]
            z <- z - 1

        times[z + 1] <- t
        neurons[z + 1] <- n

/// A workspace for one thread: the populations' state in padded lane arrays, their spike lists
/// and the arrival buffer.
type LayeredSimulator(l: Layout, order: int[]) =
    let pops = l.Pops
    let np = pops.Length
    let v = pops |> Array.map (fun p -> Array.zeroCreate<float> (padded p.N))
    let i = pops |> Array.map (fun p -> Array.zeroCreate<float> (padded p.N))
    // The state at the interval's start of the blocks the sweeps flag (lifSweep, liSweep).
    let saveV = pops |> Array.map (fun p -> Array.zeroCreate<float> (padded p.N))
    let saveI = pops |> Array.map (fun p -> Array.zeroCreate<float> (padded p.N))
    let flagC = pops |> Array.map (fun p -> Array.zeroCreate<int> (padded p.N))
    let flagM = pops |> Array.map (fun p -> Array.zeroCreate<uint64> (padded p.N))
    let wSum = pops |> Array.map (fun p -> Array.zeroCreate<float> (padded p.N))
    let refUntil = pops |> Array.map (fun p -> Array.zeroCreate<float> (padded p.N))
    let vLeak = pops |> Array.map (fun p -> Array.zeroCreate<float> (padded p.N))
    let vTh = pops |> Array.map (fun p -> Array.zeroCreate<float> (padded p.N))
    let maxV = pops |> Array.map (fun p -> Array.zeroCreate<float> (padded p.N))
    let maxT = pops |> Array.map (fun p -> Array.zeroCreate<float> (padded p.N))
    // Each spiking population's spikes, all of them (also those past Capacity), by (time, neuron).
    let spT = pops |> Array.map (fun _ -> Array.zeroCreate<float> 64)
    let spN = pops |> Array.map (fun _ -> Array.zeroCreate<int> 64)
    let spCount = Array.zeroCreate<int> np

    let incoming =
        pops
        |> Array.map (fun p ->
            l.Projs
            |> Array.indexed
            |> Array.filter (fun (_, j) -> j.Tgt = p.Index)
            |> Array.map fst)

    let sourceOf =
        Array.init (l.EmitterPop.Length) (fun e ->
            l.Sources
            |> Array.tryFindIndex (fun s -> s.Emitter = e)
            |> Option.defaultValue -1)
    // The arrivals of the population being run: time, projection, source neuron.
    let mutable arrT = Array.zeroCreate<float> 256
    let mutable arrJ = Array.zeroCreate<int> 256
    let mutable arrM = Array.zeroCreate<int> 256
    let mutable na = 0
    // Per arrival, its weight row: array and offset (weightRows).
    let mutable wRef = Array.zeroCreate<float[]> 256
    let mutable wOff = Array.zeroCreate<int> 256
    // The flows over the intervals between arrival times (intervalFlows).
    let mutable fEnd = Array.zeroCreate<float> 256
    let mutable fH = Array.zeroCreate<float> 256
    let mutable fEm = Array.zeroCreate<float> 256
    let mutable fEs = Array.zeroCreate<float> 256
    let mutable fK = Array.zeroCreate<float> 256
    // 1/τm and 1/(r − 1) of the population lifRun runs, for lifLaneFast.
    let mutable laneInvTm = 0.0
    let mutable laneInvR1 = 0.0
    let mutable sd = Unchecked.defaultof<SlotData>
    // What Run reads once when no sample has its own (the time constants; per population, the
    // leaks and thresholds), until the SlotData changes.
    let mutable sharedTausOfAll: struct (float * float) voption[] = null
    let leakAndThreshold = Array.zeroCreate<bool> np
    let mutable b = 0
    let mutable inp = Unchecked.defaultof<Inputs>

    let param (p: PopLayout) (q: int) (n: int) =
        sd.Data[p.Slot + q][sd.Off(p.Slot + q, b) + n]

    /// The population's time constants when all its neurons share them in this sample.
    let sharedTaus (p: PopLayout) =
        let ts, tm = param p 0 0, param p 1 0
        let mutable same = true

        for n in 1 .. p.N - 1 do
            if param p 0 n <> ts || param p 1 n <> tm then
                same <- false

        if same then ValueSome(struct (tm, ts)) else ValueNone

    let addArrival (t: float) (j: int) (m: int) =
        if na = arrT.Length then
            arrT <- grow arrT (2 * na)
            arrJ <- grow arrJ (2 * na)
            arrM <- grow arrM (2 * na)

        arrT[na] <- t
        arrJ[na] <- j
        arrM[na] <- m
        na <- na + 1

    /// The events of projection j's source, in order: (times, neurons)[first .. first + count) of
    /// its input buffer in this sample, or of its upstream population's spikes.
    let sourceEvents (j: int) =
        let pj = l.Projs[j]
        let k = sourceOf[pj.Src]

        if k >= 0 then
            struct (inp.Times[k], inp.Neurons[k], b * inp.Cap[k], inp.Counts[k][b])
        else
            let q = l.EmitterPop[pj.Src]
            struct (spT[q], spN[q], 0, spCount[q])

    /// The arrivals of one delay-free projection j, its source's events copied as they are, up to
    /// the last at or before TEnd.
    let gatherOne (j: int) =
        let struct (times, neurons, first, count) = sourceEvents j
        let mutable kept = count

        while kept > 0 && not (times[first + kept - 1] <= l.TEnd) do
            kept <- kept - 1

        if arrT.Length < kept then
            arrT <- grow arrT kept
            arrJ <- grow arrJ kept
            arrM <- grow arrM kept

        Array.Copy(times, first, arrT, 0, kept)
        Array.Copy(neurons, first, arrM, 0, kept)
        Array.Fill(arrJ, j, 0, kept)
        na <- kept

    /// Population p's arrivals, sorted by time (ties in the order they were gathered).
    let gather (p: int) =
        na <- 0
        let mutable sorted = incoming[p].Length <= 1

        // One projection without delays (the layered networks' usual case): its source's events
        // in their order, without the per-event path below.
        if incoming[p].Length = 1 && l.Projs[incoming[p][0]].DKind = 0 then
            gatherOne (incoming[p][0])
        else
            for j in incoming[p] do
                let pj = l.Projs[j]

                let delay (m: int) =
                    match pj.DKind with
                    | 0 -> 0.0
                    | 1 -> sd.Data[pj.DSlot][sd.Off(pj.DSlot, b)]
                    | _ -> sd.Data[pj.DSlot][sd.Off(pj.DSlot, b) + m]

                if pj.DKind = 2 then
                    sorted <- false

                let add (t: float) (m: int) =
                    let ta = t + delay m

                    if ta <= l.TEnd then
                        addArrival ta j m

                let struct (times, neurons, first, count) = sourceEvents j

                for e in first .. first + count - 1 do
                    add (times[e]) (neurons[e])

        if not sorted then
            // A deterministic stable order: by time, then by gathering order.
            let idx = Array.init na id
            let ts = arrT
            Array.Sort(idx, Comparison(fun x y -> let c = compare ts[x] ts[y] in if c <> 0 then c else compare x y))

            let t2, j2, m2 =
                Array.map (fun x -> arrT[x]) idx, Array.map (fun x -> arrJ[x]) idx, Array.map (fun x -> arrM[x]) idx

            Array.blit t2 0 arrT 0 na
            Array.blit j2 0 arrJ 0 na
            Array.blit m2 0 arrM 0 na

    let addSpike (p: int) (t: float) (n: int) =
        let k = spCount[p]

        if k = spT[p].Length then
            spT[p] <- grow spT[p] (2 * k)
            spN[p] <- grow spN[p] (2 * k)

        spT[p][k] <- t
        spN[p][k] <- n
        spCount[p] <- k + 1

        if k + 1 > 100_000_000 then
            invalidOp
                $"Events.run: more than 1e8 spikes in sample %d{b} (neuron %d{n} of '%s{pops[p].Name}' at t = %g{t} s): the network fires without bound"

    /// Neuron n of LIF population p alone over [t0, t1) (or [t0, t1] when `last`), from (v0, i0),
    /// `f` the flow over the whole interval: refractory hold, crossings, resets. A crossing of a
    /// rising V that ends the interval above threshold is solved directly in [t, t1] from the
    /// secant's estimate; anything else goes to EventSim.firstCrossing, as in EventSimulator.
    let lifLane
        (p: int)
        (n: int)
        (tm: float)
        (ts: float)
        (t0: float)
        (t1: float)
        (last: bool)
        (v0: float)
        (i0: float)
        (f: Flow)
        (vOut: float[])
        (iOut: float[])
        =
        let pop = pops[p]
        let vl, vth, vrs = param pop 2 n, param pop 3 n, param pop 4 n
        let tol = grazeTol vth vl
        let mutable t = t0
        let mutable vn = v0
        let mutable iN = i0
        let mutable go = true
        let mutable atInstant = 0

        while go do
            let tr = refUntil[p][n]

            if tr >= t1 then
                iN <- iN * exp (-(t1 - t) / ts)
                go <- false
            else
                if tr > t then
                    iN <- iN * exp (-(tr - t) / ts)
                    t <- tr

                let h = t1 - t
                let fr = if t = t0 then f else flow tm ts h
                let vEnd = vAfter vl vn iN fr
                let h0 = vl - vn + iN

                let s =
                    if
                        vn < vth
                        && vEnd >= vth
                        && h0 > 0.0
                        && (vl - vEnd + iN * fr.Es >= 0.0 || vEnd > vth + tol)
                    then
                        // One crossing in (0, h), V increasing up to it: the bracket firstCrossing would find.
                        solveRising vn iN tm ts vl vth 0.0 h (h * (vth - vn) / (vEnd - vn))
                    elif
                        vEnd < vth
                        && not (h0 > 0.0 && (if iN >= 0.0 then min (vn + h0 * h / tm) (vl + iN) else vl) >= vth)
                    then
                        infinity // the interval's bound (module comment)
                    else
                        firstCrossing vn iN tm ts vl vth h

                let tc = t + s

                if Double.IsFinite s && (tc < t1 || (last && tc <= t1)) then
                    atInstant <- if tc = t then atInstant + 1 else 1

                    if atInstant > l.MaxPerInstant then
                        invalidOp
                            $"Events.run: more than %d{l.MaxPerInstant} spikes at the instant t = %g{tc} s in sample %d{b}, the last of neuron %d{n} of '%s{pop.Name}' (a runaway cascade; see MaxEventsPerInstant)"

                    addSpike p tc n
                    iN <- iN * exp (-s / ts)
                    vn <- vrs
                    refUntil[p][n] <- tc + pop.TRef
                    t <- tc
                else
                    vn <- vEnd
                    iN <- iN * fr.Es
                    go <- false

        vOut[n] <- vn
        iOut[n] <- iN

    /// Neuron n of LIF population p alone over [t0, t1) (or [t0, t1] when `last`) from (v0, i0),
    /// `f` the flow over the whole interval, into (vOut, iOut), which hold its flow without a spike
    /// on entry. `r` is the integer ratio τm/τs or 0, `ratio` τm/τs, `tangents` whether the tangent
    /// bound applies (lifRun's). The order of the tests:
    /// - no crossing is possible (the sweep's bound again, then the tangent bound: with I0 >= 0, V
    ///   is concave in x = e^{−s/τm} for any ratio, since V − v_leak = (V0 − v_leak)·x + I0·K
    ///   and K'' = −r·x^{r−2}/... < 0; the tangents at both ends bound it, their intersection its
    ///   maximum over the interval): nothing to do;
    /// - with an integer ratio, a rising V that ends the interval above threshold (lifLane's direct
    ///   case): the crossing solved in x (solveRisingX, no exponential), the rest of the interval
    ///   again from the reset, its flow from x's powers;
    /// - anything else (refractory, V at or above threshold, a crossing after an interior
    ///   extremum, a non-integer ratio): lifLane from the current state.
    let lifLaneFast
        (p: int)
        (n: int)
        (tm: float)
        (ts: float)
        (r: int)
        (ratio: float)
        (tangents: bool)
        (t0: float)
        (t1: float)
        (last: bool)
        (v0: float)
        (i0: float)
        (f: Flow)
        (vOut: float[])
        (iOut: float[])
        =
        let pop = pops[p]

        if refUntil[p][n] > t0 then
            lifLane p n tm ts t0 t1 last v0 i0 f vOut iOut
        else
            let vl, vth, vrs = vLeak[p][n], vTh[p][n], param pop 4 n
            let tol = grazeTol vth vl
            let mutable t = t0
            let mutable vn = v0
            let mutable iN = i0
            let mutable em = f.Em
            let mutable es = f.Es
            let mutable k = f.K
            let mutable go = true
            let mutable atInstant = 0
            // The sweep flagged the lane and its certificate did not clear it: the bounds below
            // would only repeat that at t0 (to an ulp, which the solve and lifLane absorb).
            let mutable first = true
            let invTm, invR1 = laneInvTm, laneInvR1

            while go do
                let h0 = vl - vn + iN
                let vEnd = vl + (vn - vl) * em + iN * k

                let noCrossing =
                    not first
                    && vn < vth
                    && vEnd < vth
                    && (not (
                            h0 > 0.0
                            && (if iN >= 0.0 then
                                    lessOf (vn + h0 * ((t1 - t) * invTm)) (vl + iN)
                                else
                                    vl)
                               >= vth
                        )
                        || (tangents
                            && iN >= 0.0
                            && (let margin = 1e-12 * (abs vth + abs vl + abs vn + abs iN * (1.0 + ratio))
                                // F'(x) at both ends: −h0 at x = 1, at x = em from x^{r−1} = es/em.
                                let dh = vn - vl + iN * (1.0 - ratio * es / em) / (ratio - 1.0)

                                if dh <= 0.0 then
                                    vEnd < vth - margin
                                else
                                    let xs = (vEnd - vn - dh * em - h0) / (-h0 - dh)
                                    vn + h0 * (1.0 - xs) < vth - margin)))

                // The crossing in x = e^{−s/τm} where an integer ratio makes V − v_th the
                // polynomial F(x) = (vl − vth) + (vn − vl)·x + c·(x − x^r), c = iN/(r − 1),
                // F(1) = vn − vth < 0; NaN when there is none, +inf when the general lane decides.
                first <- false

                let xc =
                    if noCrossing then
                        nan
                    elif r < 2 || pop.TRef > 0.0 || not (vn < vth && h0 > 0.0) then
                        infinity
                    elif vEnd >= vth then
                        if vl - vEnd + iN * es >= 0.0 || vEnd > vth + tol then
                            // Rising to a crossing before the end (lifLane's direct case):
                            // F(em) = vEnd − vth >= 0.
                            solveRisingX (vl - vth) (vn - vl) (iN / float (r - 1)) r em 1.0 (vEnd - vth) (vn - vth)
                        else
                            infinity
                    elif iN > 0.0 then
                        // An interior maximum (V rises at the start; the tangent bound did not rule
                        // it out): F'(x) = 0 at x_e^{r−1} = (vn − vl + c)/(r·c), and V = vl + I
                        // there. A crossing (beyond the grazing tolerance, as firstCrossing)
                        // lies in (x_e, 1).
                        let c = iN / float (r - 1)
                        let q = (vn - vl + c) / (float r * c)

                        let xe =
                            match r with
                            | 2 -> q
                            | 3 -> sqrt q
                            | 4 -> Math.Cbrt q
                            | _ -> Math.Pow(q, 1.0 / float (r - 1))

                        if xe > em && xe < 1.0 then
                            let fe = vl + iN * powInt xe r - vth

                            if fe > tol then
                                solveRisingX (vl - vth) (vn - vl) c r xe 1.0 fe (vn - vth)
                            else
                                nan
                        else
                            infinity
                    else
                        infinity

                if Double.IsNaN xc then
                    vOut[n] <- vEnd
                    iOut[n] <- iN * es
                    go <- false
                elif xc < infinity then
                    let x = xc
                    let tc = t - tm * log x

                    if tc < t1 || (last && tc <= t1) then
                        atInstant <- if tc = t then atInstant + 1 else 1

                        if atInstant > l.MaxPerInstant then
                            invalidOp
                                $"Events.run: more than %d{l.MaxPerInstant} spikes at the instant t = %g{tc} s in sample %d{b}, the last of neuron %d{n} of '%s{pop.Name}' (a runaway cascade; see MaxEventsPerInstant)"

                        addSpike p tc n
                        iN <- iN * powInt x r
                        vn <- vrs
                        t <- tc
                        // The rest of the interval: e^{−(t1 − tc)/τm} = em / x, its r-th power, and
                        // K = (x − x^r)/(r − 1).
                        em <- lessOf 1.0 (em / x)
                        es <- powInt em r
                        k <- (em - es) * invR1
                    else
                        vOut[n] <- vEnd
                        iOut[n] <- iN * es
                        go <- false
                else
                    let fr = if t = t0 then f else flow tm ts (t1 - t)
                    lifLane p n tm ts t t1 last vn iN fr vOut iOut
                    go <- false

    /// The weight row of the arrivals [k0, k1) (weightRows) that population p's next sweep adds:
    /// one arrival's, or their sum (array and offset; the state array when there are none). The
    /// lanes at and past `full`, past the sweep's last whole block, get them here one by one.
    let pendingRow (p: int) (k0: int) (k1: int) (full: int) =
        let n = pops[p].N

        if full < n then
            for q in k0 .. k1 - 1 do
                for z in full .. n - 1 do
                    i[p][z] <- i[p][z] + wRef[q][wOff[q] + z]

        if k1 - k0 = 1 then
            struct (wRef[k0], wOff[k0])
        elif k1 > k0 then
            let sum = wSum[p]
            Array.Copy(wRef[k0], wOff[k0], sum, 0, n)

            for q in k0 + 1 .. k1 - 1 do
                TensorPrimitives.Add(ReadOnlySpan<float>(sum, 0, n), ReadOnlySpan<float>(wRef[q], wOff[q], n), Span<float>(sum, 0, n))

            struct (sum, 0)
        else
            struct (v[p], 0)

    /// LIF population p over its intervals (intervalFlows; `arrivals` at their starts, from
    /// weightRows): per interval [t0, t1) (or [t0, t1] for the last), the arrivals at t0 added
    /// first, the widest vectors the machine has, in place, then the flagged lanes alone from
    /// their saved state at t0. The arrays are pinned once for the whole run.
    let lifRun (p: int) (tm: float) (ts: float) (r: int) (count: int) =
        let refractory = pops[p].TRef > 0.0
        let va, ia = v[p], i[p]
        let n = pops[p].N
        let rate = 1.0 / tm - 1.0 / ts
        let width = sweepWidth
        let full = n / width * width
        use vp = fixed va
        use ip = fixed ia
        use rp = fixed refUntil[p]
        use vlp = fixed vLeak[p]
        use thp = fixed vTh[p]
        use fcp = fixed flagC[p]
        use fmp = fixed flagM[p]
        use svp = fixed saveV[p]
        use sip = fixed saveI[p]
        let lanes = sweepLanes n
        let ratio = tm / ts
        let tangents = abs (ratio - 1.0) >= 0.05
        laneInvTm <- 1.0 / tm
        laneInvR1 <- 1.0 / float (r - 1)
        let mutable t0 = 0.0
        let mutable a = 0
        // The arrivals whose weights the next sweep adds at its start.
        let mutable k0 = 0

        for q in 0 .. count - 1 do
            let t1 = fEnd[q]
            let last = q = count - 1

            if t1 > t0 || last then
                let f =
                    {
                        Em = fEm[q]
                        Es = fEs[q]
                        K = fK[q]
                        Y = fH[q] * rate
                    }

                let k1 = a
                let hOverTm = (t1 - t0) / tm
                let slope = (1.0 - ratio * f.Es / f.Em) / (ratio - 1.0)
                let first = spCount[p]
                let hasW = k1 > k0
                let struct (row, off) = pendingRow p k0 k1 full
                use rowp = fixed row
                let rowp = NativePtr.add rowp off

                let nf =
                    lifSweepWidest
                        lanes
                        vp
                        ip
                        rp
                        vlp
                        thp
                        rowp
                        hasW
                        full
                        f.Em
                        f.Es
                        f.K
                        hOverTm
                        t0
                        refractory
                        tangents
                        ratio
                        slope
                        fcp
                        fmp
                        svp
                        sip

                let fc, fm, sv, si = flagC[p], flagM[p], saveV[p], saveI[p]

                for z in 0 .. nf - 1 do
                    let mutable m = fm[z]

                    while m <> 0UL do
                        let lane = BitOperations.TrailingZeroCount m
                        lifLaneFast p (fc[z] + lane) tm ts r ratio tangents t0 t1 last sv[z * width + lane] si[z * width + lane] f va ia
                        m <- m &&& (m - 1UL)

                // The interval's spikes came neuron by neuron: order them by (time, neuron). The
                // long last interval (to TEnd) can hold most of a pattern's spikes: sorted by time
                // first there, so that the insertion below, which orders ties, is linear.
                let count = spCount[p] - first

                if count > 16 then
                    Array.Sort(spT[p], spN[p], first, count)

                sortSpikes spT[p] spN[p] first spCount[p]

                k0 <- a

            while a < na && arrT[a] = t1 do
                a <- a + 1

            t0 <- t1

    /// LI population p over its intervals (intervalFlows), the arrivals' weights added at their
    /// times: per interval (t0, t1] the flow and the running maximum (interior extremum, then the
    /// end value, as EventSimulator.Advance), the widest vectors the machine has, then the lanes
    /// with a possible interior maximum alone. The arrays are pinned once for the whole run.
    let liRun (p: int) (tm: float) (ts: float) (count: int) =
        let va, ia, vl, mv, mt = v[p], i[p], vLeak[p], maxV[p], maxT[p]
        use vp = fixed va
        use ip = fixed ia
        use vlp = fixed vl
        use mvp = fixed mv
        use mtp = fixed mt
        use fcp = fixed flagC[p]
        use fmp = fixed flagM[p]
        use svp = fixed saveV[p]
        use sip = fixed saveI[p]
        let width = sweepWidth
        let full = pops[p].N / width * width
        let lanes = sweepLanes (pops[p].N)
        let rate = 1.0 / tm - 1.0 / ts
        let ratio = tm / ts
        let tangents = abs (ratio - 1.0) >= 0.05
        let mutable t0 = 0.0
        let mutable a = 0
        // The arrivals whose weights the next sweep adds at its start (V is continuous: they
        // change only the current).
        let mutable k0 = 0

        for q in 0 .. count - 1 do
            let t1 = fEnd[q]

            if t1 > t0 then
                let h = t1 - t0

                let f =
                    {
                        Em = fEm[q]
                        Es = fEs[q]
                        K = fK[q]
                        Y = fH[q] * rate
                    }

                let k1 = a
                let struct (row, off) = pendingRow p k0 k1 full
                use rowp = fixed row
                let rowp = NativePtr.add rowp off

                let nf =
                    liSweepWidest lanes vp ip vlp rowp (k1 > k0) full mvp mtp f.Em f.Es f.K (h / tm) t1 fcp fmp svp sip

                let fc, fm, sv, si = flagC[p], flagM[p], saveV[p], saveI[p]

                for z in 0 .. nf - 1 do
                    let mutable m = fm[z]

                    while m <> 0UL do
                        let lane = BitOperations.TrailingZeroCount m
                        let n = fc[z] + lane
                        let x0, y0, l0, vh = sv[z * width + lane], si[z * width + lane], vl[n], va[n]

                        // The tangent bound (lifLaneFast): an interior maximum below the running one needs
                        // no solve.
                        let below =
                            tangents
                            && y0 >= 0.0
                            && (let margin = 1e-12 * (abs mv[n] + abs l0 + abs x0 + abs y0 * (1.0 + ratio))
                                let g0 = l0 - x0 + y0
                                let dh = x0 - l0 + y0 * (1.0 - ratio * f.Es / f.Em) / (ratio - 1.0)

                                if dh <= 0.0 then
                                    true // rising to the end: the end value below decides
                                else
                                    let xs = (vh - x0 - dh * f.Em - g0) / (-g0 - dh)
                                    x0 + g0 * (1.0 - xs) < mv[n] - margin)

                        let se = if below then infinity else extremum x0 y0 tm ts l0

                        if se < h then
                            let vm = vAfter l0 x0 y0 (flow tm ts se)

                            if vm > mv[n] then
                                mv[n] <- vm
                                mt[n] <- t0 + se

                        if vh > mv[n] then
                            mv[n] <- vh
                            mt[n] <- t1

                        m <- m &&& (m - 1UL)

                k0 <- a

            while a < na && arrT[a] = t1 do
                a <- a + 1

            t0 <- t1

    /// The flows over the intervals between population p's distinct arrival times (and to TEnd):
    /// the interval ends in fEnd[0 .. count−1], their flows in fEm, fEs, fK (K in the
    /// cancellation-free form of EventSim.flow, its series vectorised).
    let intervalFlows (tm: float) (ts: float) (r: int) =
        let mutable g = 0
        let mutable a = 0

        if fEnd.Length < na + 1 then
            fEnd <- Array.zeroCreate (2 * na + 1)
            fH <- Array.zeroCreate (2 * na + 1)
            fEm <- Array.zeroCreate (2 * na + 1)
            fEs <- Array.zeroCreate (2 * na + 1)
            fK <- Array.zeroCreate (2 * na + 1)

        let mutable t0 = 0.0

        while a < na do
            let t1 = arrT[a]
            fEnd[g] <- t1
            fH[g] <- t1 - t0
            g <- g + 1
            t0 <- t1

            while a < na && arrT[a] = t1 do
                a <- a + 1

        fEnd[g] <- l.TEnd
        fH[g] <- l.TEnd - t0
        g <- g + 1

        // The exponentials vectorised (to within an ulp of exp's).
        let hs = ReadOnlySpan<float>(fH, 0, g)
        TensorPrimitives.Divide(hs, -tm, Span<float>(fEm, 0, g))
        TensorPrimitives.Exp(ReadOnlySpan<float>(fEm, 0, g), Span<float>(fEm, 0, g))

        if r > 0 then
            // With τm = r·τs, e^{−h/τs} = (e^{−h/τm})^r (to rounding).
            for q in 0 .. g - 1 do
                fEs[q] <- powInt fEm[q] r
        else
            TensorPrimitives.Divide(hs, -ts, Span<float>(fEs, 0, g))
            TensorPrimitives.Exp(ReadOnlySpan<float>(fEs, 0, g), Span<float>(fEs, 0, g))

        let rate = 1.0 / tm - 1.0 / ts
        let half = Vector<float>(0.5)
        let mutable c = 0

        while c + lanes <= g do
            let h = Vector<float>(fH, c)
            let em, es = Vector<float>(fEm, c), Vector<float>(fEs, c)
            let y = h * Vector<float>(rate)
            let mutable series = Vector<float>(cE[cE.Length - 1])

            for q in cE.Length - 2 .. -1 .. 0 do
                series <- series * y + Vector<float>(cE[q])

            let small = Vector.LessThanOrEqual(Vector.Abs y, half)
            let e = Vector.ConditionalSelect(small, em * series, (es - em) / y)
            (h / Vector<float>(tm) * e).CopyTo(fK, c)
            c <- c + lanes

        for q in c .. g - 1 do
            let y = fH[q] * rate
            fK[q] <- fH[q] / tm * mulE (fEm[q]) (fEs[q]) y

        g

    /// The weight row of every arrival (wRef, wOff).
    let weightRows (p: int) =
        if wRef.Length < na then
            wRef <- Array.zeroCreate arrT.Length
            wOff <- Array.zeroCreate arrT.Length

        if incoming[p].Length = 1 then
            // One projection: one weight array, the rows' offsets alone per arrival.
            let pj = l.Projs[incoming[p][0]]
            let off = sd.Off(pj.WSlot, b)
            Array.Fill(wRef, sd.Data[pj.WSlot], 0, na)

            for a in 0 .. na - 1 do
                wOff[a] <- off + arrM[a] * pj.TgtN
        else
            for a in 0 .. na - 1 do
                let pj = l.Projs[arrJ[a]]
                wRef[a] <- sd.Data[pj.WSlot]
                wOff[a] <- sd.Off(pj.WSlot, b) + arrM[a] * pj.TgtN

    /// Runs population p over its arrivals, with shared time constants (tm, ts).
    let runPop (p: int) (tm: float) (ts: float) =
        let pop = pops[p]

        Array.Fill(v[p], 0.0)
        Array.Fill(i[p], 0.0)
        Array.Fill(maxV[p], 0.0)
        Array.Fill(maxT[p], 0.0)
        Array.Fill(refUntil[p], -infinity)

        // Leaks and thresholds shared by the samples are read once per call (this workspace lives
        // for one kernel call: its SlotData does not change).
        if not leakAndThreshold[p] then
            Array.Fill(vTh[p], infinity)
            Array.Fill(vLeak[p], 0.0)

            for n in 0 .. pop.N - 1 do
                vLeak[p][n] <- param pop 2 n

                if pop.Spiking then
                    vTh[p][n] <- param pop 3 n

            leakAndThreshold[p] <-
                not sd.PerSample[pop.Slot + 2]
                && not (pop.Spiking && sd.PerSample[pop.Slot + 3])

        spCount[p] <- 0
        gather p
        // The integer ratio τm/τs (then τs = τm/r to rounding), or 0.
        let r =
            let q = Math.Round(tm / ts)

            if q >= 2.0 && q <= 16.0 && abs (tm - q * ts) <= 4e-16 * tm then
                int q
            else
                0

        let count = intervalFlows tm ts r

        weightRows p

        if pop.Spiking then
            lifRun p tm ts r count
        else
            liRun p tm ts count

    /// Simulates sample `sample` into `out` (as EventSimulator.Simulator.Run does), or returns false
    /// without output when a population's time constants differ across its neurons (the caller
    /// then runs the general loop). The parameters are checked by the caller (checkParams).
    member _.Run(data: SlotData, sample: int, inputs: Inputs, out: Outputs) : bool =
        if not (obj.ReferenceEquals(data, sd)) then
            sharedTausOfAll <- null
            Array.Fill(leakAndThreshold, false)

        sd <- data
        b <- sample
        inp <- inputs

        let taus =
            match sharedTausOfAll with
            | null ->
                let t = pops |> Array.map sharedTaus

                if
                    pops
                    |> Array.forall (fun p -> not sd.PerSample[p.Slot] && not sd.PerSample[p.Slot + 1])
                then
                    sharedTausOfAll <- t

                t
            | t -> t

        if taus |> Array.exists (fun x -> x.IsNone) then
            false
        else
            EventSimulator.checkInputs l inp b

            for p in order do
                let struct (tm, ts) = taus[p].Value
                runPop p tm ts

            for p in pops do
                let r = p.OutIndex

                if p.Spiking then
                    let c = l.Capacity
                    let kept = min spCount[p.Index] c

                    if spCount[p.Index] > c && l.FailOnOverflow then
                        invalidOp
                            $"Events.run: population '%s{p.Name}' overflowed its capacity of %d{c} spikes in sample %d{b} (at t = %g{spT[p.Index][c]} s); raise Capacity or use OnOverflow = Report"

                    Array.blit spT[p.Index] 0 out.Times[r] (b * c) kept
                    Array.blit spN[p.Index] 0 out.Neurons[r] (b * c) kept

                    Array.Fill(out.Times[r], infinity, b * c + kept, c - kept)
                    Array.Fill(out.Neurons[r], -1, b * c + kept, c - kept)

                    out.Count[r][b] <- kept
                    out.Overflow[r][b] <- spCount[p.Index] - kept
                else
                    Array.blit maxV[p.Index] 0 out.VMax[r] (b * p.N) p.N
                    Array.blit maxT[p.Index] 0 out.TMax[r] (b * p.N) p.N

            true
