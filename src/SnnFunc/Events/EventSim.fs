/// The exact event-driven simulation of current-based LIF and LI populations, on float arrays, one
/// sample at a time: the loops the event kernels (EventKernels.fs) run.
///
/// Model, per neuron: τm dV/dt = −(V − v_leak) + I, τs dI/dt = −I; an arriving spike adds its
/// weight w to I (no 1/τs factor); V = I = 0 at t = 0. A LIF neuron spikes when V reaches v_th from
/// below; V is set to v_reset and, for a refractory time t_ref > 0, held there while I keeps decaying.
/// LI neurons never spike; their output is the exact maximum of V over [0, TEnd] (V(0) = 0 included).
///
/// Between events the state flows in closed form relative to the population's last update time
/// (never absolute-time exponentials): V(s) = v_leak + (V0 − v_leak) e^{−s/τm} + I0 K(s), with
/// K(s) = (s/τm) e^{−s/τm} exprel(s (1/τm − 1/τs)), smooth through τm = τs.
///
/// Next crossing: V has at most one extremum per inter-event interval (τm V̇ e^{s/τm} is monotone
/// in s), found in closed form; the crossing is bracketed by it and solved to full precision by
/// Newton's method with a bisection safeguard, for any τm/τs ratio.
///
/// Policies:
/// - Grazing: a maximum that exceeds v_th by at most 1e-12·(|v_th| + |v_leak|) is no spike.
/// - f(0) ≥ 0 (V at or above threshold at the start of an interval): a spike at that instant when
///   V̇ > 0, otherwise none (V is falling; a later upward crossing still counts).
/// - Ties, at one instant t: first every arrival at t (input spikes in source order and buffer
///   order, then delayed arrivals in the order they were sent, then zero-delay arrivals of spikes
///   at t), all applied before any threshold check; then the crossings at t, in population order
///   and neuron index; their zero-delay arrivals start the next round at the same instant.
///   More than MaxEventsPerInstant spikes at one instant is an error naming the neuron.
module SnnFunc.EventSim

open System

// ---------------------------------------------------------------------------------------------
// Numerics

/// log(1 + x), accurate for small x.
let log1p (x: float) =
    let u = 1.0 + x
    if u = 1.0 then x else log u * x / (u - 1.0)

/// e^x − 1, accurate for small x.
let expm1 (x: float) =
    let u = exp x

    if u = 1.0 then x
    elif u - 1.0 = -1.0 then -1.0
    else (u - 1.0) * x / log u

let private fact =
    let f = Array.create 30 1.0

    for k in 1..29 do
        f[k] <- f[k - 1] * float k

    f

/// Taylor coefficients (18 terms: enough for |x| <= 0.5 to rounding) of E, E' and E2.
let private cE = Array.init 18 (fun n -> 1.0 / fact[n + 1])
let private cE1 = Array.init 18 (fun n -> float (n + 1) / fact[n + 2])
let private cE2 = Array.init 18 (fun n -> 1.0 / fact[n + 2])

/// The series to rounding: fewer terms for smaller |x| (|x|^n/(n+1)! below 1e-17 relative).
let inline private horner (c: float[]) (x: float) =
    let a = abs x

    let terms =
        if a <= 0.02 then 8
        elif a <= 0.1 then 11
        else 18

    let mutable s = 0.0

    for n in terms - 1 .. -1 .. 0 do
        s <- s * x + c[n]

    s

/// b0·E(x) with E(x) = (e^x − 1)/x (exprel), given b1 = b0·e^x (so that no e^x overflows).
let mulE (b0: float) (b1: float) (x: float) =
    if abs x <= 0.5 then b0 * horner cE x else (b1 - b0) / x

/// b0·E'(x), E'(x) = (e^x (x − 1) + 1)/x², given b1 = b0·e^x.
let mulE1 (b0: float) (b1: float) (x: float) =
    if abs x <= 0.5 then
        b0 * horner cE1 x
    else
        (b1 * (x - 1.0) + b0) / (x * x)

