/// Calibration of an emulated chip as calix calibrates a real one: per parameter, a binary search
/// on every circuit's trim code at once, each step an emulated measurement through the chip's
/// observables (8-bit CADC samples and spikes, trial membrane noise on); and a text format that
/// saves a trim with its chip and targets.
///
/// What a trim means here: the emulator realises a graph's parameter value plus the circuit's
/// deviation at its trim code, and that deviation does not depend on the value (Chip.deviationAt).
/// So codes found at the targets trim a circuit's deviation toward zero for any graph values; on
/// the chip a calibration holds only near its targets (calix calibrates again for others), so a
/// graph run under a calibration should use the targets' values (CalibrationTargets.lifSpec).
namespace SnnFunc.Backends

open System
open System.Globalization
open System.IO
open SnnFunc
open SnnFunc.RandomBits

/// Calibration targets: defaults, the allowed ranges and their model-unit values.
[<RequireQualifiedAccess; CompilationRepresentation(CompilationRepresentationFlags.ModuleSuffix)>]
module CalibrationTargets =
    /// Leak 80 (calix's default) and reset 80 (hxtorch's) CADC map the model's 0, threshold 150
    /// its 1 (bss2.md 1.3, 5.1); τm 10 µs and τs 5 µs hardware, the targets of bss2.md 2.1's
    /// calibration data (10 ms and 5 ms model).
    let defaults: CalibrationTargets =
        {
            Leak = Bss2Figures.cadcAtZero
            Threshold = Bss2Figures.cadcAtZero + Bss2Figures.cadcPerUnit
            Reset = Bss2Figures.cadcAtZero
            TauMem = 10e-6
            TauSyn = 5e-6
        }

    /// A CADC code in the model's voltage units: (code - 80) / 70.
    let modelVolts (code: float) =
        (code - Bss2Figures.cadcAtZero) / Bss2Figures.cadcPerUnit

    /// A target's value in the model's units: volts from CADC codes, seconds times the acceleration.
    let modelValue (k: CircuitParameter) (t: CalibrationTargets) =
        match k with
        | CircuitParameter.TauMem -> t.TauMem * Bss2Figures.acceleration
        | CircuitParameter.TauSyn -> t.TauSyn * Bss2Figures.acceleration
        | CircuitParameter.Leak -> modelVolts t.Leak
        | CircuitParameter.Threshold -> modelVolts t.Threshold
        | CircuitParameter.Reset -> modelVolts t.Reset
        | _ -> invalidArg "k" $"Calibration: unknown parameter %A{k}"

    /// A LIF spec with the targets' leak, threshold, reset and time constants: the values a graph
    /// run under a calibration for these targets should use.
    let lifSpec (t: CalibrationTargets) (spec: Snn.Lif.Spec) : Snn.Lif.Spec =
        { spec with
            VLeak = modelValue CircuitParameter.Leak t
            VTh = modelValue CircuitParameter.Threshold t
            VReset = modelValue CircuitParameter.Reset t
            TauMem = modelValue CircuitParameter.TauMem t
            TauSyn = modelValue CircuitParameter.TauSyn t
        }

    /// A target's value in its calibration unit (CADC codes, hardware seconds).
    let internal valueOf (k: CircuitParameter) (t: CalibrationTargets) =
        match k with
        | CircuitParameter.TauMem -> t.TauMem
        | CircuitParameter.TauSyn -> t.TauSyn
        | CircuitParameter.Leak -> t.Leak
        | CircuitParameter.Threshold -> t.Threshold
        | CircuitParameter.Reset -> t.Reset
        | _ -> invalidArg "k" $"Calibration: unknown parameter %A{k}"

    let private range (k: CircuitParameter) =
        match k with
        | CircuitParameter.TauMem -> Bss2Figures.tauMemRange
        | CircuitParameter.TauSyn -> Bss2Figures.tauSynRange
        | CircuitParameter.Leak -> Bss2Figures.leakRange
        | CircuitParameter.Threshold -> Bss2Figures.thresholdRange
        | CircuitParameter.Reset -> Bss2Figures.resetRange
        | _ -> invalidArg "k" $"Calibration: unknown parameter %A{k}"

    /// A value with its unit, for messages.
    let format (k: CircuitParameter) (v: float) =
        match k with
        | CircuitParameter.TauMem
        | CircuitParameter.TauSyn -> $"%g{v * 1e6} µs"
        | _ -> $"%g{v} CADC"

    /// The targets, or an ArgumentException naming the first outside calix's allowed range
    /// (bss2.md 1.3): a target the chip's calibration does not reach.
    let check (t: CalibrationTargets) =
        for k in Chip.parameters do
            let v = valueOf k t
            let lo, hi = range k

            if not (v >= lo && v <= hi) then
                invalidArg
                    "targets"
                    $"Calibration: the %s{Chip.parameterName k} target %s{format k v} is outside calix's allowed range %s{format k lo} to %s{format k hi}"

        t

    /// One line: the targets with their units.
    let describe (t: CalibrationTargets) =
        Chip.parameters
        |> Array.map (fun k -> $"%s{Chip.parameterName k} %s{format k (valueOf k t)}")
        |> String.concat ", "

