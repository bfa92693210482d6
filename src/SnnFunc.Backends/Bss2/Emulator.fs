/// The BrainScaleS-2 emulator's spiking mode: a placed graph run step by step as the chip's
/// circuits would run it (their fixed-pattern deviations, 6-bit weights with per-neuron gains,
/// trial-to-trial membrane noise) and observed as the chip observes it (spike timestamps on the
/// FPGA clock, 8-bit CADC samples, one 10-bit MADC trace), with a hardware-time account.
namespace SnnFunc.Backends

open System
open SnnFunc
open SnnFunc.RandomBits

/// How the membrane reaches the dense observables.
type MembraneReadout =
    /// The chip's: 8-bit CADC samples on the CADC grid, converted back to model units and
    /// interpolated linearly onto the run's steps (hxtorch's post-processing); no current.
    | Cadc
    /// The emulated analog trace itself on the run's steps, and the synaptic current (for tests
    /// and for an ideal chip).
    | Exact

/// Settings of emulated runs.
type Bss2Config =
    {
        /// Hardware weight per model weight unit: w_hw = round(clamp(scale · w, -63, 63)) (hxtorch's
        /// linear_saturating transform, rounded half away from zero [R] S2, bss2.md 2.3).
        WeightScale: float
        /// Per projection (by node name), a weight scale other than WeightScale: the synaptic
        /// gain of the rows it uses.
        WeightScales: Map<string, float>
        /// Per population, hxtorch's trace scale k: its circuits run the model's membrane divided
        /// by k (as a smaller synaptic gain would), so the CADC reads 70 / k codes per model unit
        /// and its voltage deviations and membrane noise, fixed in codes, are k times larger in
        /// model units. For readouts whose membrane would leave the ADC's range.
        TraceScales: Map<string, float>
        /// Apply the chip's fixed-pattern deviations (false: every circuit ideal).
        FixedPatternNoise: bool
        /// Trial-to-trial membrane noise: the stationary standard deviation of a resting membrane,
        /// in model units (0 turns it off).
        MembraneNoise: float
        /// The key of this trial's noise (fold in a counter per run for fresh noise).
        TrialKey: Key
        Readout: MembraneReadout
        /// The neuron whose membrane the MADC records, by population and index.
        Madc: (string * int) option
        /// The CADC sampling period in hardware seconds.
        CadcPeriod: float
        /// Hardware time between two samples (reset and settling), added to the account.
        SampleGap: float
        /// Spike slots per sample and population of the event-buffer observables.
        EventCapacity: int
    }

/// The emulator's defaults.
[<RequireQualifiedAccess>]
module Bss2Config =
    /// Scale 32, fixed-pattern noise on, the reference membrane noise, CADC readout, no MADC trace,
    /// the 1.7 µs CADC grid, no gap between samples, 256 event slots.
    let defaults: Bss2Config =
        {
            WeightScale = 32.0
            WeightScales = Map.empty
            TraceScales = Map.empty
            FixedPatternNoise = true
            MembraneNoise = Bss2Figures.membraneNoise
            TrialKey = SnnFunc.Random.key 0L
            Readout = Cadc
            Madc = None
            CadcPeriod = Bss2Figures.cadcPeriod
            SampleGap = 0.0
            EventCapacity = 256
        }

    /// No fixed-pattern or trial noise and the exact membrane readout: with a chip's ideal
    /// parameters and weights on the 6-bit grid, the software model's numbers.
    let ideal: Bss2Config =
        { defaults with
            FixedPatternNoise = false
            MembraneNoise = 0.0
            Readout = Exact
        }

    /// The weight scale of a projection.
    let weightScaleOf (c: Bss2Config) (projection: string) =
        c.WeightScales.TryFind projection |> Option.defaultValue c.WeightScale

    /// The trace scale of a population.
    let traceScaleOf (c: Bss2Config) (population: string) =
        c.TraceScales.TryFind population |> Option.defaultValue 1.0

    /// CADC codes per model unit of a population's membrane.
    let codesPerUnit (c: Bss2Config) (population: string) =
        Bss2Figures.cadcPerUnit / traceScaleOf c population