/// b0·E2(x), E2(x) = (e^x − 1 − x)/x², given b1 = b0·e^x.
let mulE2 (b0: float) (b1: float) (x: float) =
    if abs x <= 0.5 then
        b0 * horner cE2 x
    else
        (b1 - b0 - x * b0) / (x * x)

/// The flow over s of a neuron with time constants τm, τs: e^{−s/τm}, e^{−s/τs} and the PSP
/// kernel K(s) = τs/(τm − τs)(e^{−s/τm} − e^{−s/τs}) in its cancellation-free form.
[<Struct>]
type Flow =
    {
        Em: float
        Es: float
        K: float
        /// s (1/τm − 1/τs): the exprel argument.
        Y: float
    }

let flow (tm: float) (ts: float) (s: float) =
    let em = exp (-s / tm)
    let es = exp (-s / ts)
    let y = s * (1.0 / tm - 1.0 / ts)

    {
        Em = em
        Es = es
        K = s / tm * mulE em es y
        Y = y
    }

/// V after s from (v0, i0) with the flow's factors.
let inline vAfter (vl: float) (v0: float) (i0: float) (f: Flow) = vl + (v0 - vl) * f.Em + i0 * f.K

/// The grazing tolerance of a threshold: maxima closer than this above it are no spike.
let grazeTol (vth: float) (vl: float) = 1e-12 * (abs vth + abs vl + 1e-300)

/// The time s_e > 0 of the free trajectory's only extremum from (v0, i0), or +inf when it has none.
let extremum (v0: float) (i0: float) (tm: float) (ts: float) (vl: float) =
    if i0 = 0.0 then
        infinity
    else
        let r = tm / ts
        let q = (v0 - vl - i0) / (i0 * r)
        let x = (r - 1.0) * q

        if x <= -1.0 then
            infinity
        else
            let l = if x = 0.0 then 1.0 else log1p x / x
            let s = -tm * q * l
            if s > 0.0 then s else infinity

/// The first upward threshold crossing s ∈ [0, h] of the free trajectory from (v0, i0), or +inf
/// (see the module's policies).
let firstCrossing (v0: float) (i0: float) (tm: float) (ts: float) (vl: float) (vth: float) (h: float) =
    if not (h >= 0.0) then
        infinity
    elif v0 < vth && vl + max i0 0.0 < vth then
        infinity // V(t) < max(V0, v_leak + max(I0, 0)) for all t > 0
    else
        let f (s: float) =
            let fl = flow tm ts s
            vAfter vl v0 i0 fl - vth

        let h0 = vl - v0 + i0 // τm V̇(0)

        if v0 >= vth && h0 > 0.0 then
            0.0
        else
            let se = extremum v0 i0 tm ts vl

            let bracket =
                if h0 > 0.0 then
                    if se < h then
                        if f se > grazeTol vth vl then
                            ValueSome(0.0, se)
                        else
                            ValueNone
                    elif f h >= 0.0 then
                        ValueSome(0.0, h)
                    else
                        ValueNone
                elif se < h && f se < 0.0 && f h >= 0.0 then
                    ValueSome(se, h)
                else
                    ValueNone

            match bracket with
            | ValueNone -> infinity
            | ValueSome(lo0, hi0) ->
                // Newton's method on the increasing branch, bisection when a step leaves the bracket.
                let mutable lo = lo0
                let mutable hi = hi0
                let mutable s = 0.5 * (lo + hi)
                let mutable result = nan
                let mutable it = 0

                while Double.IsNaN result do
                    let fl = flow tm ts s
                    let v = vAfter vl v0 i0 fl
                    let fs = v - vth

                    if fs = 0.0 then
                        result <- s
                    else
                        if fs < 0.0 then lo <- s else hi <- s
                        let dv = (vl - v + i0 * fl.Es) / tm
                        let mutable next = if dv > 0.0 then s - fs / dv else nan

                        if not (next > lo && next < hi) then
                            next <- 0.5 * (lo + hi)

                        it <- it + 1

                        if abs (next - s) <= 2e-16 * abs next || hi - lo <= 2e-16 * hi || it > 200 then
                            result <- (if it > 200 then hi else next)
                        else
                            s <- next

                result

