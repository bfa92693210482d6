/// Hardware-in-the-loop, time-stepped (hxtorch.snn's scheme, bss2.md 5.1): the forward values are a
/// backend's observed spikes and membranes; the derivative is the software model's surrogate
/// BPTT evaluated along the observed trajectory. At each step the model's membrane and spikes are
/// replaced by the observed ones (`substitute`: the value of the observation, the derivative of the
/// model), and the model skips its reset, which the observed membrane already holds. Made of tensor
/// operations and Ad.scan only, so it is closed under every transform.
[<RequireQualifiedAccess>]
module SnnFunc.Backends.Hil

open SnnFunc

let private fail (message: string) : 'a = invalidArg "graph" $"Hil: %s{message}"

/// `observed` as the value and `model`'s derivative: observed + (model - stopGradient model),
/// which is exactly `observed` for a finite model value (hxtorch's "Unterjubel").
let substitute (model: Tensor) (observed: Tensor) : Tensor =
    Ad.stopGradient observed + (model - Ad.stopGradient model)

let private param (p: GraphParams) (node: string) (name: string) =
    match p.TryFind node |> Option.bind (Map.tryFind name) with
    | Some t -> t
    | None -> fail $"the parameters have no '%s{node}/%s{name}'"

/// The graph's observables with the backend's values and the software model's derivative:
/// `observed` is a backend run of the same graph, parameters (their primal values) and inputs,
/// recording every population. The populations `measured` names take the observed membrane as
/// well as the observed spikes; the others only the spikes: their model membrane integrates on
/// its own and is reset by the observed spikes (for a chip whose membrane samples are coarser
/// than the model's step, where they would misplace the surrogate's peak). Spikes and Membrane of
/// each population carry the derivatives.
let runWith
    (measured: string -> bool)
    (g: Graph)
    (p: GraphParams)
    (config: RunConfig)
    (inputs: Map<string, Tensor>)
    (observed: Observables)
    : RunResult =
    let placement = Placement.place g

    let preds n = placement.Preds[n]
    let signals = System.Collections.Generic.Dictionary<string, Tensor>()
    let out = System.Collections.Generic.Dictionary<string, Observed>()

    let seen (n: string) =
        match observed.Dense.Observed.TryFind n with
        | Some o when not (isNull o.Membrane) || not (measured n) -> o
        | Some _ -> fail $"the observables have no membrane of population '%s{n}'"
        | None -> fail $"the observables have no population '%s{n}' (record every population in the backend run)"

    for n in placement.Order do
        match g.Node n with
        | Source _ ->
            match inputs.TryFind n with
            | Some x -> signals[n] <- x.Reshape [| x.Shape[0]; x.Shape[1]; -1 |]
            | None -> fail $"no input for source '%s{n}'"
        | Op _ -> signals[n] <- signals[(preds n).Head]
        | Synapses proj ->
            let x = signals[(preds n).Head]
            let w = (Projection.effectiveWeights proj (param p n "weight")).Convert x.DType
            signals[n] <- Fused.spikeMatmul x w
        | Population(_, neuron) ->
            let o = seen n
            let currents = preds n |> List.map (fun s -> signals[s]) |> List.reduce (+)
            let like = currents
            let get name = (param p n name).Convert like.DType

            let a, b, vth, vReset, spiking, surrogate =
                match neuron.Model with
                | LifModel s ->
                    let c = Snn.Lif.config s

                    let lp: Snn.Lif.Params =
                        {
                            TauSyn = get "tauSyn"
                            TauMem = get "tauMem"
                            VLeak = get "vLeak"
                            VTh = get "vTh"
                            VReset = get "vReset"
                        }

                    let a, b = Snn.Lif.decays c lp like
                    a, b, lp.VTh, lp.VReset, true, s.Surrogate
                | LiModel s ->
                    let lp: Snn.Li.Params =
                        {
                            TauSyn = get "tauSyn"
                            TauMem = get "tauMem"
                            VLeak = get "vLeak"
                        }

                    let a, b = Snn.Li.decays (Snn.Li.config s) lp like
                    a, b, null, null, false, Surrogate.superSpike 100.0
                | _ -> fail $"population '%s{n}' is not LIF or LI"

            let vl = get "vLeak"
            let useMembrane = measured n
            let zeros = Tensor.ZerosLike currents
            let vHw = if useMembrane then o.Membrane.Convert like.DType else zeros
            let zHw = if spiking then o.Spikes.Convert like.DType else zeros
            let lane = currents.Shape[1..]
            let zero = Tensor.Full(lane, 0.0, like.DType)

            // The circuit starts at rest, at its leak; as in the software model (which starts at
            // 0) the initial state has no derivative.
            let step (v: Tensor, i: Tensor) (c: Tensor, vh: Tensor, zh: Tensor) =
                let integrated = v + (vl - v + i) * a
                let v1 = if useMembrane then substitute integrated vh else integrated
                let i1 = i * b + c

                let z =
                    if spiking then
                        substitute (Snn.spike surrogate (v1 - vth)) zh
                    else
                        v1

                // A measured membrane holds the reset already; a model membrane is reset by the
                // observed spikes (the software model's reset, its derivative detached).
                let next =
                    if useMembrane || not spiking then
                        v1
                    else
                        let zs = Ad.stopGradient z
                        v1 * (1.0 - zs) + zs * vReset

                (next, i1), (z, v1)

            let _, (z, v) = Ad.scan step (zero + Ad.stopGradient vl, zero) (currents, vHw, zHw)
            signals[n] <- (if spiking then z else v)

            out[n] <-
                {
                    Output = signals[n]
                    Spikes = (if spiking then z else null)
                    Membrane = v
                    Current = null
                }

    {
        Observed = out |> Seq.map (fun kv -> kv.Key, kv.Value) |> Map.ofSeq
        Final = Map.empty
    }

/// runWith every population's observed membrane (hxtorch.snn's default with CADC recording).
let run (g: Graph) (p: GraphParams) (config: RunConfig) (inputs: Map<string, Tensor>) (observed: Observables) : RunResult =
    runWith (fun _ -> true) g p config inputs observed

/// Hardware-in-the-loop, event-based (jaxsnn's scheme, bss2.md 5.2): the chip returns spike
/// times only; a software replay takes them as the root solver's solutions (Events.replay with
/// every spiking population's observed spikes given), which reconstructs the synaptic currents
/// at those times, and EventProp (or the solver's adjoint, as `config` says) runs on them. The
/// run's spike times are the chip's; their derivatives the software model's crossing rule. An LI
/// population's maximum is the model's, driven by the observed spikes. Closed under the
/// first-order transforms, as Events.run is.
let runEvents (g: Graph) (p: GraphParams) (config: EventConfig) (inputs: Map<string, EventBuffer>) (observed: Observables) : EventRun =
    let given =
        g.Nodes
        |> List.choose (fun (n, node) ->
            match node with
            | Population(_, neuron) ->
                match neuron.Model with
                | LifModel _ ->
                    match observed.Events.TryFind n with
                    | Some b -> Some(n, b)
                    | None ->
                        fail
                            $"the observables have no spike events of population '%s{n}' (run the backend with event observables, e.g. Bss2Emulator.RunEvents)"
                | _ -> None
            | _ -> None)

    Events.replay g p config inputs (Map given)
