namespace SnnFunc

/// Which adjoint reverse mode (grad, vjp, jacrev) uses through Events.run: EventProp (Wunderlich &
/// Pehle's adjoint equations, reverse-time λ flows, storing event-time state) or Solver (the exact
/// transpose of the tangent-linear solver steps: automatic differentiation through the solver with
/// the implicit-function rule at each spike). Both give the same numbers to rounding; forward
/// mode (jvp, jacfwd) always runs the tangent-linear solver.
type EventGradient =
    | EventProp
    | Solver

/// What an event buffer that fills up does: Report counts the events that did not fit in its
/// Overflow (the simulation itself keeps every spike), Fail raises an error naming the population
/// and the sample.
type OverflowPolicy =
    | Report
    | Fail

/// Settings of an event-driven run.
type EventConfig =
    {
        /// The end of the simulated interval [0, TEnd], in seconds.
        TEnd: float
        /// Spike slots per spiking population per sample.
        Capacity: int
        Gradient: EventGradient
        OnOverflow: OverflowPolicy
        /// More spikes than this at one instant (a zero-delay cascade) is an error.
        MaxEventsPerInstant: int
    }

/// The result of Events.run: per spiking population its spikes; per LI population the exact
/// maximum over [0, TEnd] of each neuron's membrane [B; N] (V(0) = 0 included) and its time.
type EventRun =
    {
        Spikes: Map<string, EventBuffer>
        /// Differentiable (an interior maximum by the envelope theorem, one at an input kink with
        /// the kink's time).
        MaxVoltage: Map<string, Tensor>
        /// Not differentiated (its tangent is taken as zero).
        MaxTime: Map<string, Tensor>
    }

    /// The spikes of a spiking population.
    member r.Item(name: string) =
        match r.Spikes.TryFind name with
        | Some b -> b
        | None ->
            let known = System.String.Join(", ", r.Spikes.Keys)

            let hint =
                if r.MaxVoltage.ContainsKey name then
                    " ('" + name + "' is an LI readout: read its MaxVoltage)"
                else
                    ""

            invalidArg "name" $"EventRun: no spiking population '%s{name}'%s{hint}; the spiking populations are %s{known}"