// ---------------------------------------------------------------------------------------------
// The compiled network

/// A source: external events of N neurons, emitter `Emitter`, times in argument slot `Slot`.
type SourceLayout =
    {
        Name: string
        N: int
        Emitter: int
        Slot: int
    }

/// A population: N neurons, its parameters from slot `Slot` on (tauSyn, tauMem, vLeak, and for
/// LIF vTh, vReset), each [N] per sample; spiking ones are emitter `Emitter` (−1 for LI).
type PopLayout =
    {
        Name: string
        /// The population's index in Layout.Pops.
        Index: int
        N: int
        Spiking: bool
        TRef: float
        Slot: int
        Emitter: int
        /// The index among the spiking (or LI) populations: the output order.
        OutIndex: int
    }

/// A projection from emitter Src (SrcN neurons) to population Tgt (TgtN), weight [SrcN; TgtN] in
/// WSlot, delay kind 0 none, 1 one per projection, 2 per input [SrcN], 3 per synapse [SrcN; TgtN].
type ProjLayout =
    {
        Name: string
        Src: int
        SrcN: int
        Tgt: int
        TgtN: int
        WSlot: int
        DKind: int
        DSlot: int
    }

type Layout =
    {
        Sources: SourceLayout[]
        Pops: PopLayout[]
        Projs: ProjLayout[]
        /// The projections leaving each emitter (sources first, then the spiking populations).
        Outgoing: int[][]
        /// The population of each emitter (−1 for sources).
        EmitterPop: int[]
        /// Elements per sample of each argument slot (float slots; int slots hold source neurons/counts).
        SlotSize: int[]
        NSlots: int
        TEnd: float
        Capacity: int
        MaxPerInstant: int
        FailOnOverflow: bool
        /// Reverse mode by EventProp (else by the transposed solver steps).
        UseEventProp: bool
    }

    member l.NSources = l.Sources.Length
    /// Argument slot of source s's neuron indices and counts (Int32).
    member l.NeuronSlot(s: int) = l.Sources.Length + s
    member l.CountSlot(s: int) = 2 * l.Sources.Length + s
    member l.Spiking = l.Pops |> Array.filter (fun p -> p.Spiking)
    member l.Readouts = l.Pops |> Array.filter (fun p -> not p.Spiking)

/// Float data of the argument slots as float64, each either shared by all samples or per sample.
type SlotData =
    {
        Data: float[][]
        PerSample: bool[]
        Size: int[]
    }

    member d.Off(slot: int, b: int) =
        if d.PerSample[slot] then b * d.Size[slot] else 0

// ---------------------------------------------------------------------------------------------
// The event log of one sample (what a replay needs)

