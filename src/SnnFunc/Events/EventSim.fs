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
let internal cE = Array.init 18 (fun n -> 1.0 / fact[n + 1])
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

/// The root of V(s) = v_th in the bracket [lo, hi] (V below threshold at lo, at or above it at hi,
/// increasing in between) from (v0, i0): Newton's method from `start`, bisection when a step leaves
/// the bracket, to full precision.
let solveRising (v0: float) (i0: float) (tm: float) (ts: float) (vl: float) (vth: float) (lo0: float) (hi0: float) (start: float) =
    let mutable lo = lo0
    let mutable hi = hi0
    let mutable s = start
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
            let raw = if dv > 0.0 then s - fs / dv else nan
            it <- it + 1

            // A Newton step below 1e-10 relative leaves an error of its square's order: done
            // without another evaluation (a bisection step is not trusted so). The bracket is
            // closed here: a converged step may round to s itself, now one of its ends (taking
            // that for a step outside it bisected on for some 40 more evaluations).
            if dv > 0.0 && abs (raw - s) <= 1e-10 * abs raw && raw >= lo && raw <= hi then
                result <- raw
            else
                let next = if raw > lo && raw < hi then raw else 0.5 * (lo + hi)

                if abs (next - s) <= 2e-16 * abs next || hi - lo <= 2e-16 * hi || it > 200 then
                    result <- (if it > 200 then hi else next)
                else
                    s <- next

    result

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

            // The bracket with V − v_th at its ends; Newton starts from the secant's root.
            let inline solve (lo: float) (hi: float) (flo: float) (fhi: float) =
                let secant = lo + (hi - lo) * (-flo / (fhi - flo))

                let start =
                    if secant > lo && secant < hi then
                        secant
                    else
                        0.5 * (lo + hi)

                solveRising v0 i0 tm ts vl vth lo hi start

            // At the extremum V̇ = 0, so V(se) = v_leak + I(se): one exponential, not a flow.
            let fAtExtremum () = vl + i0 * exp (-se / ts) - vth

            if h0 > 0.0 then
                if se < h then
                    let fse = fAtExtremum ()

                    if fse > grazeTol vth vl then
                        solve 0.0 se (v0 - vth) fse
                    else
                        infinity
                else
                    let fh = f h
                    if fh >= 0.0 then solve 0.0 h (v0 - vth) fh else infinity
            elif se < h then
                let fse = fAtExtremum ()

                if fse < 0.0 then
                    let fh = f h
                    if fh >= 0.0 then solve se h fse fh else infinity
                else
                    infinity
            else
                infinity

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
        /// Per population, the index of its given spikes among the forced ones (Events.replay),
        /// or −1 when its spikes are solved. Forced spikes occupy the last 3 · NForced slots:
        /// times [B; cap] (not differentiated), neurons and counts (Int32), in that order.
        ForcedOf: int[]
        NForced: int
    }

    member l.NSources = l.Sources.Length
    /// Argument slot of source s's neuron indices and counts (Int32).
    member l.NeuronSlot(s: int) = l.Sources.Length + s
    member l.CountSlot(s: int) = 2 * l.Sources.Length + s
    /// The first slot of the forced spikes (their times; neurons and counts follow).
    member l.ForcedStart = l.NSlots - 3 * l.NForced
    member l.IsForced(p: int) = l.ForcedOf[p] >= 0
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

/// The event inputs of a kernel call: per source, times [B; cap] (float64), neurons and counts;
/// the same for the forced spikes (by Layout.ForcedOf).
type Inputs =
    {
        Times: float[][]
        Neurons: int[][]
        Counts: int[][]
        Cap: int[]
        ForcedTimes: float[][]
        ForcedNeurons: int[][]
        ForcedCounts: int[][]
        ForcedCap: int[]
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

let internal fail (message: string) =
    invalidArg "inputs" $"Events.run: %s{message}"

/// Checks one sample's parameters: positive finite time constants, v_reset < v_th, finite leak,
/// delays >= 0 and finite.
let private paramNames = [| "tauSyn"; "tauMem"; "vLeak"; "vTh"; "vReset" |]

let checkParams (l: Layout) (sd: SlotData) (b: int) =
    for p in l.Pops do
        let names = paramNames
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