/// Exact event-driven simulation of graphs of current-based LIF and LI populations, with
/// gradients by EventProp or through the solver (the binding `SnnFunc.Events`).
///
/// The model, the crossing solver and the grazing, f(0) ≥ 0 and tie policies are those of
/// EventSim (its module comment): V = I = 0 at t = 0; an input spike adds w to I; a LIF neuron
/// spikes when V reaches v_th from below, is reset to v_reset and held there for RefractorySteps·Dt
/// of its spec while I decays. Parameters come from the graph's parameters (rank 0 or one per
/// neuron): tauSyn, tauMem, vLeak (and vTh, vReset for LIF), weights [in; out] and delays in
/// seconds (Projection.delaySeconds). Gradients reach all of them and the input spike times.
/// Second-order derivatives are not supported (a clear error).
[<RequireQualifiedAccess>]
module Events =
    open System
    open SnnFunc.EventSim

    /// TEnd 30 ms, 64 slots, EventProp, overflow reported, at most 10 000 spikes per instant.
    let defaults: EventConfig =
        {
            TEnd = 30e-3
            Capacity = 64
            Gradient = EventProp
            OnOverflow = Report
            MaxEventsPerInstant = 10_000
        }

    let private fail (message: string) =
        invalidArg "g" $"Events.run: %s{message}"

    let private param (p: GraphParams) (node: string) (name: string) =
        match p.TryFind node with
        | None -> fail $"the parameters have no entry for '%s{node}'"
        | Some m ->
            match m.TryFind name with
            | Some t -> t
            | None -> fail $"the parameters of '%s{node}' have no '%s{name}'"

    /// Events.run, with the population-by-population forward path of feed-forward graphs
    /// (EventLayered) when `layered`, else always the general event loop (for the tests).
    let internal runForced
        (layered: bool)
        (g: Graph)
        (p: GraphParams)
        (config: EventConfig)
        (inputs: Map<string, EventBuffer>)
        (given: Map<string, EventBuffer>)
        : EventRun =
        if not (config.TEnd > 0.0) || Double.IsInfinity config.TEnd then
            fail $"TEnd must be positive and finite, got %g{config.TEnd}"

        if config.Capacity < 1 then
            fail $"Capacity must be at least 1, got %d{config.Capacity}"

        if config.MaxEventsPerInstant < 1 then
            fail $"MaxEventsPerInstant must be at least 1, got %d{config.MaxEventsPerInstant}"

        let a = GraphCheck.analyse g
        let nodes = g.Nodes

        // Ports (identity transforms) pass through; anything else that is not a source, population
        // or projection is rejected by name.
        for name, node in nodes do
            match node with
            | Op(Identity, _) -> ()
            | Op(t, _) -> fail $"the node '%s{name}' is a transform (%A{t}); only identity ports are supported in event-driven runs"
            | Population(_, neuron) ->
                match neuron.Model with
                | LifModel _
                | LiModel _ -> ()
                | m ->
                    let kind = (sprintf "%A" m).Split(' ')[0]
                    fail $"the population '%s{name}' has the model %s{kind}; event-driven runs support LIF and LI populations"
            | Synapses proj ->
                match proj.Kind with
                | Conv _ -> fail $"the projection '%s{name}' is convolutional; event-driven runs support dense and sparse projections"
                | _ -> ()

                if proj.Bias.IsSome then
                    fail $"the projection '%s{name}' has a bias, which has no meaning for spike arrivals; remove it"

                match proj.Delay with
                | NoDelay
                | Seconds _ -> ()
                | _ ->
                    fail
                        $"the projection '%s{name}' has a delay in time steps; event-driven runs take delays in seconds (Projection.delaySeconds)"
            | Source _ -> ()

        for KeyValue(name, _) in inputs do
            match a.Nodes.TryFind name with
            | Some(Source _) -> ()
            | Some _ -> fail $"an input is given for '%s{name}', which is not a source"
            | None -> fail $"an input is given for '%s{name}', but the graph has no such node"

        let sources =
            nodes
            |> List.choose (fun (n, node) ->
                match node with
                | Source s -> Some(n, s)
                | _ -> None)

        if sources.IsEmpty then
            fail "the graph has no source"

        let buffers =
            sources
            |> List.map (fun (n, shape) ->
                match inputs.TryFind n with
                | None -> fail $"no input is given for the source '%s{n}'"
                | Some buf ->
                    if buf.Shape <> shape then
                        fail
                            $"the events for '%s{n}' are of a population of shape %s{Shape.format buf.Shape}, the source has %s{Shape.format shape}"

                    if buf.Times.Rank <> 2 then
                        fail $"the events for '%s{n}' must be [batch; capacity], got %s{Shape.format buf.Times.Shape}"

                    buf)

        let batch = buffers.Head.Times.ShapeRef[0]
        let dtype = buffers.Head.Times.DType

        for (n, _), buf in List.zip sources buffers do
            if buf.Times.ShapeRef[0] <> batch then
                fail $"the events for '%s{n}' have %d{buf.Times.ShapeRef[0]} samples, those for '%s{fst sources.Head}' %d{batch}"

        let ns = sources.Length

        let popNodes =
            nodes
            |> List.choose (fun (n, node) ->
                match node with
                | Population(s, neu) -> Some(n, s, neu)
                | _ -> None)

        let args = ResizeArray<Tensor>()
        let sizes = ResizeArray<int>()

        // Event buffers take three runs of slots: all their times, then neurons, then counts.
        let addBuffers (bufs: EventBuffer seq) =
            for buf in bufs do
                args.Add(buf.Times.Convert dtype)
                sizes.Add buf.Capacity

            for buf in bufs do
                args.Add buf.Neurons
                sizes.Add 0

            for buf in bufs do
                args.Add buf.Count
                sizes.Add 0

        addBuffers buffers

        let mutable spk = 0
        let mutable ro = 0

        let pops =
            popNodes
            |> List.mapi (fun k (name, shape, neuron) ->
                let n = Shape.count shape
                let slot = args.Count

                let spiking, tref, names =
                    match neuron.Model with
                    | LifModel s -> true, float s.RefractorySteps * s.Dt, [ "tauSyn"; "tauMem"; "vLeak"; "vTh"; "vReset" ]
                    | _ -> false, 0.0, [ "tauSyn"; "tauMem"; "vLeak" ]

                for q in names do
                    let t = (param p name q).Convert dtype

                    let t =
                        if t.Rank = 0 then
                            t.BroadcastTo [| n |]
                        elif t.Count = n then
                            t.Reshape [| n |]
                        else
                            fail
                                $"the parameter '%s{q}' of '%s{name}' has shape %s{Shape.format t.Shape}; it must be rank 0 or of the population's shape %s{Shape.format shape}"

                    args.Add t
                    sizes.Add n

                let out = if spiking then spk else ro
                if spiking then spk <- spk + 1 else ro <- ro + 1

                {
                    Name = name
                    Index = k
                    N = n
                    Spiking = spiking
                    TRef = tref
                    Slot = slot
                    Emitter = (if spiking then ns + out else -1)
                    OutIndex = out
                })
            |> Array.ofList

        let popIndex = pops |> Array.map (fun pl -> pl.Name, pl) |> Map.ofArray
        let srcIndex = sources |> List.mapi (fun k (n, _) -> n, k) |> Map.ofList

        // Through identity ports to the source or population a signal comes from / goes to.
        let rec origin (n: string) =
            match a.Nodes[n] with
            | Op(Identity, _) ->
                match a.Preds[n] with
                | [ q ] -> origin q
                | _ -> fail $"the port '%s{n}' must have exactly one input"
            | _ -> n

        let rec targets (n: string) : string list =
            a.Succs[n]
            |> List.collect (fun s ->
                match a.Nodes[s] with
                | Op(Identity, _) -> targets s
                | _ -> [ s ])

        let projs = ResizeArray<ProjLayout>()

        for name, node in nodes do
            match node with
            | Synapses proj ->
                let src = origin a.Preds[name].Head

                let emitter, srcN =
                    match srcIndex.TryFind src, popIndex.TryFind src with
                    | Some k, _ -> k, Shape.count (snd sources[k])
                    | None, Some pl when pl.Spiking -> pl.Emitter, pl.N
                    | None, Some _ -> fail $"the projection '%s{name}' reads the LI population '%s{src}', which emits no spikes"
                    | _ -> fail $"the projection '%s{name}' reads '%s{src}', which is not a source or a population"

                let w0 = (param p name "weight").Convert dtype

                let w =
                    match proj.Sign with
                    | Mixed -> w0
                    | Excitatory -> w0.Abs()
                    | Inhibitory -> -(w0.Abs())

                let w =
                    match proj.Kind with
                    | Sparse mask -> w * mask.Convert dtype
                    | _ -> w

                let wSlot = args.Count

                for tgt in targets name do
                    match popIndex.TryFind tgt with
                    | None -> fail $"the projection '%s{name}' feeds '%s{tgt}', which is not a population"
                    | Some pl ->
                        if w.Shape <> [| srcN; pl.N |] then
                            fail $"the weight of '%s{name}' has shape %s{Shape.format w.Shape}; [%d{srcN}; %d{pl.N}] is needed"

                let tgts = targets name

                if not tgts.IsEmpty then
                    args.Add w
                    sizes.Add w.Count

                    let dKind, dSlot =
                        match proj.Delay with
                        | Seconds _ ->
                            let d = (param p name "delay").Convert dtype
                            let tgtN = popIndex[tgts.Head].N

                            let kind =
                                if d.Rank = 0 then
                                    1
                                elif d.Shape = [| srcN |] then
                                    2
                                elif d.Shape = [| srcN; tgtN |] then
                                    3
                                else
                                    fail
                                        $"the delay of '%s{name}' has shape %s{Shape.format d.Shape}; rank 0, [%d{srcN}] or [%d{srcN}; %d{tgtN}] is needed"

                            args.Add d
                            sizes.Add d.Count
                            kind, args.Count - 1
                        | _ -> 0, -1

                    for tgt in tgts do
                        let pl = popIndex[tgt]

                        projs.Add
                            {
                                Name = name
                                Src = emitter
                                SrcN = srcN
                                Tgt = pl.Index
                                TgtN = pl.N
                                WSlot = wSlot
                                DKind = dKind
                                DSlot = dSlot
                            }
            | _ -> ()

        // A population fed directly (not through a projection) would need a current, not spikes.
        for pl in pops do
            for q in a.Preds[pl.Name] do
                match a.Nodes[origin q] with
                | Synapses _ -> ()
                | _ -> fail $"the population '%s{pl.Name}' receives '%s{q}' directly; connect it through a projection (Graph.connect)"

        // Given spikes, each for a spiking population of the graph, in the population order.
        for KeyValue(name, _) in given do
            match popIndex.TryFind name with
            | Some pl when pl.Spiking -> ()
            | Some _ -> fail $"spikes are given for '%s{name}', an LI population, which emits none"
            | None -> fail $"spikes are given for '%s{name}', which is not a population of the graph"

        let forcedPops = pops |> Array.filter (fun pl -> given.ContainsKey pl.Name)

        let forcedBuffers =
            forcedPops
            |> Array.map (fun pl ->
                let buf = given[pl.Name]

                if buf.Times.Rank <> 2 || buf.Times.ShapeRef[0] <> batch then
                    fail
                        $"the spikes given for '%s{pl.Name}' must be [%d{batch}; capacity] like the inputs, got %s{Shape.format buf.Times.Shape}"

                if
                    buf.Overflow.IsConcrete
                    && buf.Overflow.ToInt32Array() |> Array.exists (fun o -> o > 0)
                then
                    fail
                        $"the spikes given for '%s{pl.Name}' overflowed their buffer (Overflow > 0): they are incomplete; record them with a larger capacity"

                if Shape.count buf.Shape <> pl.N then
                    fail $"the spikes given for '%s{pl.Name}' are of %d{Shape.count buf.Shape} neurons, the population has %d{pl.N}"

                buf)

        addBuffers forcedBuffers

        let forcedOf =
            pops
            |> Array.map (fun pl ->
                Array.tryFindIndex (fun (f: PopLayout) -> f.Name = pl.Name) forcedPops
                |> Option.defaultValue -1)

        let nEm = ns + spk
        let projArr = projs.ToArray()

        let layout =
            {
                Sources =
                    sources
                    |> List.mapi (fun k (n, s) ->
                        {
                            Name = n
                            N = Shape.count s
                            Emitter = k
                            Slot = k
                        })
                    |> Array.ofList
                Pops = pops
                Projs = projArr
                Outgoing =
                    Array.init nEm (fun e ->
                        projArr
                        |> Array.indexed
                        |> Array.filter (fun (_, j) -> j.Src = e)
                        |> Array.map fst)
                EmitterPop =
                    Array.init nEm (fun e ->
                        if e < ns then
                            -1
                        else
                            (pops |> Array.find (fun pl -> pl.Emitter = e)).Index)
                SlotSize = sizes.ToArray()
                NSlots = args.Count
                TEnd = config.TEnd
                Capacity = config.Capacity
                MaxPerInstant = config.MaxEventsPerInstant
                FailOnOverflow = (config.OnOverflow = Fail)
                UseEventProp = (config.Gradient = EventProp)
                ForcedOf = forcedOf
                NForced = forcedPops.Length
            }

        let perSample = Array.init layout.NSlots (EventKernelHelpers.isEventSlot layout)

        let outs =
            Tensor.ApplyCustom(EventForward(layout, perSample, layered), args.ToArray())

        ignore batch

        {
            Spikes =
                layout.Spiking
                |> Array.map (fun pl ->
                    let r = pl.OutIndex

                    let shape =
                        Array.ofList
                            [
                                yield!
                                    (match a.Nodes[pl.Name] with
                                     | Population(s, _) -> s
                                     | _ -> [| pl.N |])
                            ]

                    pl.Name, EventBuffer(outs[4 * r], outs[4 * r + 1], outs[4 * r + 2], outs[4 * r + 3], shape))
                |> Map.ofArray
            MaxVoltage =
                layout.Readouts
                |> Array.map (fun pl -> pl.Name, outs[4 * spk + 2 * pl.OutIndex])
                |> Map.ofArray
            MaxTime =
                layout.Readouts
                |> Array.map (fun pl -> pl.Name, outs[4 * spk + 2 * pl.OutIndex + 1])
                |> Map.ofArray
        }

    /// Runs the graph event-driven on `inputs` (one EventBuffer [B; cap] per source, of the
    /// source's shape): every sample in parallel in one kernel call.
    let run (g: Graph) (p: GraphParams) (config: EventConfig) (inputs: Map<string, EventBuffer>) : EventRun =
        runForced true g p config inputs Map.empty

    /// Events.run with the spikes of the populations in `given` taken as given rather than solved
    /// (jaxsnn's hardware replay: spike times measured on a chip as the root solver's solutions).
    /// The run's other events follow from them: the currents they cause downstream, the
    /// membranes they reset. Their times in the result are the given ones, and their derivatives
    /// those of the model's threshold crossing at those times, −(∂V/∂θ) / V̇ with V̇ from the
    /// replayed current at v_th, so that EventProp (or the solver's adjoint) runs along the
    /// given trajectory. Given spikes past TEnd are ignored; more than Capacity overflow as usual.
    let replay
        (g: Graph)
        (p: GraphParams)
        (config: EventConfig)
        (inputs: Map<string, EventBuffer>)
        (given: Map<string, EventBuffer>)
        : EventRun =
        runForced true g p config inputs given

    let internal runWith (layered: bool) (g: Graph) (p: GraphParams) (config: EventConfig) (inputs: Map<string, EventBuffer>) : EventRun =
        runForced layered g p config inputs Map.empty

    /// The first spike time of each neuron [B; N] (+inf where silent, zero gradient there): the design's
    /// name for EventBuffer.firstSpikeTimes.
    let firstSpikeTimes (events: EventBuffer) : Tensor = EventBuffer.firstSpikeTimes events

    /// The spike count of each neuron [B; N] (no gradient): EventBuffer.spikeCounts.
    let spikeCounts (events: EventBuffer) : Tensor = EventBuffer.spikeCounts events

    /// A remedy for silent neurons (Göltz et al.'s weight bumping, reference §3.6): the
    /// parameters with `amount` added to every incoming weight of each neuron of `population`
    /// that spiked in no sample of `run`. Call it between training steps when a layer goes quiet;
    /// concrete values only.
    let bumpSilent (amount: float) (population: string) (g: Graph) (p: GraphParams) (run: EventRun) : GraphParams =
        let counts = (spikeCounts run[population]).ToDoubleArray()
        let n = Shape.count run[population].Shape
        let batch = counts.Length / n

        let silent =
            Array.init n (fun j -> Seq.forall (fun b -> counts[b * n + j] = 0.0) (seq { 0 .. batch - 1 }))

        if not (Array.exists id silent) then
            p
        else
            let a = GraphCheck.analyse g

            let mask =
                Tensor.FromArray(silent |> Array.map (fun s -> if s then amount else 0.0), n)

            a.Preds[population]
            |> List.fold
                (fun (acc: GraphParams) syn ->
                    match a.Nodes[syn] with
                    | Synapses _ ->
                        let m = acc[syn]
                        let w = m["weight"]
                        acc.Add(syn, m.Add("weight", w + mask.Convert w.DType))
                    | _ -> acc)
                p
