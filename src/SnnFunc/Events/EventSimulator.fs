/// The forward event loop of one sample (the policies are EventSim's module comment): a global,
/// time-ordered loop over input spikes, delayed arrivals and candidate threshold crossings, the
/// populations updated by their closed-form flows, recording the trajectory (EventSim.Log) that
/// the derivative replays (EventGrad) follow.
module SnnFunc.EventSimulator

open System
open SnnFunc.EventSim

/// Checks one sample's events of one buffer (`name` names it, built only for a message): count
/// within capacity, times ascending and >= 0 (and finite when `finite`), neurons in [0, n).
let private checkBuffer (name: unit -> string) (n: int) (finite: bool) (times: float[]) (neurons: int[]) (count: int) (cap: int) (b: int) =
    if count < 0 || count > cap then
        let what = name ()
        fail $"%s{what} (sample %d{b}): Count %d{count} is outside [0, %d{cap}]"

    let mutable last = 0.0

    for q in 0 .. count - 1 do
        let t = times[b * cap + q]
        let j = neurons[b * cap + q]

        if Double.IsNaN t || t < last || (finite && Double.IsInfinity t) then
            let bound = if finite then "finite, " else ""
            let what = name ()

            fail $"%s{what} (sample %d{b}): the event times must be %s{bound}>= 0 and ascending, slot %d{q} holds %g{t} after %g{last}"

        if j < 0 || j >= n then
            let what = name ()
            fail $"%s{what} (sample %d{b}): slot %d{q} names neuron %d{j} of a population of %d{n}"

        last <- t

/// Checks one sample's input events and given spikes.
let checkInputs (l: Layout) (inp: Inputs) (b: int) =
    for k in 0 .. l.Sources.Length - 1 do
        let src = l.Sources[k]
        checkBuffer (fun () -> $"source '%s{src.Name}'") src.N false (inp.Times[k]) (inp.Neurons[k]) (inp.Counts[k][b]) (inp.Cap[k]) b

    for p in l.Pops do
        let f = l.ForcedOf[p.Index]

        if f >= 0 then
            checkBuffer
                (fun () -> $"the given spikes of '%s{p.Name}'")
                p.N
                true
                (inp.ForcedTimes[f])
                (inp.ForcedNeurons[f])
                (inp.ForcedCounts[f][b])
                (inp.ForcedCap[f])
                b