/// The emulated measurements of all 512 circuits: probe graphs of one 512-neuron LIF population (one
/// circuit per neuron) whose parameters are chosen to isolate one circuit parameter, run on the
/// emulator with its CADC readout and trial noise, and the estimators that read the parameter from
/// the CADC codes and the spikes. Every estimate is the measured value minus the target: CADC codes
/// for the voltages, relative for the time constants (the units of Chip.trimStep).
module internal CalibrationProbes =
    let circuits = Bss2Figures.neuronCircuits

    /// The CADC period in model seconds; a probe steps at it or at an integer fraction of it, so
    /// that every CADC sample falls on a step.
    let periodModel = Bss2Figures.cadcPeriod * Bss2Figures.acceleration

    /// What one probe run observed: CADC codes [S; B; N] (sample k at step k · lag), spikes [T; B; N].
    type Observed =
        {
            Codes: float[]
            Spikes: float[]
            Samples: int
            Batch: int
        }

        member o.Code(k: int, b: int, j: int) =
            o.Codes[(k * o.Batch + b) * circuits + j]

        member o.Spike(t: int, b: int, j: int) =
            o.Spikes[(t * o.Batch + b) * circuits + j] > 0.5

    /// Runs the probe: every neuron at the spec's values (leak, threshold, reset in model units),
    /// fed by `stimulus` [T; B; inputs] through weights of `weight` (model units); the step is the
    /// CADC period over `lag`.
    let run
        (chip: ChipInstance)
        (trim: Trim)
        (key: Key)
        (lag: int)
        (spec: Snn.Lif.Spec)
        (weight: float)
        (stimulus: float[])
        (steps: int)
        (batch: int)
        =
        let dt = periodModel / float lag
        let spec = { spec with Dt = dt }
        let inputs = stimulus.Length / (steps * batch)

        let g =
            Graph.empty
            |> Graph.input "x" inputs
            |> Graph.population "n" circuits (Neuron.lif spec)
            |> Graph.connect "x" "n" (Projection.dense Init.zeros)

        let scalar (v: float) = Tensor.Scalar(v, Float64)

        let p: GraphParams =
            Map
                [
                    "n",
                    Map
                        [
                            "tauMem", scalar spec.TauMem
                            "tauSyn", scalar spec.TauSyn
                            "vLeak", scalar spec.VLeak
                            "vTh", scalar spec.VTh
                            "vReset", scalar spec.VReset
                        ]
                    "x->n", Map [ "weight", Tensor.Full([| inputs; circuits |], weight, Float64) ]
                ]

        // The estimators read the dense spikes, so the event buffers need no slots to speak of.
        let config =
            { Bss2Config.defaults with
                TrialKey = key
                Readout = Cadc
                Madc = None
                EventCapacity = 1
            }

        let x = Tensor.FromArray(stimulus, steps, batch, inputs)

        let r =
            Bss2Emulator(chip, trim, config).Run(g, p, Map [ "x", x ], RunConfig.steps steps dt)

        let c = r.Raw["cadc/n"]

        {
            Codes = c.ToDoubleArray()
            Spikes = r.Dense["n"].Spikes.ToDoubleArray()
            Samples = c.Shape[0]
            Batch = batch
        }

    /// No input: one silent source row.
    let silence (steps: int) (batch: int) = Array.zeroCreate<float> (steps * batch)

    /// A spec with leak, threshold and reset at CADC codes, the time constants in model seconds.
    let spec (leak: float) (threshold: float) (reset: float) (tauMem: float) (tauSyn: float) (refractory: int) =
        { Snn.Lif.defaults with
            VLeak = CalibrationTargets.modelVolts leak
            VTh = CalibrationTargets.modelVolts threshold
            VReset = CalibrationTargets.modelVolts reset
            TauMem = tauMem
            TauSyn = tauSyn
            RefractorySteps = refractory
        }

    /// A threshold no membrane reaches: the probe's neurons never spike.
    let never = 1e4

    /// The CADC quantises a level the noise does not move (a held reset, a threshold crossed the
    /// same way each time, a relaxation that starts from a held reset) to the nearest code.
    /// Shifting the probe's voltages by known fractions of a code over `count` runs and subtracting
    /// the shift from the codes (subtractive dither) reads them to 1 / (2 · count) of a code.
    let dither (count: int) (m: int) = (float m + 0.5) / float count - 0.5

    /// The membrane time constant of the probes that do not measure one (their values do not
    /// depend on it): short, so that the noise of a membrane starting at its leak spreads soon.
    let probeTau = 4e-3

    /// Leak: the mean CADC code of a resting membrane (no input, no spikes) once its noise has
    /// spread (after 3 τm; the membrane starts at the leak exactly); the noise dithers the codes.
    let leak (chip: ChipInstance) (trim: Trim) (t: CalibrationTargets) (key: Key) =
        let steps, batch = 30, 2
        let s = spec t.Leak never t.Leak probeTau 5e-3 0
        let o = run chip trim key 1 s 0.0 (silence steps batch) steps batch
        let first = int (ceil (3.0 * probeTau / periodModel))

        Array.init circuits (fun j ->
            let mutable sum = 0.0

            for k in first .. o.Samples - 1 do
                for b in 0 .. batch - 1 do
                    sum <- sum + o.Code(k, b, j)

            sum / float ((o.Samples - first) * batch) - t.Leak)

    /// Reset: the leak far above the threshold makes every neuron spike at once; the refractory
    /// period then holds the membrane at the reset, which the CADC reads without noise (the
    /// sample after the spike), dithered over runs.
    let reset (chip: ChipInstance) (trim: Trim) (t: CalibrationTargets) (key: Key) =
        let steps, batch, refractory = 3, 1, 2
        // The threshold sits well above the reset and the leak well above the threshold, beyond
        // their uncalibrated spreads (bss2.md 2.1): the first step spikes on every circuit.
        let threshold = t.Reset + 20.0
        let sum = Array.zeroCreate<float> circuits
        let count = Array.zeroCreate<int> circuits

        for m in 0..3 do
            let d = dither 4 m
            let s = spec (threshold + 60.0) threshold (t.Reset + d) probeTau 5e-3 refractory

            let o =
                run chip trim (Random.foldIn key m) 1 s 0.0 (silence steps batch) steps batch

            for j in 0 .. circuits - 1 do
                if o.Spike(0, 0, j) then
                    sum[j] <- sum[j] + o.Code(1, 0, j) - d
                    count[j] <- count[j] + 1

        Array.init circuits (fun j ->
            if count[j] = 0 then
                nan
            else
                sum[j] / float count[j] - t.Reset)

    /// Threshold: the leak 20 codes above the target threshold pulls the membrane up from a reset
    /// 5 codes below it, slowly (~0.3 codes per step at the crossing), so that the membrane at a
    /// spike's step (before its reset) and at the step before bracket the threshold closely; their
    /// mean over spikes and dithered runs. A circuit that never spikes has its threshold above the
    /// reach of the leak (+∞); one whose threshold lies below its reset spikes every step and reads
    /// the reset (below the target), so the search moves the right way.
    let threshold (chip: ChipInstance) (trim: Trim) (t: CalibrationTargets) (key: Key) =
        let steps, batch = 60, 2
        let drive, below = 20.0, 5.0
        let tau = periodModel * drive / 0.3
        let sum = Array.zeroCreate<float> circuits
        let count = Array.zeroCreate<int> circuits

        for m in 0..1 do
            let d = dither 2 m

            let s =
                spec (t.Threshold + drive) (t.Threshold + d) (t.Threshold - below) tau 5e-3 0

            let o =
                run chip trim (Random.foldIn key m) 1 s 0.0 (silence steps batch) steps batch

            for b in 0 .. batch - 1 do
                // Step 0 spikes from the resting membrane above the threshold: skip it.
                for step in 1 .. steps - 1 do
                    for j in 0 .. circuits - 1 do
                        if o.Spike(step, b, j) then
                            sum[j] <- sum[j] + 0.5 * (o.Code(step - 1, b, j) + o.Code(step, b, j)) - d
                            count[j] <- count[j] + 1

        Array.init circuits (fun j ->
            if count[j] = 0 then
                Double.PositiveInfinity
            else
                sum[j] / float count[j] - t.Threshold)

    /// Steps per CADC sample for a probe of time constant tau: the step at most tau / 4, so that
    /// the realised constants near the target stay clear of the software model's 2 · dt barrier
    /// (NeuronParams.effectiveTau).
    let lagFor (tau: float) =
        max 1 (int (ceil (4.0 * periodModel / tau)))

    /// Samples of a response by their delay (in steps) after the event that started it: count and
    /// sum per delay, all a least-squares fit of a response shape needs.
    type Delays(longest: int) =
        let count = Array.zeroCreate<float> (longest + 1)
        let sum = Array.zeroCreate<float> (longest + 1)

        member _.Add(delay: int, v: float) =
            if delay >= 0 && delay <= longest then
                count[delay] <- count[delay] + 1.0
                sum[delay] <- sum[delay] + v

        member _.Longest = longest

        /// How many delays have samples (an offset, an amplitude and a ratio need three).
        member _.Distinct = count |> Array.sumBy (fun n -> if n > 0.0 then 1 else 0)

        /// The least-squares misfit (up to a constant) of v ≈ c + a · shape[delay] with the best
        /// offset c and amplitude a; +∞ where the shape does not determine them.
        member _.Misfit(shape: float[]) =
            let mutable n, sf, sff, sv, svf = 0.0, 0.0, 0.0, 0.0, 0.0

            for d in 0..longest do
                let f = shape[d]
                n <- n + count[d]
                sf <- sf + count[d] * f
                sff <- sff + count[d] * f * f
                sv <- sv + sum[d]
                svf <- svf + sum[d] * f

            let det = n * sff - sf * sf

            if not (det > 1e-12 * n * n) then
                Double.PositiveInfinity
            else
                let c = (sv * sff - svf * sf) / det
                let a = (n * svf - sf * sv) / det
                -(c * sv + a * svf)

    /// The per-step ratio r = 1 - dt/τ whose response shape r fits the samples best, for τ from
    /// dt to 100 times the target (the slowest circuit a search visits, 32 times the target at
    /// code 1023, fits inside): a scan of 48 time constants spaced evenly in log τ (the misfit can
    /// have a second, false minimum), then a golden-section search between the best one's
    /// neighbours.
    let fitRatio (delays: Delays) (dt: float) (target: float) (shape: float -> float[]) =
        let misfit r = delays.Misfit(shape r)
        let points = 48

        let ratio (i: int) =
            1.0 - 1.0 / (100.0 * target / dt) ** (float i / float (points - 1))

        let best = Array.init points (fun i -> misfit (ratio i), i) |> Array.min |> snd

        let g = (sqrt 5.0 - 1.0) / 2.0
        let mutable lo, hi = ratio (max 0 (best - 1)), ratio (min (points - 1) (best + 1))
        let mutable x1, x2 = hi - g * (hi - lo), lo + g * (hi - lo)
        let mutable f1, f2 = misfit x1, misfit x2

        for _ in 1..30 do
            if f1 <= f2 then
                hi <- x2
                x2 <- x1
                f2 <- f1
                x1 <- hi - g * (hi - lo)
                f1 <- misfit x1
            else
                lo <- x1
                x1 <- x2
                f1 <- f2
                x2 <- lo + g * (hi - lo)
                f2 <- misfit x2

        0.5 * (lo + hi)

    /// The relative error of the time constant of a per-step ratio r = 1 - dt/τ (the circuits'
    /// Euler step, the software model's).
    let tauError (dt: float) (target: float) (r: float) = dt / (1.0 - r) / target - 1.0

    /// The powers x^Δ for Δ = 0 .. longest.
    let private powers (x: float) (longest: int) =
        let p = Array.zeroCreate<float> (longest + 1)
        let mutable v = 1.0

        for i in 0..longest do
            p[i] <- v
            v <- v * x

        p

    /// The sign of the τs probe's kick: toward the middle of the CADC range from the leak.
    let private towardMiddle (leak: float) = if leak <= 128.0 then 1.0 else -1.0

    /// The membrane time constant: a strong, brief input kick (three rows of 63 weight levels,
    /// the synapse decaying with τm / 5, at least 2 steps) makes the neuron spike; it resets ~60
    /// codes below the leak and the refractory period holds it there until the kick's current
    /// has died away (10 τs); released, the membrane relaxes to the leak undisturbed,
    /// v = L + (V0 - L) · r^Δ, r = 1 - dt/τm per step (the circuits' Euler step), Δ the steps
    /// since the hold ended. The CADC samples with Δ known from the spike times are fitted for r
    /// (L and V0 free); the relaxation runs to the leak, so that the fit sees L. The sampling
    /// period need not resolve τm: the kicks come at a step that moves by one against the CADC
    /// grid from one batch element to the next, so the samples cover every delay
    /// (equivalent-time sampling). The voltages are dithered over runs against the quantisation
    /// of the held reset and of the first, still quiet steps after it. The kick crosses the
    /// threshold (15 codes above the leak) even at twice the target τm; a circuit it leaves
    /// (nearly) unspiking is slower than that (+∞), so the search still moves the right way.
    let tauMem (chip: ChipInstance) (trim: Trim) (t: CalibrationTargets) (key: Key) =
        let target = CalibrationTargets.modelValue CircuitParameter.TauMem t
        let lag = lagFor target
        let dt = periodModel / float lag
        let tauSyn = max (2.0 * dt) (target / 5.0)
        let hold = int (ceil (10.0 * tauSyn / dt))
        let relax = int (ceil (5.0 * target / dt))
        let cycle = 3 + hold + relax
        let batch, kicks, runs = max 2 lag, 2, 2
        let steps = lag + kicks * cycle
        let depth = min 60.0 (t.Leak - 8.0)
        let start (b: int) = b % lag

        let stimulus =
            Array.init (steps * batch * 3) (fun o ->
                let step, b = o / (3 * batch), o / 3 % batch
                let c = step - start b
                if c >= 0 && c % cycle = 0 then 1.0 else 0.0)

        let delays = Array.init circuits (fun _ -> Delays relax)

        for m in 0 .. runs - 1 do
            let d = dither runs m

            let s =
                spec (t.Leak + d) (t.Leak + 15.0 + d) (t.Leak - depth + d) target tauSyn hold

            let weight = float Bss2Figures.weightLevels / Bss2Config.defaults.WeightScale
            let o = run chip trim (Random.foldIn key m) lag s weight stimulus steps batch

            for j in 0 .. circuits - 1 do
                for b in 0 .. batch - 1 do
                    let mutable last = -1
                    let mutable k = 0

                    for h in 0 .. steps - 1 do
                        if o.Spike(h, b, j) then
                            last <- h

                        if h = k * lag && k < o.Samples then
                            // From the end of the hold to the next kick's arrival, for the
                            // relaxations the run sees to their end.
                            if last >= 0 && h >= last + hold && last + hold + relax < steps then
                                delays[j].Add(h - last - hold, o.Code(k, b, j) - d)

                            k <- k + 1

        delays
        |> Array.map (fun delays ->
            // A circuit that spiked too rarely to sample its relaxation at a few delays is one the
            // kicks hardly move: slower than the target.
            if delays.Distinct < 6 then
                Double.PositiveInfinity
            else
                tauError dt target (fitRatio delays dt target (fun r -> powers r relax)))

    /// The synaptic time constant: an input spike kicks the synaptic current, which decays by
    /// b = 1 - dt/τs per step, and the membrane (τm two steps, the probe's) integrates it: the
    /// response Δ steps after the kick is L + A · g(Δ), g(Δ) = (b^Δ - ρ^Δ) / (b - ρ),
    /// ρ = 1 - dt/τm (exact for the circuits' linear dynamics). The CADC samples with Δ known from
    /// the kick's time are fitted for b (L and A free; ρ at the probe's value, which the τm
    /// calibration before has trimmed the circuit to). One kick per batch element,
    /// watched for 10 τs, at a step that moves by one against the CADC grid from one element to
    /// the next (equivalent-time sampling, as for τm); a single kick also keeps a circuit far
    /// slower than its target (early in the search) from piling up current beyond the CADC
    /// range. The kick's size (46 of 63 weight levels) makes the response ~70 codes high.
    let tauSyn (chip: ChipInstance) (trim: Trim) (t: CalibrationTargets) (key: Key) =
        let target = CalibrationTargets.modelValue CircuitParameter.TauSyn t
        let lag = lagFor target
        let dt = periodModel / float lag
        let tauMem = 2.0 * dt
        let rho = 1.0 - dt / tauMem
        let window = int (ceil (10.0 * target / dt))
        let steps, batch = window + lag, max 2 lag
        let s = spec t.Leak never t.Leak tauMem target 0
        let weight = towardMiddle t.Leak * 46.0 / Bss2Config.defaults.WeightScale
        let kick (b: int) = b % lag

        let stimulus =
            Array.init (steps * batch) (fun o -> if o / batch = kick (o % batch) then 1.0 else 0.0)

        let o = run chip trim key lag s weight stimulus steps batch

        // g by the recursion g(Δ + 1) = ρ g(Δ) + b^Δ, g(0) = 0 (the membrane's Euler step).
        let shape (b: float) =
            let g = Array.zeroCreate<float> (steps + 1)
            let mutable pb = 1.0

            for i in 0 .. steps - 1 do
                g[i + 1] <- rho * g[i] + pb
                pb <- pb * b

            g

        Array.init circuits (fun j ->
            let delays = Delays steps

            for k in 0 .. o.Samples - 1 do
                for b in 0 .. batch - 1 do
                    // Before its kick the membrane rests: the response's value at delay 0.
                    delays.Add(max 0 (k * lag - kick b), o.Code(k, b, j))

            tauError dt target (fitRatio delays dt target shape))

    /// The probe of a parameter.
    let measure (k: CircuitParameter) =
        match k with
        | CircuitParameter.Leak -> leak
        | CircuitParameter.Reset -> reset
        | CircuitParameter.Threshold -> threshold
        | CircuitParameter.TauMem -> tauMem
        | CircuitParameter.TauSyn -> tauSyn
        | _ -> invalidArg "k" $"Calibration: unknown parameter %A{k}"

