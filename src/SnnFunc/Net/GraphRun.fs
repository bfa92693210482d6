/// How a graph runs time-stepped: components in topological order; a node outside any cycle runs
/// over the whole time axis at once (one product for a projection, a fused kernel for a LIF or LI
/// population); a cycle runs as one Ad.scan over time in which a population's output reaches the
/// nodes it feeds within the cycle one step later (the one-step delay of recurrence, as on chips).
module internal SnnFunc.GraphRun

open System
open SnnFunc.NameLists
open System.Collections.Generic
open SnnFunc.GraphCheck
open SnnFunc.RandomBits

// ---------------------------------------------------------------------------------------------
// Neuron models: parameter maps <-> model parameters, states, steps and whole-sequence runs

let internal get (node: string) (m: Map<string, Tensor>) (name: string) =
    match m.TryFind name with
    | Some t -> t
    | None -> fail $"the parameters of '%s{node}' have no '%s{name}' (they have %s{listed (m.Keys)})"

let internal lifParams node (m: Map<string, Tensor>) : Snn.Lif.Params =
    let g = get node m

    {
        TauSyn = g "tauSyn"
        TauMem = g "tauMem"
        VLeak = g "vLeak"
        VTh = g "vTh"
        VReset = g "vReset"
    }

let internal liParams node (m: Map<string, Tensor>) : Snn.Li.Params =
    let g = get node m

    {
        TauSyn = g "tauSyn"
        TauMem = g "tauMem"
        VLeak = g "vLeak"
    }

let private alifParams node (m: Map<string, Tensor>) : Snn.Alif.Params =
    {
        Lif = lifParams node m
        TauAdapt = get node m "tauAdapt"
        Beta = get node m "beta"
    }

let private adexParams node (m: Map<string, Tensor>) : Snn.AdEx.Params =
    let g = get node m

    {
        TauSyn = g "tauSyn"
        TauMem = g "tauMem"
        TauAdapt = g "tauAdapt"
        VLeak = g "vLeak"
        VT = g "vT"
        DeltaT = g "deltaT"
        VTh = g "vTh"
        VReset = g "vReset"
        A = g "a"
        B = g "b"
        TRef = g "tRef"
    }

let private ifParams node (m: Map<string, Tensor>) : Snn.IF.Params =
    {
        VTh = get node m "vTh"
        VReset = get node m "vReset"
    }

/// The spec's value of each parameter of a model, by parameter name.
let private specValues (model: NeuronModel) : (string * float) list =
    match model with
    | LifModel s ->
        [
            "tauSyn", s.TauSyn
            "tauMem", s.TauMem
            "vLeak", s.VLeak
            "vTh", s.VTh
            "vReset", s.VReset
        ]
    | LiModel s -> [ "tauSyn", s.TauSyn; "tauMem", s.TauMem; "vLeak", s.VLeak ]
    | AlifModel s ->
        let l = s.Lif

        [
            "tauSyn", l.TauSyn
            "tauMem", l.TauMem
            "vLeak", l.VLeak
            "vTh", l.VTh
            "vReset", l.VReset
            "tauAdapt", s.TauAdapt
            "beta", s.Beta
        ]
    | AdExModel s ->
        [
            "tauSyn", s.TauSyn
            "tauMem", s.TauMem
            "tauAdapt", s.TauAdapt
            "vLeak", s.VLeak
            "vT", s.VT
            "deltaT", s.DeltaT
            "vTh", s.VTh
            "vReset", s.VReset
            "a", s.A
            "b", s.B
            "tRef", s.TRef
        ]
    | IfModel s -> [ "vTh", s.VTh; "vReset", s.VReset ]
    | NirModel _ -> []

/// A population's initial parameters: per-neuron draws where the neuron asks for them, the
/// spec's value (rank 0) elsewhere; validated, naming the node and the neuron.
let initPopulation (key: Key) (dtype: DType) (name: string) (shape: int[]) (neuron: Neuron) : Map<string, Tensor> =
    let values =
        match neuron.Model with
        | NirModel _ ->
            // NIR neurons have no spec: every parameter comes from its initialiser.
            Neuron.parameterNames neuron.Model
            |> List.map (fun pname ->
                if not (neuron.Inits.ContainsKey pname) then
                    fail $"population '%s{name}': the NIR neuron parameter '%s{pname}' has no value (give it with Neuron.withInit)"

                pname, nan)
        | model -> specValues model

    let keys = Random.splitN key (max 1 values.Length)

    let m =
        values
        |> List.mapi (fun k (pname, v) ->
            pname,
            match neuron.Inits.TryFind pname with
            | Some init -> init.Draw keys[k] shape 1 dtype
            | None -> Tensor.Scalar(v, dtype))
        |> Map.ofList

    let check (f: unit -> unit) =
        try
            f ()
        with :? ArgumentException as e ->
            fail $"population '%s{name}': %s{e.Message}"

    check (fun () ->
        match neuron.Model with
        | LifModel s -> Snn.Lif.validateParams (Snn.Lif.config s) (lifParams name m) |> ignore
        | LiModel s -> Snn.Li.validateParams (Snn.Li.config s) (liParams name m) |> ignore
        | AlifModel s -> Snn.Alif.validateParams (Snn.Alif.config s) (alifParams name m) |> ignore
        | AdExModel s -> Snn.AdEx.validateParams (Snn.AdEx.config s) (adexParams name m) |> ignore
        | IfModel s -> Snn.IF.validateParams (Snn.IF.config s) (ifParams name m) |> ignore
        | NirModel _ -> NeuronParams.checkAllFinite $"population '%s{name}'" (Map.toList m))

    m

