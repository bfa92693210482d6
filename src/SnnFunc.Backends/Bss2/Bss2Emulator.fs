/// The emulator as a backend: places the graph, realises its parameters on one chip instance
/// under a trim, runs the circuits' loop population by population and returns the chip's
/// observables with the hardware-time account.
namespace SnnFunc.Backends

open System
open SnnFunc
open SnnFunc.Backends.EmulatorCore

/// One emulated chip (an instance and its trim) running graphs with a configuration.
type Bss2Emulator(chip: ChipInstance, trim: Trim, config: Bss2Config) =
    do
        let checkScale (what: string) (v: float) =
            if not (v > 0.0) || Double.IsInfinity v then
                invalidArg "config" $"Bss2: %s{what} must be positive and finite, got %g{v}"

        checkScale "WeightScale" config.WeightScale

        for KeyValue(n, v) in config.WeightScales do
            checkScale $"the weight scale of '%s{n}'" v

        for KeyValue(n, v) in config.TraceScales do
            checkScale $"the trace scale of '%s{n}'" v

        if not (config.MembraneNoise >= 0.0) || Double.IsInfinity config.MembraneNoise then
            invalidArg "config" $"Bss2: MembraneNoise must be >= 0 and finite, got %g{config.MembraneNoise}"

        if not (config.CadcPeriod > 0.0) then
            invalidArg "config" $"Bss2: CadcPeriod must be positive, got %g{config.CadcPeriod}"

        if config.SampleGap < 0.0 then
            invalidArg "config" $"Bss2: SampleGap must be >= 0, got %g{config.SampleGap}"

        match trim.ChipSeed with
        | Some seed when seed <> chip.Seed ->
            invalidArg
                "trim"
                $"Bss2: the trim (%s{trim.Description}) was found for chip seed %d{seed}, and this chip is seed %d{chip.Seed}: calibrate this chip (Calibration.calibrate)"
        | _ -> ()

    member _.Chip = chip
    member _.Trim = trim
    member _.Config = config

    /// The same chip with another configuration (e.g. a fresh trial key).
    member _.With(c: Bss2Config) = Bss2Emulator(chip, trim, c)

    /// The realised per-neuron parameters of every population of a placed graph.
    member private _.RealisedOn(placement: Placement, parameters: GraphParams) =
        placement.Populations
        |> Map.map (fun n placed -> realise chip trim config.FixedPatternNoise (Bss2Config.codesPerUnit config n) placed parameters)

    /// The realised per-neuron parameters of every population of a graph.
    member e.Realised(graph: Graph, parameters: GraphParams) =
        e.RealisedOn(Placement.place graph, parameters)

    /// The circuits' run; with `anyStep` the populations step at the run's dt whatever their specs
    /// say (an event-based graph's Dt is only the unit of its refractory period).
    /// Event times come in `eventsDType` (default: the run's).
    member private e.RunStepped
        (graph: Graph, parameters: GraphParams, inputs: Map<string, Tensor>, rc: RunConfig, anyStep: bool, eventsDType: DType option)
        =
        let placement = Placement.place graph
        let steps, dt = rc.Steps, rc.Dt

        let preds n = placement.Preds[n]
        let signals = Collections.Generic.Dictionary<string, Tensor>()
        let observed = Collections.Generic.Dictionary<string, Observed>()
        let raw = Collections.Generic.Dictionary<string, Tensor>()
        let rawTimes = Collections.Generic.Dictionary<string, float[]>()
        let events = Collections.Generic.Dictionary<string, EventBuffer>()
        let mutable batch = -1
        let mutable dtype = Float32

        let record =
            match rc.Record with
            | Some names -> Set.ofList names
            | None -> placement.Populations |> Map.keys |> Set.ofSeq

        let realised = e.RealisedOn(placement, parameters)

        // The population a projection feeds (its gains scale the projection's weights).
        let target (projection: string) =
            match graph.Edges |> List.filter (fun (s, _) -> s = projection) with
            | [ _, t ] when placement.Populations.ContainsKey t -> t
            | _ -> fail $"projection '%s{projection}' must feed exactly one population"

        let modelClock = Bss2Figures.timestampClock * Bss2Figures.acceleration

        for n in placement.Order do
            match graph.Node n with
            | Source shape ->
                let x =
                    match inputs.TryFind n with
                    | Some x -> x
                    | None -> fail $"no input for source '%s{n}'"

                if not x.IsConcrete then
                    fail $"the input '%s{n}' is traced: the emulator runs on concrete values"

                let size = Array.fold (*) 1 shape

                if x.Rank < 2 || x.Shape[0] <> steps || Array.fold (*) 1 x.Shape[2..] <> size then
                    fail $"the input '%s{n}' has shape %s{Shape.format x.Shape}; it needs [%d{steps}; batch; %s{Shape.format shape}]"

                if batch >= 0 && x.Shape[1] <> batch then
                    fail $"the input '%s{n}' has batch %d{x.Shape[1]}, another input %d{batch}"

                batch <- x.Shape[1]
                dtype <- x.DType
                signals[n] <- x.Reshape [| steps; batch; size |]
            | Op _ -> signals[n] <- signals[(preds n).Head]
            | Synapses proj ->
                let source = signals[(preds n).Head]
                let post = target n
                let neurons = realised[post]
                let w = param parameters n "weight"
                let outputs = placement.Populations[post].Size
                let scale = Bss2Config.weightScaleOf config n
                let hw = hardwareWeights proj scale w
                let weights = realisedWeights hw outputs scale neurons
                let wt = (Tensor.FromArray(weights, w.Shape)).Convert dtype
                let inputs = source.Shape[2]
                let y = Fused.spikeMatmul source wt
                signals[n] <- y.Reshape [| steps; batch; outputs |]
            | Population(_, neuron) ->
                let placed = placement.Populations[n]
                let size = placed.Size

                let currents =
                    match preds n |> List.map (fun s -> signals[s]) with
                    | [] -> Tensor.Full([| steps; batch; size |], 0.0, dtype)
                    | first :: rest -> List.fold (+) first rest

                let r = realised[n]

                let stepDt, refractory =
                    match neuron.Model with
                    | LifModel s -> s.Dt, s.RefractorySteps
                    | LiModel s -> s.Dt, 0
                    | _ -> fail $"population '%s{n}' is not LIF or LI"

                let refractory =
                    if anyStep then
                        int (Math.Round(float refractory * stepDt / dt))
                    else
                        refractory

                if not anyStep && abs (stepDt - dt) > 1e-12 * dt then
                    fail $"population '%s{n}' steps %g{stepDt} s but the run steps %g{dt} s"

                let vec (x: float[]) = (Tensor.FromArray x).Convert dtype
                let taus = vec r.TauMem, vec r.TauSyn

                let lifParams: Snn.Lif.Params =
                    {
                        TauSyn = snd taus
                        TauMem = fst taus
                        VLeak = vec r.VLeak
                        VTh = vec r.VTh
                        VReset = vec r.VReset
                    }

                let lifConfig: Snn.Lif.Config =
                    {
                        Dt = dt
                        Reset = Snn.ToValue
                        Surrogate = Surrogate.superSpike 100.0
                        RefractorySteps = refractory
                    }

                // The software model's own decay factors of the realised time constants.
                let a, b = Snn.Lif.decays lifConfig lifParams lifParams.VLeak
                let bn = batch * size

                // Noise of stationary std σ on a resting membrane: per step σ · sqrt(1 - (1 - a)²).
                let noise =
                    if config.MembraneNoise = 0.0 then
                        null
                    else
                        let amp =
                            a.ToDoubleArray()
                            |> Array.map (fun a ->
                                Bss2Config.traceScaleOf config n
                                * config.MembraneNoise
                                * sqrt (1.0 - (1.0 - a) * (1.0 - a)))

                        let key =
                            SnnFunc.Random.foldIn config.TrialKey (List.findIndex ((=) n) placement.Order)

                        // Drawn in Float32 whatever the run's dtype: a Float32 pair costs one block of the
                        // counter-based stream, and the noise draws are most of an event run's time.
                        let xi = (SnnFunc.Random.normalAs Float32 key [| steps; bn |]).ToDoubleArray()
                        Array.mapi (fun o x -> x * amp[o % size]) xi

                let shape = [| steps; batch; size |]

                let spikes, membrane, current =
                    match dtype with
                    | Float64 ->
                        circuits steps batch size refractory r placed.Spiking noise a b currents id (fun t -> t.ToDoubleArray()) (fun x ->
                            Tensor.FromArray(x, shape))
                    | _ ->
                        circuits
                            steps
                            batch
                            size
                            refractory
                            r
                            placed.Spiking
                            noise
                            a
                            b
                            currents
                            (Array.map float32)
                            (fun t -> t.ToArray())
                            (fun x -> Tensor.FromArray(x, shape))

                signals[n] <- (if placed.Spiking then spikes else membrane)

                if record.Contains n then
                    let periodModel = config.CadcPeriod * Bss2Figures.acceleration

                    let readMembrane, readCurrent =
                        match config.Readout with
                        | Exact -> membrane, current
                        | Cadc ->
                            let times, codes, back =
                                cadc (Bss2Config.codesPerUnit config n) (membrane.ToDoubleArray()) steps bn dt periodModel

                            raw[$"cadc/%s{n}"] <- Tensor.FromArray(codes, [| times.Length; batch; size |])
                            rawTimes[$"cadc/%s{n}"] <- times
                            (Tensor.FromArray(back, shape)).Convert dtype, null

                    observed[n] <-
                        {
                            Output = (if placed.Spiking then spikes else readMembrane)
                            Spikes = (if placed.Spiking then spikes else null)
                            Membrane = readMembrane
                            Current = readCurrent
                        }

                    if placed.Spiking then
                        events[n] <-
                            spikeEvents
                                (spikes.ToDoubleArray())
                                (membrane.ToDoubleArray())
                                steps
                                batch
                                size
                                dt
                                r.VLeak
                                r.VTh
                                r.VReset
                                modelClock
                                config.EventCapacity
                                (eventsDType |> Option.defaultValue dtype)
                                [| size |]

                match config.Madc with
                | Some(node, neuronIndex) when node = n ->
                    if neuronIndex < 0 || neuronIndex >= size then
                        fail $"the MADC neuron %d{neuronIndex} is outside population '%s{n}' of %d{size}"

                    let m = membrane.ToDoubleArray()
                    let periodModel = Bss2Figures.acceleration / Bss2Figures.madcRate
                    let times = sampleTimes periodModel steps dt

                    let codes =
                        Array.init (times.Length * batch) (fun o ->
                            let k, s = o / batch, o % batch
                            madcCode (Bss2Config.codesPerUnit config n) (sampleAt m steps bn dt times[k] (s * size + neuronIndex)))

                    raw["madc"] <- Tensor.FromArray(codes, [| times.Length; batch |])
                    rawTimes["madc"] <- times
                | _ -> ()

        match config.Madc with
        | Some(node, _) when not (placement.Populations.ContainsKey node) -> fail $"the MADC records '%s{node}', which is no population"
        | _ -> ()

        let perSample = float steps * dt / Bss2Figures.acceleration + config.SampleGap
        let samples = max batch 0

        {
            Dense =
                {
                    Observed = observed |> Seq.map (fun kv -> kv.Key, kv.Value) |> Map.ofSeq
                    Final = Map.empty
                }
            Events = events |> Seq.map (fun kv -> kv.Key, kv.Value) |> Map.ofSeq
            Raw = raw |> Seq.map (fun kv -> kv.Key, kv.Value) |> Map.ofSeq
            RawTimes = rawTimes |> Seq.map (fun kv -> kv.Key, kv.Value) |> Map.ofSeq
            Account =
                Some
                    {
                        Samples = samples
                        BackendSeconds = perSample * float samples
                        SamplesPerSecond = 1.0 / perSample
                        JoulesPerSample = Bss2Figures.power * perSample
                    }
        }

    member e.Run(graph: Graph, parameters: GraphParams, inputs: Map<string, Tensor>, rc: RunConfig) : Observables =
        e.RunStepped(graph, parameters, inputs, rc, false, None)

    /// Runs a graph on event inputs, the chip's spike-time view (jaxsnn's): the input events are
    /// sent on the step grid of `dt` (the nearest step), the circuits run to `tEnd`, and every
    /// population is recorded; Events holds each spiking population's spikes at their threshold
    /// crossings on the 8 ns clock. The membrane readout is exact (no CADC conversion: an
    /// event-based experiment reads spikes only).
    member e.RunEvents(graph: Graph, parameters: GraphParams, inputs: Map<string, EventBuffer>, tEnd: float, dt: float) : Observables =
        if not (dt > 0.0) || not (tEnd >= dt) || Double.IsInfinity tEnd then
            invalidArg "tEnd" $"Bss2.RunEvents: tEnd (%g{tEnd} s) and dt (%g{dt} s) must be finite with tEnd >= dt > 0"

        let steps = int (Math.Round(tEnd / dt)) + 1
        // The circuits run in Float32 (as the software model's fast kernels); the event times are
        // computed in Float64 and returned in the inputs' dtype.
        let dense =
            inputs |> Map.map (fun _ b -> (EventBuffer.toDense b steps dt).Convert Float32)

        let dtype = inputs |> Seq.tryHead |> Option.map (fun kv -> kv.Value.Times.DType)

        let rc = RunConfig.steps steps dt
        e.With({ config with Readout = Exact }).RunStepped(graph, parameters, dense, rc, true, dtype)

    interface IBackend with
        member _.Capabilities =
            {
                Name = "bss2-emulator"
                NeuronModels = [ "LIF"; "LI" ]
                WeightLevels = Some Bss2Figures.weightLevels
                MaxNeurons = Some Bss2Figures.neuronCircuits
                SynapsesPerNeuron = Some Bss2Figures.synapsesPerCircuit
                Readouts = [ "cadc"; "madc"; "events" ]
                Deterministic = config.MembraneNoise = 0.0
                Acceleration = Bss2Figures.acceleration
            }

        member e.Run(graph, parameters, inputs, config) =
            e.Run(graph, parameters, inputs, config)
