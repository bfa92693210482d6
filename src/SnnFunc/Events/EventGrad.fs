/// Derivatives of the event-driven simulation along a fixed trajectory (an EventSim.Log): the
/// tangent-linear replay (forward mode), its exact transpose (the discrete adjoint, "Solver"), and
/// the EventProp adjoint (Wunderlich & Pehle, reverse-time λ flows with jumps at events).
///
/// Tangents are fixed-time sensitivities of the state (δV, δI at a given time t); an event at time
/// t_e with tangent δt_e changes them by the saltation (ẋ⁻ − ẋ⁺)·δt_e:
/// - arrival of weight w: δI += δw + (w/τs)·δt_e, δV −= (w/τm)·δt_e (not while refractory);
/// - own spike (implicit-function rule): δt* = (δv_th − δV)/V̇⁻, V̇⁻ = (I − v_th + v_leak)/τm, then
///   δV = δv_reset − V̇⁺·δt*, V̇⁺ = (v_leak − v_reset + I)/τm (0 with a refractory period);
/// - end of the refractory period t* + t_ref: δV −= ((v_leak − v_reset + I)/τm)·δt*;
/// - the closed-form flow over s: δV ← e^{−s/τm}δV + K δI + (1 − e^{−s/τm})δv_leak + ∂V/∂τm δτm
///   + ∂V/∂τs δτs, δI ← e^{−s/τs}δI + ∂I/∂τs δτs.
/// An LI maximum has the tangent δV at its time (interior maximum: envelope theorem) or
/// δV⁻ + V̇⁻δt_e at an arrival (a kink).
///
/// The Solver adjoint transposes these steps one by one. EventProp runs the adjoint equations of
/// reference §2 instead: λV = −(1/τm)∂L/∂V, λI = −(1/τs)∂L/∂I with their own closed-form flows,
/// the jumps (a) and (b), and the parameter gradients as closed-form integrals per interval
/// (dL/dτm = ∫λV V̇, dL/dτs = −(1/τs)∫λI I, dL/dv_leak = −∫λV). Both read the primal state at the
/// start of each population update from a tape the replay records.
[<RequireQualifiedAccess>]
module SnnFunc.EventGrad

open System
open SnnFunc.EventSim

/// The tangent coefficients of a free flow over s from (v0, i0): ∂V/∂τm, ∂V/∂τs, ∂I/∂τs.
let inline private coefs (f: Flow) (s: float) (tm: float) (ts: float) (vl: float) (v0: float) (i0: float) =
    let e0 = mulE f.Em f.Es f.Y
    let e1 = mulE1 f.Em f.Es f.Y
    let dKdtm = s / (tm * tm) * ((s / tm - 1.0) * e0 - s / tm * e1)
    let dKdts = s * s / (tm * ts * ts) * e1
    struct ((v0 - vl) * f.Em * s / (tm * tm) + i0 * dKdtm, i0 * dKdts, i0 * f.Es * s / (ts * ts))