/// The state variables of a model, by name, with their zero values for `lane` (batch @ shape).
let stateNames (model: NeuronModel) =
    match model with
    | LifModel _ -> [ "v"; "i"; "refractory" ]
    | LiModel _ -> [ "v"; "i" ]
    | AlifModel _ -> [ "v"; "i"; "a"; "refractory" ]
    | AdExModel _ -> [ "v"; "i"; "w"; "refractory" ]
    | IfModel _ -> [ "v"; "refractory" ]
    | NirModel n ->
        match n.Kind with
        | NirCubaLif
        | NirLif -> [ "v"; "i"; "refractory" ]
        | NirCubaLi
        | NirLi -> [ "v"; "i" ]
        | NirIf -> [ "v"; "refractory" ]
        | NirIntegrator -> [ "v" ]

/// What one step or a whole run of a population yields: output, spikes (or null), membrane,
/// current (or null) and the new state.
type PopulationOut =
    {
        Output: Tensor
        Spikes: Tensor
        Membrane: Tensor
        Current: Tensor
        State: Map<string, Tensor>
    }

/// A NIR neuron in the forms of the LIF/LI/IF dynamics: per-step factors a = dt/τm, b = 1 - dt/τs,
/// the input gain, leak, threshold and reset, in `like`'s dtype. Explicit Euler with step dt, as
/// NIR's reference implementation (the input held for one step): for CubaLIF
///   I += dt/τs (-I + w_in S),  v += dt/τm (v_leak - v + r I)
/// which is SnnFunc's recurrence for i = r I and input currents r w_in dt/τs S; a LIF without
/// synapse is b = 0 and gain r; IF and the integrator add dt r I (dt in the file's time unit).
type private NirForm =
    {
        A: Tensor
        B: Tensor
        Gain: Tensor
        VLeak: Tensor
        VTh: Tensor
        VReset: Tensor
    }

let private nirForm (n: NirNeuron) (name: string) (p: Map<string, Tensor>) (like: Tensor) : NirForm =
    let q k = NeuronParams.like like (get name p k)
    let perStep k = n.Dt / (q k * n.TimeUnit)
    let zero = Tensor.Scalar(0.0, like.DType)
    let opt k = if p.ContainsKey k then q k else zero

    match n.Kind with
    | NirCubaLif
    | NirCubaLi ->
        {
            A = perStep "tau_mem"
            B = 1.0 - perStep "tau_syn"
            Gain = q "r" * q "w_in" * perStep "tau_syn"
            VLeak = q "v_leak"
            VTh = opt "v_threshold"
            VReset = opt "v_reset"
        }
    | NirLif
    | NirLi ->
        {
            A = perStep "tau"
            B = zero
            Gain = q "r"
            VLeak = q "v_leak"
            VTh = opt "v_threshold"
            VReset = opt "v_reset"
        }
    | NirIf
    | NirIntegrator ->
        {
            A = zero
            B = zero
            Gain = q "r" * (n.Dt / n.TimeUnit)
            VLeak = zero
            VTh = opt "v_threshold"
            VReset = opt "v_reset"
        }

/// LIF and LI have no synapse: explicit Euler gives v(t+1) = v + dt/τ (v_leak - v + r S(t)), the
/// step's own input, where SnnFunc's recurrence (and CubaLIF's Euler step) reads the current of
/// the step before. So their current is the step's input, not carried state: a step sets i to it
/// before the update, a whole run starts from i = the first input and feeds the inputs one step
/// ahead (their state's "i" is not read).
let private synapseFree (n: NirNeuron) =
    match n.Kind with
    | NirLif
    | NirLi -> true
    | _ -> false

/// Whole-run currents of a NIR neuron: the initial current and the currents fed to the kernel.
let private nirCurrents (n: NirNeuron) (i0: Tensor) (x: Tensor) =
    if synapseFree n && x.ShapeRef[0] > 0 then
        let steps = x.ShapeRef[0]

        let ahead =
            Tensor.Concat([| x.Narrow(0, 1, steps - 1); Tensor.ZerosLike(x.Narrow(0, 0, 1)) |], 0)

        x.Narrow(0, 0, 1).Squeeze 0, ahead
    else
        i0, x

/// NIR resets to v_reset, without a refractory period.
let private nirLifConfig (n: NirNeuron) : Snn.Lif.Config =
    {
        Dt = n.Dt
        Reset = Snn.ToValue
        Surrogate = n.Surrogate
        RefractorySteps = 0
    }