/// The realised parameters of a placed population, per neuron.
type RealisedNeurons =
    {
        TauMem: float[]
        TauSyn: float[]
        VLeak: float[]
        VTh: float[]
        VReset: float[]
        GainExcitatory: float[]
        GainInhibitory: float[]
    }

/// The emulator's arithmetic: realised parameters, quantised weights, the circuits' time loop and
/// the readouts.
module internal EmulatorCore =
    let fail (message: string) : 'a = invalidArg "graph" $"Bss2: %s{message}"

    /// A parameter tensor (rank 0 or one per neuron) as n values.
    let perNeuron (node: string) (name: string) (n: int) (t: Tensor) =
        let v = t.ToDoubleArray()

        if v.Length = 1 then
            Array.create n v[0]
        elif v.Length = n then
            v
        else
            fail $"parameter '%s{node}/%s{name}' has %d{v.Length} values for %d{n} neurons"

    let param (p: GraphParams) (node: string) (name: string) =
        match p.TryFind node |> Option.bind (Map.tryFind name) with
        | Some t ->
            if not t.IsConcrete then
                fail
                    $"parameter '%s{node}/%s{name}' is traced: the emulator runs on concrete values (for gradients, use Hil with its observables)"

            t
        | None -> fail $"the parameters have no '%s{node}/%s{name}'"

    /// Per neuron: the target from the parameters plus the mean deviation of its circuits.
    let realise (chip: ChipInstance) (trim: Trim) (fpn: bool) (perUnit: float) (placed: PlacedPopulation) (p: GraphParams) =
        let n = placed.Size

        let target name =
            perNeuron placed.Node name n (param p placed.Node name)

        let deviation (k: CircuitParameter) =
            Array.init n (fun j ->
                if fpn then
                    placed.Circuits[j] |> Array.averageBy (Chip.deviation chip trim k)
                else
                    0.0)

        let gain (g: float[]) =
            Array.init n (fun j ->
                if fpn then
                    placed.Circuits[j] |> Array.averageBy (fun c -> g[c])
                else
                    0.0)

        let relative name k =
            Array.map2 (fun t d -> t * (1.0 + d)) (target name) (deviation k)

        let volts name k =
            Array.map2 (fun t d -> t + d / perUnit) (target name) (deviation k)

        let lifOnly name k =
            if placed.Spiking then
                volts name k
            else
                Array.create n Double.PositiveInfinity

        {
            TauMem = relative "tauMem" CircuitParameter.TauMem
            TauSyn = relative "tauSyn" CircuitParameter.TauSyn
            VLeak = volts "vLeak" CircuitParameter.Leak
            VTh = lifOnly "vTh" CircuitParameter.Threshold
            VReset =
                (if placed.Spiking then
                     volts "vReset" CircuitParameter.Reset
                 else
                     Array.zeroCreate n)
            GainExcitatory = gain chip.GainExcitatory
            GainInhibitory = gain chip.GainInhibitory
        }

    /// The hardware weights of a model weight matrix: sign constraint and mask applied, then
    /// round(clamp(scale · w, -63, 63)) half away from zero.
    let hardwareWeights (proj: Projection) (scale: float) (w: Tensor) =
        let values = w.ToDoubleArray()

        let signed (x: float) =
            match proj.Sign with
            | Mixed -> x
            | Excitatory -> abs x
            | Inhibitory -> -(abs x)

        let mask =
            match proj.Kind with
            | Sparse m -> m.ToDoubleArray()
            | _ -> null

        let levels = float Bss2Figures.weightLevels

        values
        |> Array.mapi (fun i x ->
            let x = signed x * (if isNull mask then 1.0 else mask[i])
            Math.Round(Math.Clamp(scale * x, -levels, levels), MidpointRounding.AwayFromZero))

    /// The weights the circuits realise [in; out]: w_hw / scale times the postsynaptic neuron's
    /// excitatory or inhibitory gain.
    let realisedWeights (hw: float[]) (outputs: int) (scale: float) (neurons: RealisedNeurons) =
        hw
        |> Array.mapi (fun i q ->
            let k = i % outputs

            let gain =
                if q > 0.0 then
                    neurons.GainExcitatory[k]
                else
                    neurons.GainInhibitory[k]

            q / scale * (1.0 + gain))

    /// The circuits' time loop over [T; B; N] currents, as the software model's fused kernels
    /// compute it (the same operations in the same order, so that an ideal chip gives the same
    /// numbers): v1 = v + (vl - v + i) a (+ noise), held while refractory; i = i b + input; a spike
    /// where v1 > vth outside refractory steps, v <- vreset.
    let inline simulate
        (steps: int)
        (batch: int)
        (n: int)
        (refractory: int)
        (a: ^T[])
        (b: ^T[])
        (vl: ^T[])
        (vth: ^T[])
        (vreset: ^T[])
        (spiking: bool)
        (noise: ^T[])
        (currents: ^T[])
        (spikes: ^T[])
        (membrane: ^T[])
        (current: ^T[])
        =
        let bn = batch * n
        let v = Array.init bn (fun q -> vl[q % n])
        let i = Array.zeroCreate< ^T> bn
        let counter = Array.zeroCreate<int> bn

        let one, zero =
            LanguagePrimitives.GenericOne< ^T>, LanguagePrimitives.GenericZero< ^T>

        for t in 0 .. steps - 1 do
            for q in 0 .. bn - 1 do
                let j = q % n
                let o = t * bn + q
                let vq = v[q]
                let integrated = vq + (vl[j] - vq + i[q]) * a[j]
                let integrated = if isNull noise then integrated else integrated + noise[o]
                let silent = counter[q] > 0
                let v1 = if silent then vq else integrated
                let iq = i[q] * b[j] + currents[o]
                i[q] <- iq
                membrane[o] <- v1
                current[o] <- iq

                if spiking then
                    let spike = not silent && v1 > vth[j]
                    spikes[o] <- (if spike then one else zero)
                    v[q] <- (if spike then vreset[j] else v1)

                    counter[q] <-
                        (if spike then refractory
                         elif silent then counter[q] - 1
                         else 0)
                else
                    v[q] <- v1

    /// The circuits' loop on arrays of one float type (`ofFloats` and `ofTensor` read the inputs
    /// in it, `toTensor` makes the [T; B; N] results): spikes, membrane and current.
    let inline circuits
        (steps: int)
        (batch: int)
        (n: int)
        (refractory: int)
        (neurons: RealisedNeurons)
        (spiking: bool)
        (noise: float[])
        (a: Tensor)
        (b: Tensor)
        (currents: Tensor)
        (ofFloats: float[] -> ^T[])
        (ofTensor: Tensor -> ^T[])
        (toTensor: ^T[] -> Tensor)
        =
        let size = steps * batch * n

        let s, m, c =
            Array.zeroCreate< ^T> size, Array.zeroCreate< ^T> size, Array.zeroCreate< ^T> size

        let nz = if isNull noise then null else ofFloats noise

        simulate
            steps
            batch
            n
            refractory
            (ofTensor a)
            (ofTensor b)
            (ofFloats neurons.VLeak)
            (ofFloats neurons.VTh)
            (ofFloats neurons.VReset)
            spiking
            nz
            (ofTensor currents)
            s
            m
            c

        toTensor s, toTensor m, toTensor c

    /// Linear interpolation of a [T; B·N] sequence on the step grid (step t at time t·dt) at time s.
    let sampleAt (values: float[]) (steps: int) (width: int) (dt: float) (s: float) (q: int) =
        let u = s / dt
        let t0 = min (steps - 1) (int (floor u))
        let t1 = min (steps - 1) (t0 + 1)
        let f = u - float t0
        let v0, v1 = values[t0 * width + q], values[t1 * width + q]
        if t1 = t0 then v0 else v0 + (v1 - v0) * f

    /// The CADC code of a membrane value in model units.
    let cadcCode (perUnit: float) (v: float) =
        let levels = float ((1 <<< Bss2Figures.cadcBits) - 1)
        Math.Clamp(Math.Round(Bss2Figures.cadcAtZero + perUnit * v), 0.0, levels)

    /// The MADC code of a membrane value in model units.
    let madcCode (perUnit: float) (v: float) =
        let levels = float ((1 <<< Bss2Figures.madcBits) - 1)

        Math.Clamp(Math.Round(Bss2Figures.madcPerCadc * (Bss2Figures.cadcAtZero + perUnit * v)), 0.0, levels)

    /// The sample times (model seconds) of a period within a run of `steps` steps of dt.
    let sampleTimes (periodModel: float) (steps: int) (dt: float) =
        let last = float (steps - 1) * dt
        let count = int (floor (last / periodModel + 1e-9)) + 1
        Array.init count (fun k -> float k * periodModel)

    /// CADC codes [S; B·N] of a membrane [T; B·N], and the membrane read back onto the steps:
    /// (code - 80) / 70 interpolated linearly between the samples, held after the last.
    let cadc (perUnit: float) (membrane: float[]) (steps: int) (width: int) (dt: float) (periodModel: float) =
        let times = sampleTimes periodModel steps dt
        let s = times.Length
        let codes = Array.zeroCreate<float> (s * width)

        for k in 0 .. s - 1 do
            for q in 0 .. width - 1 do
                codes[k * width + q] <- cadcCode perUnit (sampleAt membrane steps width dt times[k] q)

        let back = Array.zeroCreate<float> (steps * width)

        for t in 0 .. steps - 1 do
            let time = float t * dt
            let k0 = min (s - 1) (int (floor (time / periodModel + 1e-9)))
            let k1 = min (s - 1) (k0 + 1)
            let f = if k1 = k0 then 0.0 else (time - times[k0]) / periodModel

            for q in 0 .. width - 1 do
                let c0, c1 = codes[k0 * width + q], codes[k1 * width + q]
                let code = c0 + (c1 - c0) * f
                back[t * width + q] <- (code - Bss2Figures.cadcAtZero) / perUnit

        times, codes, back

    /// The spikes of a [T; B·N] run as event buffers [B; capacity]: each spike at the threshold
    /// crossing within its step (the membrane taken linear between step k−1 at (k−1)·dt and step
    /// k at k·dt, as the continuous circuit crosses it), on the FPGA clock, sorted by (time,
    /// neuron) per sample; spikes past the capacity are counted in Overflow.
    let spikeEvents
        (spikes: float[])
        (membrane: float[])
        (steps: int)
        (batch: int)
        (n: int)
        (dt: float)
        (vl: float[])
        (vth: float[])
        (vreset: float[])
        (clock: float)
        (capacity: int)
        (dtype: DType)
        (shape: int[])
        =
        let bn = batch * n
        let times = Array.create (batch * capacity) infinity
        let neurons = Array.create (batch * capacity) -1
        let counts = Array.zeroCreate<int> batch
        let overflow = Array.zeroCreate<int> batch

        for s in 0 .. batch - 1 do
            let found = ResizeArray<struct (float * int)>()

            for t in 0 .. steps - 1 do
                for j in 0 .. n - 1 do
                    let o = t * bn + s * n + j

                    if spikes[o] > 0.0 then
                        let before =
                            if t = 0 then vl[j]
                            elif spikes[o - bn] > 0.0 then vreset[j]
                            else membrane[o - bn]

                        let rise = membrane[o] - before

                        let f =
                            if rise > 0.0 then
                                Math.Clamp((vth[j] - before) / rise, 0.0, 1.0)
                            else
                                1.0

                        let time = (float (t - 1) + f) * dt
                        found.Add(struct (Math.Round(max time 0.0 / clock) * clock, j))

            found.Sort(fun (struct (ta, ja)) (struct (tb, jb)) -> compare (ta, ja) (tb, jb))
            counts[s] <- min capacity found.Count
            overflow[s] <- found.Count - counts[s]

            for q in 0 .. counts[s] - 1 do
                let struct (time, j) = found[q]
                times[s * capacity + q] <- time
                neurons[s * capacity + q] <- j

        EventBuffer(
            (Tensor.FromArray(times, batch, capacity)).Convert dtype,
            Tensor.FromArray(neurons, batch, capacity),
            Tensor.FromArray(counts, batch),
            Tensor.FromArray(overflow, batch),
            shape
        )