/// A binary min-heap of events ordered by (time, tie), each with an item: the simulator's queues
/// of candidate spikes and of delayed arrivals, in struct-of-arrays form.
type EventHeap<'T>() =
    let mutable times = Array.zeroCreate<float> 64
    let mutable ties = Array.zeroCreate<int64> 64
    let mutable items = Array.zeroCreate<'T> 64
    let mutable n = 0

    let less (x: int) (y: int) =
        times[x] < times[y] || (times[x] = times[y] && ties[x] < ties[y])

    let swap (x: int) (y: int) =
        let t, k, it = times[x], ties[x], items[x]
        times[x] <- times[y]
        ties[x] <- ties[y]
        items[x] <- items[y]
        times[y] <- t
        ties[y] <- k
        items[y] <- it

    member _.Count = n
    member _.TopTime = times[0]
    member _.TopTie = ties[0]
    member _.TopItem = items[0]
    member _.Clear() = n <- 0

    member _.Push(t: float, tie: int64, item: 'T) =
        if n = times.Length then
            times <- grow times (2 * n)
            ties <- grow ties (2 * n)
            items <- grow items (2 * n)

        times[n] <- t
        ties[n] <- tie
        items[n] <- item
        let mutable c = n
        n <- n + 1

        while c > 0 && less c ((c - 1) / 2) do
            swap c ((c - 1) / 2)
            c <- (c - 1) / 2

    /// Removes the earliest event.
    member _.Pop() =
        n <- n - 1
        swap 0 n
        let mutable c = 0
        let mutable go = true

        while go do
            let a, z = 2 * c + 1, 2 * c + 2
            let mutable m = c

            if a < n && less a m then
                m <- a

            if z < n && less z m then
                m <- z

            if m = c then go <- false else swap c m
            c <- m

/// A simulation workspace for one thread: every population's state, the queues and the log.
type Simulator(l: Layout) =
    let pops = l.Pops
    let np = pops.Length
    let v = pops |> Array.map (fun p -> Array.zeroCreate<float> p.N)
    let i = pops |> Array.map (fun p -> Array.zeroCreate<float> p.N)
    let refUntil = pops |> Array.map (fun p -> Array.zeroCreate<float> p.N)
    let cand = pops |> Array.map (fun p -> Array.zeroCreate<float> p.N)
    let ver = pops |> Array.map (fun p -> Array.zeroCreate<int> p.N)
    let touchedAll = Array.zeroCreate<bool> np
    let touchedFlag = pops |> Array.map (fun p -> Array.zeroCreate<bool> p.N)
    let touched = pops |> Array.map (fun _ -> ResizeArray<int>())
    let tPop = Array.zeroCreate<float> np
    let recheckTime = Array.create np infinity
    let recheckFlag = pops |> Array.map (fun p -> Array.zeroCreate<bool> p.N)
    let recheckList = pops |> Array.map (fun _ -> ResizeArray<int>())
    let log = Log(l)
    let pending = ResizeArray<struct (int * int)>()
    // Candidate spikes ordered by (time, population, neuron), the neuron's version as the item
    // (stale entries skipped); delayed arrivals ordered by (time, sequence number).
    let cands = EventHeap<int>()
    let arrivals = EventHeap<struct (int * int * int)>()
    let mutable seq = 0L
    let mutable sd = Unchecked.defaultof<SlotData>
    let mutable b = 0

    // The item of a given (forced) spike: never stale, as no crossing is solved for its neuron.
    let forcedItem = -1

    let candKey (p: int) (n: int) = (int64 p <<< 32) ||| int64 n

    let hPush (t: float) (p: int) (n: int) (w: int) = cands.Push(t, candKey p n, w)

    let candPop (k: int64) = int (k >>> 32), int (k &&& 0xFFFFFFFFL)

    /// Drops stale candidates from the top; the earliest valid candidate's time or +inf.
    let hTop () =
        let mutable go = cands.Count > 0

        while go do
            let p, n = candPop cands.TopTie

            if cands.TopItem <> ver[p][n] && cands.TopItem <> forcedItem then
                cands.Pop()
                go <- cands.Count > 0
            else
                go <- false

        if cands.Count > 0 then cands.TopTime else infinity

    let aPush (t: float) (j: int) (e: int) (g: int) =
        arrivals.Push(t, seq, struct (j, e, g))
        seq <- seq + 1L

    member _.Log = log

    /// Advances population p to time t (each neuron's closed-form flow, refractory hold, the
    /// readouts' running maximum); `seg` is the op this advance precedes (−2: the final one).
    member _.Advance(p: int, t: float, seg: int) =
        let ta = tPop[p]

        if t > ta then
            let pop = pops[p]
            let dt = t - ta
            let ts, ots = sd.Data[pop.Slot], sd.Off(pop.Slot, b)
            let tm, otm = sd.Data[pop.Slot + 1], sd.Off(pop.Slot + 1, b)
            let vl, ovl = sd.Data[pop.Slot + 2], sd.Off(pop.Slot + 2, b)
            let vp, ip = v[p], i[p]
            let common = flow tm[otm] ts[ots] dt

            for n in 0 .. pop.N - 1 do
                let tsn, tmn, vln = ts[ots + n], tm[otm + n], vl[ovl + n]

                if pop.Spiking && refUntil[p][n] > ta then
                    let tr = refUntil[p][n]

                    if tr >= t then
                        ip[n] <- ip[n] * exp (-dt / tsn)
                    else
                        ip[n] <- ip[n] * exp (-(tr - ta) / tsn)
                        let f = flow tmn tsn (t - tr)
                        let v0 = vp[n]
                        vp[n] <- vAfter vln v0 ip[n] f
                        ip[n] <- ip[n] * f.Es
                else
                    let f =
                        if tmn = tm[otm] && tsn = ts[ots] then
                            common
                        else
                            flow tmn tsn dt

                    let v0, i0 = vp[n], ip[n]

                    if not pop.Spiking then
                        let r = pop.OutIndex

                        let se =
                            if vln - v0 + i0 > 0.0 then
                                extremum v0 i0 tmn tsn vln
                            else
                                infinity

                        if se < dt then
                            let vm = vAfter vln v0 i0 (flow tmn tsn se)

                            if vm > log.MaxV[r][n] then
                                log.MaxV[r][n] <- vm
                                log.MaxT[r][n] <- ta + se
                                log.MaxKind[r][n] <- 1
                                log.MaxSeg[r][n] <- seg

                    vp[n] <- vAfter vln v0 i0 f
                    ip[n] <- i0 * f.Es

                    if not pop.Spiking && vp[n] > log.MaxV[pop.OutIndex][n] then
                        let r = pop.OutIndex
                        log.MaxV[r][n] <- vp[n]
                        log.MaxT[r][n] <- t
                        log.MaxKind[r][n] <- 2
                        log.MaxSeg[r][n] <- seg

            tPop[p] <- t

    /// Recomputes neuron n's next crossing from its state at the population's time. Only the
    /// interval up to the next known event (`horizon`) is searched when the neuron is free: a
    /// neuron not touched by then is checked again at that time (a recheck); `fl` is the flow over
    /// that interval for the population's first neuron's time constants (shared when equal).
    member private _.Candidate(p: int, n: int, fl: Flow, h: float) =
        let pop = pops[p]
        let t = tPop[p]
        let ts = sd.Data[pop.Slot][sd.Off(pop.Slot, b) + n]
        let tm = sd.Data[pop.Slot + 1][sd.Off(pop.Slot + 1, b) + n]
        let vl = sd.Data[pop.Slot + 2][sd.Off(pop.Slot + 2, b) + n]
        let vth = sd.Data[pop.Slot + 3][sd.Off(pop.Slot + 3, b) + n]
        let tr = refUntil[p][n]
        ver[p][n] <- ver[p][n] + 1
        let v0 = v[p][n]

        let c =
            if tr > t then
                tr
                + firstCrossing v0 (i[p][n] * exp (-(tr - t) / ts)) tm ts vl vth (l.TEnd - tr)
            else
                let i0 = i[p][n]

                if v0 < vth && vl + max i0 0.0 < vth then
                    infinity // V(t) < max(V0, v_leak + max(I0, 0)) for all later t: never without input
                elif h <= 0.0 || h >= l.TEnd - t then
                    t + firstCrossing v0 i0 tm ts vl vth (l.TEnd - t)
                else
                    let fl =
                        if
                            tm = sd.Data[pop.Slot + 1][sd.Off(pop.Slot + 1, b)]
                            && ts = sd.Data[pop.Slot][sd.Off(pop.Slot, b)]
                        then
                            fl
                        else
                            flow tm ts h

                    let vh = vAfter vl v0 i0 fl
                    let h0 = vl - v0 + i0
                    let hh = vl - vh + i0 * fl.Es

                    // A crossing in (0, h] needs V(h) >= v_th, or a maximum inside (rising, then falling),
                    // or V at or above threshold and rising now.
                    if vh >= vth || (h0 > 0.0 && hh < 0.0) || (v0 >= vth && h0 > 0.0) then
                        let s = firstCrossing v0 i0 tm ts vl vth h

                        if Double.IsFinite s then
                            t + s
                        else
                            if not (recheckFlag[p][n]) then
                                recheckFlag[p][n] <- true
                                recheckList[p].Add n

                            recheckTime[p] <- min (recheckTime[p]) (t + h)
                            infinity
                    else
                        if not (recheckFlag[p][n]) then
                            recheckFlag[p][n] <- true
                            recheckList[p].Add n

                        recheckTime[p] <- min (recheckTime[p]) (t + h)
                        infinity

        cand[p][n] <- c

        if c <= l.TEnd then
            hPush c p n (ver[p][n])

    /// Applies the arrival of emitted event e through projection j at time t (all targets, or one).
    member private s.Arrive(j: int, e: int, target: int, t: float) =
        let pj = l.Projs[j]
        let p = pj.Tgt
        s.Advance(p, t, log.NOps)
        log.AddOp((if target < 0 then ArriveAll else ArriveOne), p, t, j, e, target)
        let m = log.EmNeuron[e]
        let w, o = sd.Data[pj.WSlot], sd.Off(pj.WSlot, b) + m * pj.TgtN
        let ip = i[p]

        if target < 0 then
            for n in 0 .. pj.TgtN - 1 do
                ip[n] <- ip[n] + w[o + n]

            touchedAll[p] <- true
        else
            ip[target] <- ip[target] + w[o + target]

            if not (touchedFlag[p][target]) then
                touchedFlag[p][target] <- true
                touched[p].Add target

    /// Sends emitted event e (of emitter em, at time t) along the emitter's projections.
    member private s.Send(em: int, e: int, t: float, now: bool) =
        for j in l.Outgoing[em] do
            let pj = l.Projs[j]

            match pj.DKind with
            | 0 ->
                if now then
                    s.Arrive(j, e, -1, t)
                else
                    pending.Add(struct (j, e))
            | 1
            | 2 ->
                let d =
                    sd.Data[pj.DSlot][sd.Off(pj.DSlot, b) + (if pj.DKind = 1 then 0 else log.EmNeuron[e])]

                aPush (t + d) j e -1
            | _ ->
                let a, o = sd.Data[pj.DSlot], sd.Off(pj.DSlot, b) + log.EmNeuron[e] * pj.TgtN

                for n in 0 .. pj.TgtN - 1 do
                    aPush (t + a[o + n]) j e n

    member private s.Recompute(horizon: float) =
        for p in 0 .. np - 1 do
            if pops[p].Spiking && not (l.IsForced p) && (touchedAll[p] || touched[p].Count > 0) then
                let pop = pops[p]
                let h = horizon - tPop[p]

                let fl =
                    flow (sd.Data[pop.Slot + 1][sd.Off(pop.Slot + 1, b)]) (sd.Data[pop.Slot][sd.Off(pop.Slot, b)]) (max h 0.0)

                if touchedAll[p] then
                    for n in 0 .. pops[p].N - 1 do
                        s.Candidate(p, n, fl, h)
                else
                    for n in touched[p] do
                        s.Candidate(p, n, fl, h)

            touchedAll[p] <- false

            for n in touched[p] do
                touchedFlag[p][n] <- false

            touched[p].Clear()

    /// Simulates sample `sample` (parameters `data`, inputs `inp`): fills the log and, when `out`
    /// is given, the sample's outputs.
    member s.Run(data: SlotData, sample: int, inp: Inputs, out: Outputs voption) =
        sd <- data
        b <- sample
        log.Clear()
        cands.Clear()
        arrivals.Clear()
        seq <- 0L
        pending.Clear()

        for p in 0 .. np - 1 do
            Array.Fill(v[p], 0.0)
            Array.Fill(i[p], 0.0)
            Array.Fill(refUntil[p], -infinity)
            Array.Fill(cand[p], infinity)
            Array.Fill(recheckFlag[p], false)
            recheckList[p].Clear()
            recheckTime[p] <- infinity
            tPop[p] <- 0.0

        let spikeCount = Array.zeroCreate<int> l.Spiking.Length
        let overflow = Array.zeroCreate<int> l.Spiking.Length
        let ns = l.Sources.Length
        let ptr = Array.zeroCreate<int> ns

        checkInputs l inp b

        // The next input or delayed arrival: how far a free neuron's search needs to look.
        let nextKnown () =
            let mutable h = if arrivals.Count > 0 then arrivals.TopTime else infinity

            for k in 0 .. ns - 1 do
                if ptr[k] < inp.Counts[k][b] then
                    h <- min h (inp.Times[k][b * inp.Cap[k] + ptr[k]])

            h

        for p in 0 .. np - 1 do
            touchedAll[p] <- pops[p].Spiking && not (l.IsForced p)

            // Given spikes are candidates from the start: the log records them where they fall.
            let f = l.ForcedOf[p]

            if f >= 0 then
                let cap = inp.ForcedCap[f]

                for q in 0 .. inp.ForcedCounts[f][b] - 1 do
                    let t = inp.ForcedTimes[f][b * cap + q]

                    if t <= l.TEnd then
                        hPush t p (inp.ForcedNeurons[f][b * cap + q]) forcedItem

        s.Recompute(nextKnown ())

        let mutable fin = false
        let mutable total = 0L

        while not fin do
            let mutable t = hTop ()

            if arrivals.Count > 0 && arrivals.TopTime < t then
                t <- arrivals.TopTime

            for k in 0 .. ns - 1 do
                if ptr[k] < inp.Counts[k][b] then
                    let tk = inp.Times[k][b * inp.Cap[k] + ptr[k]]

                    if tk < t then
                        t <- tk

            for p in 0 .. np - 1 do
                if recheckTime[p] < t then
                    t <- recheckTime[p]

            if not (t <= l.TEnd) then
                fin <- true
            else
                let mutable atInstant = 0
                let mutable go = true

                while go do
                    // Arrivals at t: inputs, delayed arrivals, zero-delay arrivals of spikes at t.
                    for k in 0 .. ns - 1 do
                        let cap = inp.Cap[k]

                        while ptr[k] < inp.Counts[k][b] && inp.Times[k][b * cap + ptr[k]] <= t do
                            let q = ptr[k]
                            let e = log.AddEm(l.Sources[k].Emitter, inp.Neurons[k][b * cap + q], t, q)
                            s.Send(l.Sources[k].Emitter, e, t, true)
                            ptr[k] <- q + 1

                    while arrivals.Count > 0 && arrivals.TopTime <= t do
                        let struct (j, e, g) = arrivals.TopItem
                        arrivals.Pop()
                        s.Arrive(j, e, g, t)

                    for struct (j, e) in pending do
                        s.Arrive(j, e, -1, t)

                    pending.Clear()

                    // Neurons whose searched interval ends now are searched again.
                    for p in 0 .. np - 1 do
                        if recheckTime[p] <= t then
                            s.Advance(p, t, log.NOps)

                            for n in recheckList[p] do
                                recheckFlag[p][n] <- false

                                if not (touchedFlag[p][n]) then
                                    touchedFlag[p][n] <- true
                                    touched[p].Add n

                            recheckList[p].Clear()
                            recheckTime[p] <- infinity

                    s.Recompute(nextKnown ())

                    // Crossings at t, in (population, neuron) order.
                    let mutable spikes = 0

                    while hTop () <= t do
                        let p, n = candPop cands.TopTie
                        cands.Pop()
                        ver[p][n] <- ver[p][n] + 1
                        cand[p][n] <- infinity
                        let pop = pops[p]
                        s.Advance(p, t, log.NOps)
                        let r = pop.OutIndex
                        let slot = if spikeCount[r] < l.Capacity then spikeCount[r] else -1
                        let e = log.AddEm(pop.Emitter, n, t, slot)
                        log.AddOp(Spike, p, t, n, e, -1)

                        if slot >= 0 then
                            spikeCount[r] <- spikeCount[r] + 1

                            match out with
                            | ValueSome o ->
                                o.Times[r][b * l.Capacity + slot] <- t
                                o.Neurons[r][b * l.Capacity + slot] <- n
                            | ValueNone -> ()
                        else
                            overflow[r] <- overflow[r] + 1

                            if l.FailOnOverflow then
                                invalidOp
                                    $"Events.run: population '%s{pop.Name}' overflowed its capacity of %d{l.Capacity} spikes in sample %d{b} (at t = %g{t} s); raise Capacity or use OnOverflow = Report"

                        v[p][n] <- sd.Data[pop.Slot + 4][sd.Off(pop.Slot + 4, b) + n]
                        refUntil[p][n] <- t + pop.TRef
                        s.Send(pop.Emitter, e, t, false)

                        if not (touchedFlag[p][n]) then
                            touchedFlag[p][n] <- true
                            touched[p].Add n

                        spikes <- spikes + 1
                        atInstant <- atInstant + 1
                        total <- total + 1L

                        if atInstant > l.MaxPerInstant then
                            invalidOp
                                $"Events.run: more than %d{l.MaxPerInstant} spikes at the instant t = %g{t} s in sample %d{b}, the last of neuron %d{n} of '%s{pop.Name}' (a runaway cascade; see MaxEventsPerInstant)"

                        if total > 100_000_000L then
                            invalidOp
                                $"Events.run: more than 1e8 spikes in sample %d{b} (neuron %d{n} of '%s{pop.Name}' at t = %g{t} s): the network fires without bound"

                    s.Recompute(nextKnown ())

                    go <-
                        spikes > 0
                        && (pending.Count > 0
                            || (arrivals.Count > 0 && arrivals.TopTime <= t)
                            || hTop () <= t)

        for p in 0 .. np - 1 do
            s.Advance(p, l.TEnd, -2)

        match out with
        | ValueSome o ->
            for r in 0 .. l.Spiking.Length - 1 do
                let c = l.Capacity

                for k in spikeCount[r] .. c - 1 do
                    o.Times[r][b * c + k] <- infinity
                    o.Neurons[r][b * c + k] <- -1

                o.Count[r][b] <- spikeCount[r]
                o.Overflow[r][b] <- overflow[r]

            for r in 0 .. l.Readouts.Length - 1 do
                let n = l.Readouts[r].N
                Array.blit log.MaxV[r] 0 o.VMax[r] (b * n) n
                Array.blit log.MaxT[r] 0 o.TMax[r] (b * n) n
        | ValueNone -> ()