/// Replays logs for derivatives; one per thread.
type Replayer(l: Layout) =
    let pops = l.Pops
    let np = pops.Length
    let v = pops |> Array.map (fun p -> Array.zeroCreate<float> p.N)
    let i = pops |> Array.map (fun p -> Array.zeroCreate<float> p.N)
    let dv = pops |> Array.map (fun p -> Array.zeroCreate<float> p.N)
    let di = pops |> Array.map (fun p -> Array.zeroCreate<float> p.N)
    let refUntil = pops |> Array.map (fun p -> Array.zeroCreate<float> p.N)
    let lastSpike = pops |> Array.map (fun p -> Array.zeroCreate<int> p.N)
    let tPop = Array.zeroCreate<float> np
    let mutable dT = Array.zeroCreate<float> 64
    // The tape: per op (and per final advance) the pre-advance state of its population.
    let mutable tape = Array.zeroCreate<float> 1024
    let mutable tapeN = 0
    let mutable opTape = Array.zeroCreate<int> 64
    let mutable opTa = Array.zeroCreate<float> 64
    let mutable spikeI = Array.zeroCreate<float> 64
    let mutable spikePrevRef = Array.zeroCreate<float> 64
    let mutable spikePrevLast = Array.zeroCreate<int> 64
    let finalTape = Array.zeroCreate<int> np
    let finalTa = Array.zeroCreate<float> np
    let mutable sd = Unchecked.defaultof<SlotData>
    let mutable b = 0

    let par (slot: int) (n: int) = sd.Data[slot][sd.Off(slot, b) + n]

    let reset () =
        for p in 0 .. np - 1 do
            Array.Fill(v[p], 0.0)
            Array.Fill(i[p], 0.0)
            Array.Fill(dv[p], 0.0)
            Array.Fill(di[p], 0.0)
            Array.Fill(refUntil[p], -infinity)
            Array.Fill(lastSpike[p], -1)
            tPop[p] <- 0.0

    /// Saves population p's state (before an advance) on the tape; its offset, or −1 when the
    /// advance to t does nothing.
    let save (p: int) (t: float) =
        if t > tPop[p] then
            let n = pops[p].N

            if tapeN + 2 * n > tape.Length then
                tape <- grow tape (max (2 * tape.Length) (tapeN + 2 * n))

            Array.Copy(v[p], 0, tape, tapeN, n)
            Array.Copy(i[p], 0, tape, tapeN + n, n)
            let at = tapeN
            tapeN <- tapeN + 2 * n
            at
        else
            -1

    /// The primal advance of population p to t, as EventSim.Simulator.Advance computes it, with
    /// the tangents when `tan` is given; `maxTan` receives the readouts' interior-maximum tangents.
    member private _.Advance(p: int, t: float, seg: int, log: Log, tan: SlotData voption, maxTan: float[][]) =
        let ta = tPop[p]

        if t > ta then
            let pop = pops[p]
            let dt = t - ta
            let vp, ip, dvp, dip = v[p], i[p], dv[p], di[p]

            let tg (slot: int) (n: int) =
                match tan with
                | ValueSome d when not (isNull d.Data[slot]) -> d.Data[slot][d.Off(slot, b) + n]
                | _ -> 0.0

            // The flow over the whole step for the first neuron's time constants, shared by the
            // neurons with the same ones.
            let ts0, tm0 = par pop.Slot 0, par (pop.Slot + 1) 0
            let common = flow tm0 ts0 dt

            for n in 0 .. pop.N - 1 do
                let ts, tm, vl = par pop.Slot n, par (pop.Slot + 1) n, par (pop.Slot + 2) n
                let dts, dtm, dvl = tg pop.Slot n, tg (pop.Slot + 1) n, tg (pop.Slot + 2) n

                let free (s: float) =
                    let f =
                        if s = dt && tm = tm0 && ts = ts0 then
                            common
                        else
                            flow tm ts s

                    let v0, i0 = vp[n], ip[n]

                    if tan.IsSome then
                        let struct (cvm, cvs, cis) = coefs f s tm ts vl v0 i0

                        dvp[n] <- f.Em * dvp[n] + f.K * dip[n] - expm1 (-s / tm) * dvl + cvm * dtm + cvs * dts

                        dip[n] <- f.Es * dip[n] + cis * dts

                    vp[n] <- vAfter vl v0 i0 f
                    ip[n] <- i0 * f.Es

                let held (s: float) =
                    let es = exp (-s / ts)

                    if tan.IsSome then
                        dip[n] <- es * dip[n] + ip[n] * es * s / (ts * ts) * dts

                    ip[n] <- ip[n] * es

                if pop.Spiking && refUntil[p][n] > ta then
                    let tr = refUntil[p][n]

                    if tr >= t then
                        held dt
                    else
                        held (tr - ta)

                        if tan.IsSome then
                            let vr = par (pop.Slot + 4) n
                            dvp[n] <- dvp[n] - (vl - vr + ip[n]) / tm * dT[lastSpike[p][n]]

                        free (t - tr)
                else
                    if not pop.Spiking && tan.IsSome then
                        let r = pop.OutIndex

                        if log.MaxSeg[r][n] = seg && log.MaxKind[r][n] = 1 then
                            let s = log.MaxT[r][n] - ta
                            let f = flow tm ts s
                            let struct (cvm, cvs, _) = coefs f s tm ts vl vp[n] ip[n]

                            maxTan[r][n] <- f.Em * dvp[n] + f.K * dip[n] - expm1 (-s / tm) * dvl + cvm * dtm + cvs * dts

                    free dt

            tPop[p] <- t

    /// Replays the log of sample `sample`: the primal state along it, and with `tan` the tangents;
    /// with `record` the tape for an adjoint. Tangent outputs go to `outT` (spike times by output
    /// slot) and `outV` (readout maxima).
    member r.Forward
        (data: SlotData, sample: int, inp: Inputs, log: Log, tan: SlotData voption, record: bool, outT: float[][], outV: float[][])
        =
        sd <- data
        b <- sample
        reset ()
        tapeN <- 0

        if dT.Length < log.NEm then
            dT <- Array.zeroCreate (max log.NEm (2 * dT.Length))

        if record && opTape.Length < log.NOps then
            let n = max log.NOps (2 * opTape.Length)
            opTape <- Array.zeroCreate n
            opTa <- Array.zeroCreate n
            spikeI <- Array.zeroCreate n
            spikePrevRef <- Array.zeroCreate n
            spikePrevLast <- Array.zeroCreate n

        let maxTan = l.Readouts |> Array.map (fun p -> Array.zeroCreate<float> p.N)

        let tg (slot: int) (k: int) =
            match tan with
            | ValueSome d when not (isNull d.Data[slot]) -> d.Data[slot][d.Off(slot, b) + k]
            | _ -> 0.0

        for e in 0 .. log.NEm - 1 do
            let em = log.EmEmitter[e]

            dT[e] <-
                if l.EmitterPop[em] < 0 && tan.IsSome then
                    let d = tan.Value.Data[em]
                    if isNull d then 0.0 else d[b * inp.Cap[em] + log.EmSlot[e]]
                else
                    0.0

        for k in 0 .. log.NOps - 1 do
            let p = log.Pop[k]
            let t = log.Time[k]
            let pop = pops[p]

            if record then
                opTape[k] <- save p t
                opTa[k] <- tPop[p]

            r.Advance(p, t, k, log, tan, maxTan)
            let ip, vp, dvp, dip = i[p], v[p], dv[p], di[p]

            match log.Kind[k] with
            | Spike ->
                let n, e = log.A[k], log.E[k]
                let vl, vth, vr = par (pop.Slot + 2) n, par (pop.Slot + 3) n, par (pop.Slot + 4) n

                if record then
                    spikeI[k] <- ip[n]
                    spikePrevRef[k] <- refUntil[p][n]
                    spikePrevLast[k] <- lastSpike[p][n]

                if tan.IsSome then
                    let tm = par (pop.Slot + 1) n
                    let vdm = (ip[n] - vth + vl) / tm
                    let dts = (tg (pop.Slot + 3) n - dvp[n]) / vdm
                    dT[e] <- dts

                    if log.EmSlot[e] >= 0 && not (isNull outT[pop.OutIndex]) then
                        outT[pop.OutIndex][b * l.Capacity + log.EmSlot[e]] <- dts

                    let vdp = if pop.TRef > 0.0 then 0.0 else (vl - vr + ip[n]) / tm
                    dvp[n] <- tg (pop.Slot + 4) n - vdp * dts

                vp[n] <- vr
                refUntil[p][n] <- t + pop.TRef
                lastSpike[p][n] <- e
            | kind ->
                let j, e = log.A[k], log.E[k]
                let pj = l.Projs[j]
                let m = log.EmNeuron[e]
                let wo = sd.Off(pj.WSlot, b) + m * pj.TgtN
                let w = sd.Data[pj.WSlot]

                let lo, hi =
                    (if kind = ArriveAll then
                         0, pj.TgtN - 1
                     else
                         log.Target[k], log.Target[k])

                for n in lo..hi do
                    let wn = w[wo + n]

                    if tan.IsSome then
                        let dte =
                            dT[e]
                            + (match pj.DKind with
                               | 0 -> 0.0
                               | 1 -> tg pj.DSlot 0
                               | 2 -> tg pj.DSlot m
                               | _ -> tg pj.DSlot (m * pj.TgtN + n))

                        let ts, tm = par pop.Slot n, par (pop.Slot + 1) n

                        if not pop.Spiking then
                            let r = pop.OutIndex

                            if log.MaxSeg[r][n] = k && log.MaxKind[r][n] = 2 then
                                let vl = par (pop.Slot + 2) n
                                maxTan[r][n] <- dvp[n] + (vl - vp[n] + ip[n]) / tm * dte

                        dip[n] <- dip[n] + tg pj.WSlot (m * pj.TgtN + n) + wn / ts * dte

                        if not (pop.Spiking && refUntil[p][n] > t) then
                            dvp[n] <- dvp[n] - wn / tm * dte

                    ip[n] <- ip[n] + wn

        for p in 0 .. np - 1 do
            if record then
                finalTape[p] <- save p l.TEnd
                finalTa[p] <- tPop[p]

            r.Advance(p, l.TEnd, -2, log, tan, maxTan)

        if tan.IsSome then
            for ro in l.Readouts do
                let r = ro.OutIndex

                for n in 0 .. ro.N - 1 do
                    if log.MaxKind[r][n] = 2 && log.MaxSeg[r][n] = -2 then
                        maxTan[r][n] <- dv[ro.Index][n]
                    elif log.MaxKind[r][n] = 0 then
                        maxTan[r][n] <- 0.0

                if not (isNull outV[r]) then
                    Array.Copy(maxTan[r], 0, outV[r], b * ro.N, ro.N)

    /// The reverse pass over the tape of the last Forward (which must have run with `record`):
    /// from the cotangents of the spike times `ctT` and readout maxima `ctV` (null entries: zero),
    /// accumulates into `grad` (per slot, from offset `gOff[slot]`; null: not wanted) — with
    /// `eventProp` by the EventProp adjoint, otherwise by the transposed tangent steps.
    member r.Backward(log: Log, eventProp: bool, ctT: float[][], ctV: float[][], grad: float[][], gOff: int[]) =
        let gT = dT
        let gV, gI = dv, di // p-form (∂L/∂V, ∂L/∂I) or λ-form (λV, λI) with eventProp

        for p in 0 .. np - 1 do
            Array.Fill(gV[p], 0.0)
            Array.Fill(gI[p], 0.0)

        for e in 0 .. log.NEm - 1 do
            let em = log.EmEmitter[e]
            let p = l.EmitterPop[em]

            gT[e] <-
                if p >= 0 && log.EmSlot[e] >= 0 then
                    let c = ctT[pops[p].OutIndex]
                    if isNull c then 0.0 else c[b * l.Capacity + log.EmSlot[e]]
                else
                    0.0

        let gm (pop: PopLayout) (n: int) =
            let c = ctV[pop.OutIndex]
            if isNull c then 0.0 else c[b * pop.N + n]

        let acc (slot: int) (k: int) (x: float) =
            let g = grad[slot]

            if not (isNull g) then
                g[gOff[slot] + k] <- g[gOff[slot] + k] + x

        /// The reverse of an advance of p from ta to t, from the saved state at `at`.
        let revAdvance (p: int) (at: int) (ta: float) (t: float) (seg: int) =
            let pop = pops[p]
            let nn = pop.N
            let dt = t - ta
            let ts0, tm0 = par pop.Slot 0, par (pop.Slot + 1) 0
            let common = flow tm0 ts0 dt

            for n in 0 .. nn - 1 do
                let ts, tm, vl = par pop.Slot n, par (pop.Slot + 1) n, par (pop.Slot + 2) n

                // The reverse of a free piece of length s from (v0, i0).
                let free (s: float) (v0: float) (i0: float) =
                    let f =
                        if s = dt && tm = tm0 && ts = ts0 then
                            common
                        else
                            flow tm ts s

                    if eventProp then
                        let lv, li = gV[p][n], gI[p][n]
                        let z = -f.Y
                        acc (pop.Slot + 2) n (lv * tm * expm1 (-s / tm))

                        acc
                            (pop.Slot + 1)
                            n
                            (lv / tm
                             * (-(v0 - vl) * s * f.Em - i0 * s * s / tm * mulE1 f.Es f.Em z + i0 * tm * f.K))

                        acc pop.Slot n (-(1.0 / ts) * i0 * s * (li * f.Es + lv * s / ts * mulE2 f.Es f.Em z))
                        gV[p][n] <- f.Em * lv
                        gI[p][n] <- f.Es * li + tm / ts * f.K * lv
                    else
                        let gv, gi = gV[p][n], gI[p][n]
                        let struct (cvm, cvs, cis) = coefs f s tm ts vl v0 i0
                        acc (pop.Slot + 2) n (-(expm1 (-s / tm)) * gv)
                        acc (pop.Slot + 1) n (cvm * gv)
                        acc pop.Slot n (cvs * gv + cis * gi)
                        gV[p][n] <- f.Em * gv
                        gI[p][n] <- f.K * gv + f.Es * gi

                // The reverse of a held (refractory) piece of length s from current i0.
                let held (s: float) (i0: float) =
                    let es = exp (-s / ts)
                    let g = gI[p][n]

                    if eventProp then
                        acc pop.Slot n (-(1.0 / ts) * g * i0 * s * es)
                    else
                        acc pop.Slot n (i0 * es * s / (ts * ts) * g)

                    gI[p][n] <- es * g

                let v0, i0 = tape[at + n], tape[at + nn + n]

                if pop.Spiking && refUntil[p][n] > ta then
                    let tr = refUntil[p][n]

                    if tr >= t then
                        held (t - ta) i0
                    else
                        let i1 = i0 * exp (-(tr - ta) / ts)
                        free (t - tr) v0 i1
                        let vr = par (pop.Slot + 4) n
                        let c = vl - vr + i1

                        gT[lastSpike[p][n]] <- gT[lastSpike[p][n]] + (if eventProp then gV[p][n] * c else -(c / tm) * gV[p][n])

                        held (tr - ta) i0
                elif
                    not pop.Spiking
                    && log.MaxSeg[pop.OutIndex][n] = seg
                    && log.MaxKind[pop.OutIndex][n] = 1
                then
                    let g = gm pop n
                    let se = log.MaxT[pop.OutIndex][n] - ta

                    if eventProp then
                        let fe = flow tm ts se
                        let ve, ie = vAfter vl v0 i0 fe, i0 * fe.Es
                        free (t - ta - se) ve ie
                        gV[p][n] <- gV[p][n] - g / tm
                        free se v0 i0
                    else
                        free (t - ta) v0 i0
                        let fe = flow tm ts se
                        let struct (cvm, cvs, _) = coefs fe se tm ts vl v0 i0
                        acc (pop.Slot + 2) n (-(expm1 (-se / tm)) * g)
                        acc (pop.Slot + 1) n (cvm * g)
                        acc pop.Slot n (cvs * g)
                        gV[p][n] <- gV[p][n] + fe.Em * g
                        gI[p][n] <- gI[p][n] + fe.K * g
                else
                    free (t - ta) v0 i0

        // The readouts' maxima at TEnd, then the final advances.
        for p in 0 .. np - 1 do
            let pop = pops[p]

            if not pop.Spiking then
                for n in 0 .. pop.N - 1 do
                    if log.MaxKind[pop.OutIndex][n] = 2 && log.MaxSeg[pop.OutIndex][n] = -2 then
                        let tm = par (pop.Slot + 1) n

                        gV[p][n] <- gV[p][n] + (if eventProp then -(gm pop n) / tm else gm pop n)

            if finalTape[p] >= 0 then
                revAdvance p (finalTape[p]) (finalTa[p]) l.TEnd -2

        for k in log.NOps - 1 .. -1 .. 0 do
            let p = log.Pop[k]
            let t = log.Time[k]
            let pop = pops[p]

            match log.Kind[k] with
            | Spike ->
                let n, e = log.A[k], log.E[k]
                let tm, vl = par (pop.Slot + 1) n, par (pop.Slot + 2) n
                let vth, vr = par (pop.Slot + 3) n, par (pop.Slot + 4) n
                let is = spikeI[k]
                let d = is - vth + vl

                if eventProp then
                    let lv = gV[p][n]
                    let total = gT[e] + (if pop.TRef > 0.0 then 0.0 else lv * (is - vr + vl))
                    acc (pop.Slot + 4) n (-tm * lv)
                    acc (pop.Slot + 3) n (tm * total / d)
                    gV[p][n] <- total / d
                else
                    let vdm = d / tm
                    let vdp = if pop.TRef > 0.0 then 0.0 else (vl - vr + is) / tm
                    let total = gT[e] - vdp * gV[p][n]
                    acc (pop.Slot + 4) n (gV[p][n])
                    acc (pop.Slot + 3) n (total / vdm)
                    gV[p][n] <- -total / vdm

                refUntil[p][n] <- spikePrevRef[k]
                lastSpike[p][n] <- spikePrevLast[k]
            | kind ->
                let j, e = log.A[k], log.E[k]
                let pj = l.Projs[j]
                let m = log.EmNeuron[e]
                let w = sd.Data[pj.WSlot]
                let wo = sd.Off(pj.WSlot, b) + m * pj.TgtN

                let lo, hi =
                    (if kind = ArriveAll then
                         0, pj.TgtN - 1
                     else
                         log.Target[k], log.Target[k])

                let mutable total = 0.0

                for n in lo..hi do
                    let wn = w[wo + n]
                    let ts, tm = par pop.Slot n, par (pop.Slot + 1) n
                    let refr = pop.Spiking && refUntil[p][n] > t

                    let mutable gte =
                        if eventProp then
                            acc pj.WSlot (m * pj.TgtN + n) (-ts * gI[p][n])
                            if refr then -wn * gI[p][n] else wn * (gV[p][n] - gI[p][n])
                        else
                            acc pj.WSlot (m * pj.TgtN + n) (gI[p][n])
                            wn / ts * gI[p][n] - (if refr then 0.0 else wn / tm * gV[p][n])

                    if
                        not pop.Spiking
                        && log.MaxSeg[pop.OutIndex][n] = k
                        && log.MaxKind[pop.OutIndex][n] = 2
                    then
                        // V and I just before the arrival, from the saved state.
                        let g = gm pop n
                        let vl = par (pop.Slot + 2) n
                        let at = opTape[k]
                        let f = flow tm ts (t - opTa[k])
                        let v0, i0 = tape[at + n], tape[at + pop.N + n]
                        let vb, ib = vAfter vl v0 i0 f, i0 * f.Es
                        gte <- gte + (vl - vb + ib) / tm * g
                        gV[p][n] <- gV[p][n] + (if eventProp then -g / tm else g)

                    total <- total + gte

                    match pj.DKind with
                    | 0 -> ()
                    | 1 -> acc pj.DSlot 0 gte
                    | 2 -> acc pj.DSlot m gte
                    | _ -> acc pj.DSlot (m * pj.TgtN + n) gte

                gT[e] <- gT[e] + total

            if opTape[k] >= 0 then
                revAdvance p (opTape[k]) (opTa[k]) t k

        // Input spike times.
        for e in 0 .. log.NEm - 1 do
            let em = log.EmEmitter[e]

            if l.EmitterPop[em] < 0 then
                let g = grad[em]

                if not (isNull g) then
                    let o = gOff[em] + log.EmSlot[e]
                    g[o] <- g[o] + gT[e]