let internal grow (a: 'T[]) (n: int) =
    let b = Array.zeroCreate n
    Array.blit a 0 b 0 a.Length
    b

/// Op kinds of the log.
[<Literal>]
let ArriveAll = 0

[<Literal>]
let ArriveOne = 1

[<Literal>]
let Spike = 2

/// The trajectory of one sample: ops in the order applied, the emitted events (input spikes and
/// population spikes), and the readouts' maxima.
type Log(layout: Layout) =
    let mutable cap = 64
    let mutable ecap = 64
    member val NOps = 0 with get, set
    member val Kind: int[] = Array.zeroCreate 64 with get, set
    member val Pop: int[] = Array.zeroCreate 64 with get, set
    member val Time: float[] = Array.zeroCreate 64 with get, set
    /// Arrivals: the projection; spikes: the neuron.
    member val A: int[] = Array.zeroCreate 64 with get, set
    /// The emitted event (arrivals: the one arriving; spikes: the one emitted).
    member val E: int[] = Array.zeroCreate 64 with get, set
    /// ArriveOne: the target neuron.
    member val Target: int[] = Array.zeroCreate 64 with get, set
    member val NEm = 0 with get, set
    member val EmEmitter: int[] = Array.zeroCreate 64 with get, set
    member val EmNeuron: int[] = Array.zeroCreate 64 with get, set
    member val EmTime: float[] = Array.zeroCreate 64 with get, set
    /// Inputs: the buffer slot; population spikes: the output slot, −1 when it overflowed.
    member val EmSlot: int[] = Array.zeroCreate 64 with get, set
    /// Per readout (by OutIndex) and neuron: the maximum of V, its time, its kind (0: at t = 0,
    /// 1: interior extremum, 2: at the end of a segment) and segment (the op whose advance it
    /// ended, −2 for the final advance to TEnd).
    member val MaxV: float[][] = layout.Readouts |> Array.map (fun p -> Array.zeroCreate p.N)
    member val MaxT: float[][] = layout.Readouts |> Array.map (fun p -> Array.zeroCreate p.N)
    member val MaxKind: int[][] = layout.Readouts |> Array.map (fun p -> Array.zeroCreate p.N)
    member val MaxSeg: int[][] = layout.Readouts |> Array.map (fun p -> Array.zeroCreate p.N)

    member l.Clear() =
        l.NOps <- 0
        l.NEm <- 0

        for r in 0 .. l.MaxV.Length - 1 do
            Array.Fill(l.MaxV[r], 0.0)
            Array.Fill(l.MaxT[r], 0.0)
            Array.Fill(l.MaxKind[r], 0)
            Array.Fill(l.MaxSeg[r], -1)

    member l.AddOp(kind: int, pop: int, time: float, a: int, e: int, target: int) =
        if l.NOps = cap then
            cap <- 2 * cap
            l.Kind <- grow l.Kind cap
            l.Pop <- grow l.Pop cap
            l.Time <- grow l.Time cap
            l.A <- grow l.A cap
            l.E <- grow l.E cap
            l.Target <- grow l.Target cap

        let k = l.NOps
        l.Kind[k] <- kind
        l.Pop[k] <- pop
        l.Time[k] <- time
        l.A[k] <- a
        l.E[k] <- e
        l.Target[k] <- target
        l.NOps <- k + 1

    member l.AddEm(emitter: int, neuron: int, time: float, slot: int) =
        if l.NEm = ecap then
            ecap <- 2 * ecap
            l.EmEmitter <- grow l.EmEmitter ecap
            l.EmNeuron <- grow l.EmNeuron ecap
            l.EmTime <- grow l.EmTime ecap
            l.EmSlot <- grow l.EmSlot ecap

        let e = l.NEm
        l.EmEmitter[e] <- emitter
        l.EmNeuron[e] <- neuron
        l.EmTime[e] <- time
        l.EmSlot[e] <- slot
        l.NEm <- e + 1
        e


// ---------------------------------------------------------------------------------------------
// The forward simulation

/// The event inputs of a kernel call: per source, times [B; cap] (float64), neurons and counts.
type Inputs =
    {
        Times: float[][]
        Neurons: int[][]
        Counts: int[][]
        Cap: int[]
    }

/// The outputs of a kernel call: per spiking population (by OutIndex) times/neurons [B; Capacity],
/// count and overflow [B]; per readout VMax and TMax [B; N].
type Outputs =
    {
        Times: float[][]
        Neurons: int[][]
        Count: int[][]
        Overflow: int[][]
        VMax: float[][]
        TMax: float[][]
    }

let private fail (message: string) =
    invalidArg "inputs" $"Events.run: %s{message}"

/// Checks one sample's parameters: positive finite time constants, v_reset < v_th, finite leak,
/// delays >= 0 and finite.
let checkParams (l: Layout) (sd: SlotData) (b: int) =
    for p in l.Pops do
        let names = [| "tauSyn"; "tauMem"; "vLeak"; "vTh"; "vReset" |]
        let k = if p.Spiking then 5 else 3

        for q in 0 .. k - 1 do
            let a, o = sd.Data[p.Slot + q], sd.Off(p.Slot + q, b)

            for n in 0 .. p.N - 1 do
                let v = a[o + n]

                if Double.IsNaN v || Double.IsInfinity v || (q < 2 && not (v > 0.0)) then
                    let what = if q < 2 then "positive and finite" else "finite"
                    fail $"population '%s{p.Name}' (sample %d{b}, neuron %d{n}): %s{names[q]} = %g{v} must be %s{what}"

        if p.Spiking then
            let th, o1 = sd.Data[p.Slot + 3], sd.Off(p.Slot + 3, b)
            let rs, o2 = sd.Data[p.Slot + 4], sd.Off(p.Slot + 4, b)

            for n in 0 .. p.N - 1 do
                if not (rs[o2 + n] < th[o1 + n]) then
                    fail
                        $"population '%s{p.Name}' (sample %d{b}, neuron %d{n}): vReset = %g{rs[o2 + n]} must lie below vTh = %g{th[o1 + n]}"

    for j in l.Projs do
        if j.DKind > 0 then
            let a, o = sd.Data[j.DSlot], sd.Off(j.DSlot, b)

            for k in 0 .. sd.Size[j.DSlot] - 1 do
                let d = a[o + k]

                if not (d >= 0.0) || Double.IsInfinity d then
                    fail $"projection '%s{j.Name}' (sample %d{b}): the delay %g{d} s (entry %d{k}) must be >= 0 and finite"

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
    // Candidate spikes: a heap ordered by (time, population, neuron), stale entries skipped.
    let mutable hT = Array.zeroCreate<float> 64
    let mutable hP = Array.zeroCreate<int> 64
    let mutable hN = Array.zeroCreate<int> 64
    let mutable hV = Array.zeroCreate<int> 64
    let mutable hn = 0
    // Delayed arrivals: a heap ordered by (time, sequence number).
    let mutable aT = Array.zeroCreate<float> 64
    let mutable aS = Array.zeroCreate<int64> 64
    let mutable aJ = Array.zeroCreate<int> 64
    let mutable aE = Array.zeroCreate<int> 64
    let mutable aG = Array.zeroCreate<int> 64
    let mutable an = 0
    let mutable seq = 0L
    let mutable sd = Unchecked.defaultof<SlotData>
    let mutable b = 0

    let hLess (x: int) (y: int) =
        hT[x] < hT[y]
        || (hT[x] = hT[y] && (hP[x] < hP[y] || (hP[x] = hP[y] && hN[x] < hN[y])))

    let hSwap (x: int) (y: int) =
        let t, p, n, w = hT[x], hP[x], hN[x], hV[x]
        hT[x] <- hT[y]
        hP[x] <- hP[y]
        hN[x] <- hN[y]
        hV[x] <- hV[y]
        hT[y] <- t
        hP[y] <- p
        hN[y] <- n
        hV[y] <- w

    let hPush (t: float) (p: int) (n: int) (w: int) =
        if hn = hT.Length then
            hT <- grow hT (2 * hn)
            hP <- grow hP (2 * hn)
            hN <- grow hN (2 * hn)
            hV <- grow hV (2 * hn)

        hT[hn] <- t
        hP[hn] <- p
        hN[hn] <- n
        hV[hn] <- w
        let mutable c = hn
        hn <- hn + 1

        while c > 0 && hLess c ((c - 1) / 2) do
            hSwap c ((c - 1) / 2)
            c <- (c - 1) / 2

    let hPop () =
        hn <- hn - 1
        hSwap 0 hn
        let mutable c = 0
        let mutable go = true

        while go do
            let a, z = 2 * c + 1, 2 * c + 2
            let mutable m = c

            if a < hn && hLess a m then
                m <- a

            if z < hn && hLess z m then
                m <- z

            if m = c then go <- false else hSwap c m
            c <- m

    /// Drops stale candidates from the top; the earliest valid candidate's time or +inf.
    let hTop () =
        while hn > 0 && hV[0] <> ver[hP[0]][hN[0]] do
            hPop ()

        if hn > 0 then hT[0] else infinity

    let aLess (x: int) (y: int) =
        aT[x] < aT[y] || (aT[x] = aT[y] && aS[x] < aS[y])

    let aSwap (x: int) (y: int) =
        let t, s, j, e, g = aT[x], aS[x], aJ[x], aE[x], aG[x]
        aT[x] <- aT[y]
        aS[x] <- aS[y]
        aJ[x] <- aJ[y]
        aE[x] <- aE[y]
        aG[x] <- aG[y]
        aT[y] <- t
        aS[y] <- s
        aJ[y] <- j
        aE[y] <- e
        aG[y] <- g

    let aPush (t: float) (j: int) (e: int) (g: int) =
        if an = aT.Length then
            aT <- grow aT (2 * an)
            aS <- grow aS (2 * an)
            aJ <- grow aJ (2 * an)
            aE <- grow aE (2 * an)
            aG <- grow aG (2 * an)

        aT[an] <- t
        aS[an] <- seq
        seq <- seq + 1L
        aJ[an] <- j
        aE[an] <- e
        aG[an] <- g
        let mutable c = an
        an <- an + 1

        while c > 0 && aLess c ((c - 1) / 2) do
            aSwap c ((c - 1) / 2)
            c <- (c - 1) / 2

    let aPop () =
        an <- an - 1
        aSwap 0 an
        let mutable c = 0
        let mutable go = true

        while go do
            let a, z = 2 * c + 1, 2 * c + 2
            let mutable m = c

            if a < an && aLess a m then
                m <- a

            if z < an && aLess z m then
                m <- z

            if m = c then go <- false else aSwap c m
            c <- m

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
            if pops[p].Spiking && (touchedAll[p] || touched[p].Count > 0) then
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
        hn <- 0
        an <- 0
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

        // Input events: sorted, in range.
        for k in 0 .. ns - 1 do
            let src = l.Sources[k]
            let c = inp.Counts[k][b]
            let cap = inp.Cap[k]

            if c < 0 || c > cap then
                fail $"source '%s{src.Name}' (sample %d{b}): Count %d{c} is outside [0, %d{cap}]"

            let mutable last = 0.0

            for q in 0 .. c - 1 do
                let t = inp.Times[k][b * cap + q]
                let n = inp.Neurons[k][b * cap + q]

                if Double.IsNaN t || t < last then
                    fail
                        $"source '%s{src.Name}' (sample %d{b}): the event times must be >= 0 and ascending, slot %d{q} holds %g{t} after %g{last}"

                if n < 0 || n >= src.N then
                    fail $"source '%s{src.Name}' (sample %d{b}): slot %d{q} names neuron %d{n} of a population of %d{src.N}"

                last <- t

        // The next input or delayed arrival: how far a free neuron's search needs to look.
        let nextKnown () =
            let mutable h = if an > 0 then aT[0] else infinity

            for k in 0 .. ns - 1 do
                if ptr[k] < inp.Counts[k][b] then
                    h <- min h (inp.Times[k][b * inp.Cap[k] + ptr[k]])

            h

        for p in 0 .. np - 1 do
            touchedAll[p] <- pops[p].Spiking

        s.Recompute(nextKnown ())

        let mutable fin = false
        let mutable total = 0L

        while not fin do
            let mutable t = hTop ()

            if an > 0 && aT[0] < t then
                t <- aT[0]

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

                    while an > 0 && aT[0] <= t do
                        let j, e, g = aJ[0], aE[0], aG[0]
                        aPop ()
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
                        let p, n = hP[0], hN[0]
                        hPop ()
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

                    go <- spikes > 0 && (pending.Count > 0 || (an > 0 && aT[0] <= t) || hTop () <= t)

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