let private nirIfConfig (n: NirNeuron) : Snn.IF.Config =
    {
        Reset = Snn.ToValue
        Surrogate = n.Surrogate
        RefractorySteps = 0
    }

/// One step of a population from its state map (used inside cycles).
let stepPopulation (model: NeuronModel) (name: string) (p: Map<string, Tensor>) (s: Map<string, Tensor>) (input: Tensor) =
    let st = get name s

    match model with
    | LifModel spec ->
        let s', (z, v, i) =
            Snn.Lif.stepFull
                (Snn.Lif.config spec)
                (lifParams name p)
                {
                    V = st "v"
                    I = st "i"
                    Refractory = st "refractory"
                }
                input

        {
            Output = z
            Spikes = z
            Membrane = v
            Current = i
            State = Map [ "v", s'.V; "i", s'.I; "refractory", s'.Refractory ]
        }
    | LiModel spec ->
        let s', (v, i) =
            Snn.Li.stepFull (Snn.Li.config spec) (liParams name p) { V = st "v"; I = st "i" } input

        {
            Output = v
            Spikes = null
            Membrane = v
            Current = i
            State = Map [ "v", s'.V; "i", s'.I ]
        }
    | AlifModel spec ->
        let state: Snn.Alif.State =
            {
                V = st "v"
                I = st "i"
                A = st "a"
                Refractory = st "refractory"
            }

        let s', z = Snn.Alif.step (Snn.Alif.config spec) (alifParams name p) state input

        {
            Output = z
            Spikes = z
            Membrane = s'.V
            Current = s'.I
            State = Map [ "v", s'.V; "i", s'.I; "a", s'.A; "refractory", s'.Refractory ]
        }
    | AdExModel spec ->
        let state: Snn.AdEx.State =
            {
                V = st "v"
                I = st "i"
                W = st "w"
                Refractory = st "refractory"
            }

        let s', z = Snn.AdEx.step (Snn.AdEx.config spec) (adexParams name p) state input

        {
            Output = z
            Spikes = z
            Membrane = s'.V
            Current = s'.I
            State = Map [ "v", s'.V; "i", s'.I; "w", s'.W; "refractory", s'.Refractory ]
        }
    | IfModel spec ->
        let s', z =
            Snn.IF.step
                (Snn.IF.config spec)
                (ifParams name p)
                {
                    V = st "v"
                    Refractory = st "refractory"
                }
                input

        {
            Output = z
            Spikes = z
            Membrane = s'.V
            Current = null
            State = Map [ "v", s'.V; "refractory", s'.Refractory ]
        }
    | NirModel n ->
        let f = nirForm n name p input
        let x = input * f.Gain
        // Without a synapse the membrane integrates this step's input (see synapseFree).
        let iNow () = if synapseFree n then x else st "i"

        match n.Kind with
        | NirCubaLif
        | NirLif ->
            let state: Snn.Lif.State =
                {
                    V = st "v"
                    I = iNow ()
                    Refractory = st "refractory"
                }

            let s', (z, v, i) =
                Snn.Lif.stepWithDecays (nirLifConfig n) (f.A, f.B, f.VLeak, f.VTh, f.VReset) state x

            {
                Output = z
                Spikes = z
                Membrane = v
                Current = i
                State = Map [ "v", s'.V; "i", s'.I; "refractory", s'.Refractory ]
            }
        | NirCubaLi
        | NirLi ->
            let s', (v, i) =
                Snn.Li.stepWithDecays (f.A, f.B, f.VLeak) { V = st "v"; I = iNow () } x

            {
                Output = v
                Spikes = null
                Membrane = v
                Current = i
                State = Map [ "v", s'.V; "i", s'.I ]
            }
        | NirIf ->
            let s', z =
                Snn.IF.step
                    (nirIfConfig n)
                    { VTh = f.VTh; VReset = f.VReset }
                    {
                        V = st "v"
                        Refractory = st "refractory"
                    }
                    x

            {
                Output = z
                Spikes = z
                Membrane = s'.V
                Current = null
                State = Map [ "v", s'.V; "refractory", s'.Refractory ]
            }
        | NirIntegrator ->
            let v = st "v" + x

            {
                Output = v
                Spikes = null
                Membrane = v
                Current = null
                State = Map [ "v", v ]
            }

/// A population over the whole time axis: fused kernels for LIF and LI, a scan of the step for the
/// other models.
let runPopulation (model: NeuronModel) (name: string) (p: Map<string, Tensor>) (s: Map<string, Tensor>) (currents: Tensor) =
    let st = get name s

    match model with
    | LifModel spec ->
        let r =
            Fused.lifRun
                (Snn.Lif.config spec)
                (lifParams name p)
                {
                    V = st "v"
                    I = st "i"
                    Refractory = st "refractory"
                }
                currents

        {
            Output = r.Spikes
            Spikes = r.Spikes
            Membrane = r.Membrane
            Current = r.Current
            State = Map [ "v", r.Final.V; "i", r.Final.I; "refractory", r.Final.Refractory ]
        }
    | LiModel spec ->
        let r =
            Fused.liRun (Snn.Li.config spec) (liParams name p) { V = st "v"; I = st "i" } currents

        {
            Output = r.Membrane
            Spikes = null
            Membrane = r.Membrane
            Current = r.Current
            State = Map [ "v", r.Final.V; "i", r.Final.I ]
        }
    | NirModel({ Kind = NirCubaLif | NirLif } as n) ->
        let f = nirForm n name p currents
        let x = currents * f.Gain
        let i0, fed = nirCurrents n (st "i") x

        let state: Snn.Lif.State =
            {
                V = st "v"
                I = i0
                Refractory = st "refractory"
            }

        let r =
            Fused.lifRunDecays (nirLifConfig n) (f.A, f.B, f.VLeak, f.VTh, f.VReset) state fed

        {
            Output = r.Spikes
            Spikes = r.Spikes
            Membrane = r.Membrane
            Current = (if synapseFree n then x else r.Current)
            State = Map [ "v", r.Final.V; "i", r.Final.I; "refractory", r.Final.Refractory ]
        }
    | NirModel({ Kind = NirCubaLi | NirLi } as n) ->
        let f = nirForm n name p currents
        let x = currents * f.Gain
        let i0, fed = nirCurrents n (st "i") x
        let r = Fused.liRunDecays (f.A, f.B, f.VLeak) { V = st "v"; I = i0 } fed

        {
            Output = r.Membrane
            Spikes = null
            Membrane = r.Membrane
            Current = (if synapseFree n then x else r.Current)
            State = Map [ "v", r.Final.V; "i", r.Final.I ]
        }
    | NirModel({ Kind = NirIntegrator } as n) ->
        let f = nirForm n name p currents
        let v = st "v" + (currents * f.Gain).Cumsum 0

        let last =
            if v.ShapeRef[0] = 0 then
                st "v"
            else
                v.Narrow(0, v.ShapeRef[0] - 1, 1).Squeeze 0

        {
            Output = v
            Spikes = null
            Membrane = v
            Current = null
            State = Map [ "v", last ]
        }
    | _ ->
        // IF has no synaptic current; scan outputs cannot be null, so it carries the membrane twice.
        let hasCurrent =
            match model with
            | IfModel _
            | NirModel _ -> false
            | _ -> true

        let step (state: Map<string, Tensor>) (x: Tensor) =
            let o = stepPopulation model name p state x
            o.State, (o.Output, o.Membrane, (if hasCurrent then o.Current else o.Membrane))

        let final, (out, v, i) = Ad.scan step s currents

        {
            Output = out
            Spikes = out
            Membrane = v
            Current = (if hasCurrent then i else null)
            State = final
        }

// ---------------------------------------------------------------------------------------------
// Projections

/// A convolution of x [N; C; spatial...] (Conv's layouts) with the spec's geometry (also what
/// NeuroBench counts a convolution's operations by).
let internal convolve (c: ConvSpec) (w: Tensor) (bias: Tensor option) (x: Tensor) =
    let pad = c.ExplicitPadding

    match c.Kernel.Length with
    | 1 ->
        Conv.conv1dWith
            {
                Conv1dOptions.Stride = c.Stride[0]
                Padding = pad[0]
                Dilation = c.Dilation[0]
                Groups = c.Groups
            }
            w
            bias
            x
    | _ ->
        Conv.conv2dWith
            {
                Stride = (c.Stride[0], c.Stride[1])
                Padding = (pad[0], pad[1])
                Dilation = (c.Dilation[0], c.Dilation[1])
                Groups = c.Groups
            }
            w
            bias
            x

/// The postsynaptic currents of a (delayed) input x [..., in shape]: [..., out shape].
let private apply (proj: Projection) (p: Map<string, Tensor>) (name: string) (inShape: int[]) (outShape: int[]) (x: Tensor) =
    let lead = x.Shape[.. x.Rank - inShape.Length - 1]
    // Parameters may be stored in another precision than the signal (NIR files mix them).
    let w = (Projection.effectiveWeights proj (get name p "weight")).Convert x.DType
    let bias = p.TryFind "bias" |> Option.map (fun b -> b.Convert x.DType)

    match proj.Kind with
    | Conv c ->
        // Every leading axis (time, batch...) becomes one batch of the convolution.
        let batch = Array.append [| Shape.count lead |] inShape
        (convolve c w bias (x.Reshape batch)).Reshape(Array.append lead outShape)
    | Dense
    | Sparse _ ->
        let flat = x.Reshape(Array.append lead [| Shape.count inShape |])
        let y = Fused.spikeMatmul flat w

        let y =
            match bias with
            | Some b -> y + b
            | None -> y

        y.Reshape(Array.append lead outShape)

/// History rows a delay needs (whole steps of input kept from one run to the next).
let historyLength (delay: Delay) =
    match delay with
    | NoDelay -> 0
    | Steps d -> d
    | PerInputSteps ds -> if ds.Length = 0 then 0 else Array.max ds
    | Learnable(_, maxSteps, _) -> maxSteps + 1
    | Seconds _ -> 0

/// The input delayed over the whole time axis, and the last `historyLength` input steps for a
/// later run. `history` [H; ...] holds the steps before this run's first (zeros at the start).
let private delayedWhole (delay: Delay) (p: Map<string, Tensor>) (name: string) (inShape: int[]) (history: Tensor) (x: Tensor) =
    let h = historyLength delay

    if h = 0 then
        x, null
    else
        let steps = x.Shape[0]
        let full = Tensor.Concat([| history; x |], 0) // row r is step r - h
        let newHistory = full.Narrow(0, steps, h)
        let lanes = x.Rank - 1 - inShape.Length
        // Rows of `full` read at step t for a delay of d steps: t + h - d.
        let rowsFor (d: Tensor) =
            // d: rank 0 or [in]; the result indexes axis 0 of full, broadcast along the rest.
            let t =
                Tensor.Arange(steps, DType.Int32).Reshape(Array.append [| steps |] (Array.create (x.Rank - 1) 1))

            let d =
                if d.Rank = 0 then
                    d
                else
                    d.Reshape(Array.append (Array.create (1 + lanes) 1) inShape)

            t + float h - d

        let take (rows: Tensor) =
            let idx = rows.BroadcastTo(Array.append [| steps |] x.Shape[1..])
            full.TakeAlongAxis(idx, 0)

        match delay with
        | NoDelay -> x, null
        | Seconds _ -> invalidArg "delay" "Graph.run: delays in seconds are for Events.run"
        | Steps d -> full.Narrow(0, h - d, steps), newHistory
        | PerInputSteps ds -> take (rowsFor (Tensor.FromArray(ds, ds.Length))), newHistory
        | Learnable(_, maxSteps, _) ->
            let delta =
                (get name p "delay").Maximum(Tensor.Scalar(0.0, x.DType)).Minimum(Tensor.Scalar(float maxSteps, x.DType))

            let whole = Ad.stopGradient (delta.Floor())
            let frac = delta - whole
            let wholeSteps = whole.Convert DType.Int32
            let rows = rowsFor wholeSteps
            let at (r: Tensor) = take r

            let frac =
                if frac.Rank = 0 then
                    frac
                else
                    frac.Reshape(Array.append (Array.create (1 + lanes) 1) inShape)
            // Between whole steps: x(t - d) = (1 - f) x(t - ⌊d⌋) + f x(t - ⌊d⌋ - 1).
            at rows * (1.0 - frac) + at (rows - 1.0) * frac, newHistory

// ---------------------------------------------------------------------------------------------
// Transforms

/// Whole steps of a per-neuron delay given in units of `timeUnit` seconds: rounded, clamped to
/// [0, maxSteps], as Int32 (a rounding has no gradient).
let private neuronDelaySteps (timeUnit: float) (dt: float) (maxSteps: int) (delay: Tensor) =
    (delay * (timeUnit / dt))
        .Round()
        .Maximum(Tensor.Scalar(0.0, delay.DType))
        .Minimum(Tensor.Scalar(float maxSteps, delay.DType))
        .Convert(DType.Int32)

/// History rows a transform keeps between steps and runs.
let transformHistory (t: Transform) =
    match t with
    | NeuronDelay(_, _, _, maxSteps) -> maxSteps
    | _ -> 0

/// A transform of the input x [lead...; inShape] to [lead...; outShape]; `history` [H; lead...;
/// inShape] holds the H steps before x's first (x's leading axis is time when `whole`, else x is
/// one step); returns the output and the new history (null without one).
let private transform
    (t: Transform)
    (p: Map<string, Tensor>)
    (name: string)
    (inShape: int[])
    (outShape: int[])
    (whole: bool)
    (history: Tensor)
    (x: Tensor)
    =
    let lead = x.Shape[.. x.Rank - inShape.Length - 1]
    let param k = (get name p k).Convert x.DType

    match t with
    | Identity
    | Flatten _ -> x.Reshape(Array.append lead outShape), null
    | Scale _ -> x * param "scale", null
    | Threshold(_, surrogate) -> Snn.spike surrogate (x - param "threshold"), null
    | SumPool2d o
    | AvgPool2d o ->
        let pool =
            (match t with
             | SumPool2d _ -> Conv.sumPool2dWith
             | _ -> Conv.avgPool2dWith)
                o

        let batch = Array.append [| Shape.count lead |] inShape
        (pool (x.Reshape batch)).Reshape(Array.append lead outShape), null
    | NeuronDelay(_, timeUnit, dt, maxSteps) ->
        let d = neuronDelaySteps timeUnit dt maxSteps (get name p "delay")
        let x' = if whole then x else x.Unsqueeze 0
        let steps = x'.ShapeRef[0]
        let full = Tensor.Concat([| history; x' |], 0) // row r is step r - maxSteps
        // The row of step t for neuron n: t + maxSteps - d[n].
        let t0 =
            Tensor.Arange(steps, DType.Int32).Reshape(Array.append [| steps |] (Array.create (x'.Rank - 1) 1))

        let dn = d.Reshape(Array.append (Array.create (x'.Rank - inShape.Length) 1) inShape)
        let rows = t0 + float maxSteps - dn
        let y = full.TakeAlongAxis(rows.BroadcastTo x'.Shape, 0)
        (if whole then y else y.Squeeze 0), full.Narrow(0, steps, maxSteps)

/// A transform's parameters at init.
let initTransform (key: Key) (dtype: DType) (shape: int[]) (t: Transform) : Map<string, Tensor> =
    match t with
    | Identity
    | Flatten _
    | SumPool2d _
    | AvgPool2d _ -> Map.empty
    | Scale init -> Map [ "scale", init.Draw key shape 1 dtype ]
    | Threshold(init, _) -> Map [ "threshold", init.Draw key shape 1 dtype ]
    | NeuronDelay(init, _, _, _) -> Map [ "delay", init.Draw key shape 1 dtype ]

// ---------------------------------------------------------------------------------------------
// The run

let private sumOf (parts: Tensor list) =
    match parts with
    | [] -> null
    | first :: rest -> List.fold (+) first rest

/// Checks a run's settings against an analysed graph (the step of every population and delay, an
/// input of the right shape for every source and for nothing else) and returns the batch axes and
/// the dtype the inputs give.
let internal checkRun (a: Analysis) (config: RunConfig) (inputs: Map<string, Tensor>) : int[] * DType =
    let steps = config.Steps

    // A step length is part of every population's parameters (its decays) and of every delay in
    // time units: running them with another is an error, not a silent change of dynamics.
    let sameDt (dt: float) =
        abs (dt - config.Dt) <= 1e-9 * config.Dt

    for n, node in a.Graph.Nodes do
        match node with
        | Population(_, neuron) ->
            match Neuron.dtOf neuron.Model with
            | Some dt when not (sameDt dt) ->
                fail $"the population '%s{n}' has the step %g{dt} s, the run %g{config.Dt} s; give RunConfig.steps the populations' step"
            | _ -> ()
        | Op(NeuronDelay(_, _, dt, _), _) when not (sameDt dt) ->
            fail $"the delay '%s{n}' converts with the step %g{dt} s, the run has %g{config.Dt} s"
        | Synapses { Delay = Seconds _ } ->
            fail
                $"the projection '%s{n}' has a delay in seconds (Projection.delaySeconds), which only event-driven runs (Events.run) support; use Projection.delayed or learnableDelay for time-stepped runs"
        | _ -> ()

    for KeyValue(n, _) in inputs do
        match a.Nodes.TryFind n with
        | Some(Source _) -> ()
        | Some _ -> fail $"an input is given for '%s{n}', which is not a source"
        | None -> fail $"an input is given for '%s{n}', which names no node"

    let sources =
        a.Graph.Nodes
        |> List.choose (fun (n, node) ->
            match node with
            | Source shape -> Some(n, shape)
            | _ -> None)

    // The batch axes and dtype come from the inputs.
    let mutable batch: int[] = null
    let mutable dtype = Float32

    for n, shape in sources do
        match inputs.TryFind n with
        | None -> fail $"no input is given for the source '%s{n}'"
        | Some x ->
            if isNull x then
                fail $"the input of '%s{n}' is null"

            let r = x.Rank

            if
                r < 1 + shape.Length
                || x.ShapeRef[0] <> steps
                || x.ShapeRef[r - shape.Length ..] <> shape
            then
                fail
                    $"the input of '%s{n}' has shape %s{Shape.format x.ShapeRef}, but [%d{steps} steps; batch...; %s{semicolons (shape)}] is needed"

            let b = x.ShapeRef[1 .. r - shape.Length - 1]

            if isNull batch then
                batch <- b
                dtype <- x.DType
            elif b <> batch then
                fail $"the inputs have different batch axes: %s{Shape.format batch} and %s{Shape.format b} (of '%s{n}')"

    (if isNull batch then [||] else batch), dtype

/// The nodes whose observables a run keeps: RunConfig.Record, or every population and every node
/// that feeds no other (e.g. NIR's Output nodes).
let internal recorded (a: Analysis) (config: RunConfig) : Set<string> =
    match config.Record with
    | Some names ->
        for n in names do
            if not (a.Nodes.ContainsKey n) then
                fail $"RunConfig.Record names '%s{n}', which is no node"

        Set.ofList names
    | None ->
        let feeding = a.Graph.Edges |> List.map fst |> Set.ofList

        a.Graph.Nodes
        |> List.choose (fun (n, node) ->
            match node with
            | Population _ -> Some n
            | Source _ -> None
            | _ when not (feeding.Contains n) -> Some n
            | _ -> None)
        |> Set.ofList

/// Runs an analysed graph whose settings checkRun has passed (its batch axes and dtype) and whose
/// recorded nodes are recordAll (recorded).
let internal runChecked
    (a: Analysis)
    (p: GraphParams)
    (config: RunConfig)
    (inputs: Map<string, Tensor>)
    (batch: int[], dtype: DType)
    (recordAll: Set<string>)
    : RunResult =
    let steps = config.Steps

    let nodeParams (n: string) =
        match p.TryFind n with
        | Some m -> m
        | None -> fail $"the parameters have no entry for the node '%s{n}' (initialise them with Graph.init)"

    let transformParams (n: string) =
        match p.TryFind n with
        | Some m -> m
        | None -> Map.empty

    let initial (n: string) (name: string) (shape: int[]) =
        match
            config.Initial
            |> Option.bind (fun s -> s.TryFind n)
            |> Option.bind (fun m -> m.TryFind name)
        with
        | Some t ->
            if t.ShapeRef <> shape then
                fail $"the initial state '%s{name}' of '%s{n}' has shape %s{Shape.format t.ShapeRef}, but %s{Shape.format shape} is needed"

            t
        | None -> Tensor.Full(shape, 0.0, dtype)

    let lane (n: string) = Array.append batch a.Shapes[n]
    let signals = Dictionary<string, Tensor>()
    let observed = Dictionary<string, Observed>()
    let final = Dictionary<string, Map<string, Tensor>>()

    let zerosT (n: string) =
        Tensor.Full(Array.append [| steps |] (lane n), 0.0, dtype)

    let inShapeOf (n: string) = a.Shapes[a.Preds[n].Head]

    for comp in a.Components do
        if not (comp |> List.exists a.Cyclic.Contains) then
            // A node outside any cycle: its whole time axis at once.
            let n = comp.Head

            let incoming () =
                sumOf [ for q in a.Preds[n] -> signals[q] ]

            match a.Nodes[n] with
            | Source _ ->
                signals[n] <- inputs[n]

                if recordAll.Contains n then
                    observed[n] <-
                        {
                            Output = inputs[n]
                            Spikes = null
                            Membrane = null
                            Current = null
                        }
            | Synapses proj ->
                let inShape = inShapeOf n
                let h = historyLength proj.Delay

                let history =
                    if h = 0 then
                        null
                    else
                        initial n "history" (Array.concat [ [| h |]; batch; inShape ])

                let x, newHistory =
                    delayedWhole proj.Delay (nodeParams n) n inShape history (incoming ())

                let y = apply proj (nodeParams n) n inShape a.Shapes[n] x
                signals[n] <- y

                if not (isNull newHistory) then
                    final[n] <- Map [ "history", newHistory ]

                if recordAll.Contains n then
                    observed[n] <-
                        {
                            Output = y
                            Spikes = null
                            Membrane = null
                            Current = y
                        }
            | Population(_, neuron) ->
                let c =
                    match incoming () with
                    | null -> zerosT n
                    | c -> c

                let state =
                    stateNames neuron.Model
                    |> List.map (fun v -> v, initial n v (lane n))
                    |> Map.ofList

                let o = runPopulation neuron.Model n (nodeParams n) state c
                signals[n] <- o.Output
                final[n] <- o.State

                if recordAll.Contains n then
                    observed[n] <-
                        {
                            Output = o.Output
                            Spikes = o.Spikes
                            Membrane = o.Membrane
                            Current = o.Current
                        }
            | Op(t, _) ->
                let inShape = inShapeOf n
                let h = transformHistory t

                let history =
                    if h = 0 then
                        null
                    else
                        initial n "history" (Array.concat [ [| h |]; batch; inShape ])

                let y, newHistory =
                    transform t (transformParams n) n inShape a.Shapes[n] true history (incoming ())

                signals[n] <- y

                if not (isNull newHistory) then
                    final[n] <- Map [ "history", newHistory ]

                if recordAll.Contains n then
                    observed[n] <-
                        {
                            Output = y
                            Spikes = null
                            Membrane = null
                            Current = null
                        }
        else
            // A cycle: one scan over time. Edges that leave a population inside the cycle carry the
            // previous step's output; the others are evaluated in order within the step.
            let members = Set.ofList comp

            let isPopulation n =
                match a.Nodes[n] with
                | Population _ -> true
                | _ -> false

            let delayedEdge (src: string) =
                members.Contains src && isPopulation src

            // Order within a step: a topological order of the members over the undelayed edges.
            let order =
                let visited = HashSet<string>()
                let result = ResizeArray<string>()

                let rec visit n =
                    if visited.Add n then
                        for q in a.Preds[n] do
                            if members.Contains q && not (delayedEdge q) then
                                visit q

                        result.Add n

                for n in comp do
                    visit n

                List.ofSeq result

            for n in comp do
                match a.Nodes[n] with
                | Synapses proj ->
                    match proj.Delay with
                    | PerInputSteps _
                    | Learnable _ ->
                        fail
                            $"the projection '%s{n}' lies on a cycle: only whole-step delays for all synapses (Projection.delayed) are supported there"
                    | _ -> ()
                | _ -> ()

            // External input of each member over the whole time axis (sum of its edges from outside).
            let external =
                comp
                |> List.choose (fun n ->
                    match
                        sumOf
                            [
                                for q in a.Preds[n] do
                                    if not (members.Contains q) then
                                        signals[q]
                            ]
                    with
                    | null -> None
                    | x -> Some(n, x))
                |> Map.ofList

            // The carry: each population's state and previous output; each delayed projection's history.
            let carry0: GraphState =
                comp
                |> List.choose (fun n ->
                    match a.Nodes[n] with
                    | Population(_, neuron) ->
                        let vars = stateNames neuron.Model |> List.map (fun v -> v, initial n v (lane n))
                        Some(n, Map(("prev", initial n "prev" (lane n)) :: vars))
                    | Synapses proj when historyLength proj.Delay > 0 ->
                        let h = historyLength proj.Delay

                        Some(
                            n,
                            Map
                                [
                                    "history", initial n "history" (Array.concat [ [| h |]; batch; inShapeOf n ])
                                ]
                        )
                    | Op(t, _) when transformHistory t > 0 ->
                        let h = transformHistory t

                        Some(
                            n,
                            Map
                                [
                                    "history", initial n "history" (Array.concat [ [| h |]; batch; inShapeOf n ])
                                ]
                        )
                    | _ -> None)
                |> Map.ofList

            let recorded = comp |> List.filter recordAll.Contains

            let step (carry: GraphState) (xt: Map<string, Tensor>) =
                let outs = Dictionary<string, Tensor>()
                let mutable next = carry
                let ys = ResizeArray<Map<string, Tensor>>()

                let inputOf (n: string) =
                    sumOf
                        [
                            match xt.TryFind n with
                            | Some x -> x
                            | None -> ()
                            for q in a.Preds[n] do
                                if members.Contains q then
                                    if delayedEdge q then carry[q]["prev"] else outs[q]
                        ]

                let observations = Dictionary<string, Observed>()

                for n in order do
                    match a.Nodes[n] with
                    | Synapses proj ->
                        let x = inputOf n
                        let inShape = inShapeOf n

                        let x =
                            match proj.Delay with
                            | Steps d when d > 0 ->
                                let h = carry[n]["history"]
                                next <- next.Add(n, Map [ "history", Tensor.Concat([| h.Narrow(0, 1, d - 1); x.Unsqueeze 0 |], 0) ])
                                h.Narrow(0, 0, 1).Squeeze 0
                            | _ -> x

                        let y = apply proj (nodeParams n) n inShape a.Shapes[n] x
                        outs[n] <- y

                        observations[n] <-
                            {
                                Output = y
                                Spikes = null
                                Membrane = null
                                Current = y
                            }
                    | Population(_, neuron) ->
                        let c =
                            match inputOf n with
                            | null -> Tensor.Full(lane n, 0.0, dtype)
                            | c -> c

                        let o = stepPopulation neuron.Model n (nodeParams n) (carry[n].Remove "prev") c
                        outs[n] <- o.Output
                        next <- next.Add(n, o.State.Add("prev", o.Output))

                        observations[n] <-
                            {
                                Output = o.Output
                                Spikes = o.Spikes
                                Membrane = o.Membrane
                                Current = o.Current
                            }
                    | Op(t, _) ->
                        let history = if transformHistory t > 0 then carry[n]["history"] else null

                        let y, h =
                            transform t (transformParams n) n (inShapeOf n) a.Shapes[n] false history (inputOf n)

                        outs[n] <- y

                        if not (isNull h) then
                            next <- next.Add(n, Map [ "history", h ])

                        observations[n] <-
                            {
                                Output = y
                                Spikes = null
                                Membrane = null
                                Current = null
                            }
                    | Source _ -> fail $"internal error: the source '%s{n}' lies on a cycle"

                for n in comp do
                    ys.Add(
                        Map
                            [
                                "output", outs[n]
                                if recorded |> List.contains n then
                                    let o = observations[n]

                                    if not (isNull o.Spikes) then
                                        "spikes", o.Spikes

                                    if not (isNull o.Membrane) then
                                        "membrane", o.Membrane

                                    if not (isNull o.Current) then
                                        "current", o.Current
                            ]
                    )

                next, List.ofSeq ys

            let options =
                { ScanOptions.Default with
                    Length = Some steps
                }

            let last, outputs = Ad.scanWith options step carry0 external

            comp
            |> List.iteri (fun k n ->
                let o = outputs[k]
                signals[n] <- o["output"]

                if recordAll.Contains n then
                    let find name =
                        match o.TryFind name with
                        | Some t -> t
                        | None -> null

                    observed[n] <-
                        {
                            Output = o["output"]
                            Spikes = find "spikes"
                            Membrane = find "membrane"
                            Current = find "current"
                        })

            for KeyValue(n, s) in last do
                final[n] <- s

    {
        Observed = observed |> Seq.map (fun kv -> kv.Key, kv.Value) |> Map.ofSeq
        Final = final |> Seq.map (fun kv -> kv.Key, kv.Value) |> Map.ofSeq
    }

/// Runs an analysed graph. `inputs` by source name, each [T; batch...; shape].
let run (a: Analysis) (p: GraphParams) (config: RunConfig) (inputs: Map<string, Tensor>) : RunResult =
    let checkedRun = checkRun a config inputs
    runChecked a p config inputs checkedRun (recorded a config)