/// Calibrating a chip instance and saving its trim.
[<RequireQualifiedAccess>]
module Calibration =
    /// The order of the searches, each probe relying on the parameters before it being trimmed
    /// (as calix orders its calibrations): every probe reads voltages relative to the leak; the
    /// threshold probe resets to a level the reset calibration set; the τm probe's kick must
    /// cross the threshold; the τs probe's response shape involves the membrane's τm.
    let order =
        [|
            CircuitParameter.Leak
            CircuitParameter.Reset
            CircuitParameter.Threshold
            CircuitParameter.TauMem
            CircuitParameter.TauSyn
        |]

    let private withCodes (trim: Trim) (k: CircuitParameter) (codes: int[]) =
        { trim with
            Codes = trim.Codes |> Array.mapi (fun i row -> if i = int k then codes else row)
        }

    /// Per circuit the trim code of parameter k whose measurement lies closest to the target: a
    /// successive-approximation binary search over the 10 bits (a bit stays set where the
    /// measurement is still at or below the target; the parameter rises with the code), which
    /// ends next to the crossing, at the last code kept and the one above it; the closer of the
    /// two wins (the search has measured one of them, an 11th measurement takes the other). A
    /// circuit whose best code is an end of the range and still misses the target by more than a
    /// trim step cannot reach it; one that misses it inside the range was misled by a
    /// measurement: errors naming the circuits and the parameter.
    let private search (chip: ChipInstance) (targets: CalibrationTargets) (key: Key) (trim: Trim) (k: CircuitParameter) =
        let n = Bss2Figures.neuronCircuits
        let probe = CalibrationProbes.measure k
        let mutable step = 0

        let measure (codes: int[]) =
            step <- step + 1
            probe chip (withCodes trim k codes) targets (Random.foldIn key step)

        let codes = Array.zeroCreate<int> n
        let eCodes = Array.create n nan
        let eAbove = Array.create n nan

        for bit in 9..-1..0 do
            let trial = codes |> Array.map (fun c -> c ||| (1 <<< bit))
            let e = measure trial

            for c in 0 .. n - 1 do
                if e[c] <= 0.0 then
                    codes[c] <- trial[c]
                    eCodes[c] <- e[c]
                elif bit = 0 then
                    eAbove[c] <- e[c]

        let above = codes |> Array.map (fun c -> min Chip.trimMax (c + 1))

        for c in 0 .. n - 1 do
            if codes[c] = Chip.trimMax then
                eAbove[c] <- eCodes[c]

        let missing =
            Array.init n (fun c -> if Double.IsNaN eCodes[c] then codes[c] else above[c])

        let e = measure missing

        for c in 0 .. n - 1 do
            if Double.IsNaN eCodes[c] then
                eCodes[c] <- e[c]
            elif Double.IsNaN eAbove[c] then
                eAbove[c] <- e[c]

        // A tie (the dithered CADC reads on a grid of fractions of a code) goes up on odd
        // circuits and down on even ones, so that ties do not shift the mean.
        let best =
            Array.init n (fun c ->
                if abs eAbove[c] < abs eCodes[c] || abs eAbove[c] = abs eCodes[c] && c % 2 = 1 then
                    above[c], eAbove[c]
                else
                    codes[c], eCodes[c])

        let tolerance = Chip.trimStep k
        let name = Chip.parameterName k
        let target = CalibrationTargets.valueOf k targets

        let units (e: float) =
            match k with
            | CircuitParameter.TauMem
            | CircuitParameter.TauSyn -> $"%+.3g{100.0 * e} %%"
            | _ -> $"%+.3g{e} CADC"

        let report (what: string) (failed: (int * int * float)[]) =
            if failed.Length > 0 then
                let shown =
                    failed
                    |> Array.truncate 8
                    |> Array.map (fun (c, code, e) -> $"circuit %d{c} (at code %d{code}, %s{units e} off)")

                let more =
                    if failed.Length > 8 then
                        $" and %d{failed.Length - 8} more"
                    else
                        ""

                invalidArg
                    "chip"
                    $"""Calibration: %s{what} the %s{name} target %s{CalibrationTargets.format k target}: %s{String.Join(", ", shown)}%s{more}"""

        // Beyond the range: still above the target at code 0, or below it at the top code.
        let atEnd =
            [| 0 .. n - 1 |]
            |> Array.filter (fun c ->
                codes[c] = 0 && eCodes[c] > tolerance
                || codes[c] = Chip.trimMax && eCodes[c] < -tolerance)
            |> Array.map (fun c -> c, codes[c], eCodes[c])

        report $"%d{atEnd.Length} circuit(s) would need a trim code outside 0..%d{Chip.trimMax} to reach" atEnd

        let missed =
            [| 0 .. n - 1 |]
            |> Array.filter (fun c -> not (abs (snd best[c]) <= tolerance))
            |> Array.map (fun c -> c, fst best[c], snd best[c])

        report "the search did not converge (a measurement misled it) toward" missed
        withCodes trim k (Array.map fst best)

    /// The trim of a chip for the targets: every circuit's codes found by emulated measurements
    /// (the key seeds their trial noise: same chip, targets and key, same trim). The targets are the
    /// parameter values the graphs run on the chip are meant to have (CalibrationTargets.lifSpec).
    let calibrate (chip: ChipInstance) (targets: CalibrationTargets) (key: Key) : Trim =
        let targets = CalibrationTargets.check targets

        let start =
            { Chip.untrimmed with
                Description = $"calibrated for chip %d{chip.Seed}: %s{CalibrationTargets.describe targets}"
                ChipSeed = Some chip.Seed
                Targets = Some targets
            }

        order
        |> Array.fold (fun trim k -> search chip targets (Random.foldIn key (int k)) trim k) start

    // The text format, one item per line:
    //   snnfunc-bss2-trim 1
    //   description <text>
    //   chip <seed> | chip any
    //   targets leak <CADC> threshold <CADC> reset <CADC> tauMem <s> tauSyn <s> | targets none
    //   <parameter name> <512 codes>          (tauMem, tauSyn, leak, threshold, reset)
    // Numbers in the invariant culture, floats round-trip ("R").
    let private header = "snnfunc-bss2-trim 1"

    let private fnum (v: float) =
        v.ToString("R", CultureInfo.InvariantCulture)

    /// Writes a trim (codes, description, chip seed, targets) as text.
    let save (path: string) (trim: Trim) =
        let targets =
            match trim.Targets with
            | Some t ->
                "targets "
                + (Chip.parameters
                   |> Array.map (fun k -> $"%s{Chip.parameterName k} %s{fnum (CalibrationTargets.valueOf k t)}")
                   |> String.concat " ")
            | None -> "targets none"

        let chip =
            match trim.ChipSeed with
            | Some s -> $"chip %d{s}"
            | None -> "chip any"

        let rows =
            Chip.parameters
            |> Array.map (fun k ->
                let codes = trim.Codes[int k] |> Array.map string |> String.concat " "
                $"%s{Chip.parameterName k} %s{codes}")

        let description = trim.Description.Replace('\n', ' ').Replace('\r', ' ')

        File.WriteAllLines(path, Array.append [| header; $"description %s{description}"; chip; targets |] rows)

    /// Reads a trim that `save` wrote; a malformed file is an error naming the file, the line and
    /// what is wrong. The trim keeps its chip seed: an emulator of another chip refuses it.
    let load (path: string) : Trim =
        let lines = File.ReadAllLines path

        let bad (line: int) (what: string) : 'a =
            invalidArg "path" $"Calibration: %s{path} line %d{line + 1}: %s{what}"

        let field (line: int) (name: string) =
            if line >= lines.Length then
                bad line $"missing (expected '%s{name} ...')"

            let text = lines[line]

            if text = name then
                ""
            elif text.StartsWith(name + " ") then
                text.Substring(name.Length + 1)
            else
                bad line $"expected '%s{name} ...', found '%s{text}'"

        if lines.Length = 0 || lines[0] <> header then
            bad 0 $"not a trim file (expected the first line '%s{header}')"

        let description = field 1 "description"

        let chipSeed =
            match field 2 "chip" with
            | "any" -> None
            | s ->
                match Int64.TryParse(s, NumberStyles.Integer, CultureInfo.InvariantCulture) with
                | true, v -> Some v
                | _ -> bad 2 $"the chip seed '%s{s}' is not an integer"

        let number (line: int) (s: string) =
            match Double.TryParse(s, NumberStyles.Float, CultureInfo.InvariantCulture) with
            | true, v -> v
            | _ -> bad line $"'%s{s}' is not a number"

        let targets =
            match field 3 "targets" with
            | "none" -> None
            | s ->
                let words = s.Split(' ', StringSplitOptions.RemoveEmptyEntries)
                let names = Chip.parameters |> Array.map Chip.parameterName

                if words.Length <> 2 * names.Length then
                    bad 3 $"""expected the targets %s{String.Join(", ", names)} with their values"""

                let get (name: string) =
                    match Array.tryFindIndex ((=) name) words with
                    | Some i when i % 2 = 0 -> number 3 words[i + 1]
                    | _ -> bad 3 $"no %s{name} target"

                Some
                    {
                        Leak = get "leak"
                        Threshold = get "threshold"
                        Reset = get "reset"
                        TauMem = get "tauMem"
                        TauSyn = get "tauSyn"
                    }

        let codes =
            Chip.parameters
            |> Array.mapi (fun i k ->
                let line = 4 + i

                let words =
                    (field line (Chip.parameterName k)).Split(' ', StringSplitOptions.RemoveEmptyEntries)

                if words.Length <> Bss2Figures.neuronCircuits then
                    bad line $"%d{words.Length} codes, the chip has %d{Bss2Figures.neuronCircuits} circuits"

                words
                |> Array.mapi (fun c w ->
                    match Int32.TryParse(w, NumberStyles.Integer, CultureInfo.InvariantCulture) with
                    | true, v when v >= 0 && v <= Chip.trimMax -> v
                    | _ -> bad line $"circuit %d{c}: '%s{w}' is not a trim code 0..%d{Chip.trimMax}"))

        if lines.Length > 4 + Chip.parameters.Length then
            bad (4 + Chip.parameters.Length) "unexpected text after the codes"

        {
            Codes = codes
            Description = description
            ChipSeed = chipSeed
            Targets = targets
        }
