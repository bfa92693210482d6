/// Networks as data: the node, projection, neuron and initialiser types of a graph of named sources,
/// populations and projections, with the builders of each (modules Init, Neuron, Projection).
namespace SnnFunc

open System
open SnnFunc.RandomBits

/// Names joined for messages.
module internal NameLists =
    let listed (xs: string seq) = String.Join(", ", xs)
    let chained (xs: string seq) = String.Join(" -> ", xs)
    let semicolons (xs: 'a seq) = String.Join("; ", xs)

open NameLists

/// A parameter initialiser: draws a tensor of the given shape and dtype from a key; `fanIn` is the
/// number of inputs per output unit of the weight it initialises (1 for neuron parameters).
type Init =
    {
        Name: string
        Draw: Key -> int[] -> int -> DType -> Tensor
    }

/// Initialisers.
[<RequireQualifiedAccess>]
module Init =
    /// N(0, 1) · scale / sqrt(fan-in).
    let normalWith (scale: float) : Init =
        if Double.IsNaN scale || Double.IsInfinity scale then
            invalidArg "scale" $"Init.normalWith: scale must be finite, got %g{scale}"

        {
            Name = $"normal(%g{scale})"
            Draw = fun key shape fanIn dtype -> Random.normalAs dtype key shape * (scale / sqrt (float (max 1 fanIn)))
        }

    /// N(0, 1) / sqrt(fan-in).
    let normal: Init = normalWith 1.0

    /// N(mean, std²), not scaled by the fan-in: the published initialisations of event-based
    /// networks (e.g. Wunderlich and Pehle's N(1.5, 0.78) for Yin-Yang) give absolute weights.
    let gaussian (mean: float) (std: float) : Init =
        if not (Double.IsFinite mean) || not (Double.IsFinite std) || std < 0.0 then
            invalidArg "std" $"Init.gaussian: needs a finite mean and a finite std >= 0, got %g{mean} and %g{std}"

        {
            Name = $"gaussian(%g{mean}, %g{std})"
            Draw = fun key shape _ dtype -> Random.normalAs dtype key shape * std + mean
        }

    /// Uniform on [lo, hi), e.g. per-neuron time constants drawn at init.
    let uniform (lo: float) (hi: float) : Init =
        if not (lo < hi) || Double.IsInfinity lo || Double.IsInfinity hi then
            invalidArg "lo" $"Init.uniform: needs finite lo < hi, got %g{lo} and %g{hi}"

        {
            Name = $"uniform(%g{lo}, %g{hi})"
            Draw = fun key shape _ dtype -> Random.uniformRangeAs dtype key lo hi shape
        }

    /// Every element `value`.
    let constant (value: float) : Init =
        if Double.IsNaN value || Double.IsInfinity value then
            invalidArg "value" $"Init.constant: value must be finite, got %g{value}"

        {
            Name = $"constant(%g{value})"
            Draw = fun _ shape _ dtype -> Tensor.Full(shape, value, dtype)
        }

    let zeros: Init = constant 0.0

    /// A given tensor (converted to the graph's dtype), e.g. weights trained elsewhere.
    let ofTensor (t: Tensor) : Init =
        if isNull t then
            invalidArg "t" "Init.ofTensor: the tensor is null"

        {
            Name = $"tensor%s{Shape.format t.Shape}"
            Draw =
                fun _ shape _ dtype ->
                    if t.Shape <> shape then
                        invalidArg "t" $"Init.ofTensor: the tensor has shape %s{Shape.format t.Shape} but %s{Shape.format shape} is needed"

                    t.Convert dtype
        }

/// NIR's neuron primitives (Interop/): their parameters keep the file's names and time unit.
type NirNeuronKind =
    /// τs dI/dt = -I + w_in S;  τm dv/dt = (v_leak - v) + r I;  spike at v > v_threshold, v <- v_reset.
    | NirCubaLif
    /// τ dv/dt = (v_leak - v) + r I; spike and reset as CubaLIF.
    | NirLif
    /// CubaLIF without threshold: the membrane is the output.
    | NirCubaLi
    /// LIF without threshold.
    | NirLi
    /// dv/dt = r I; spike and reset.
    | NirIf
    /// dv/dt = r I; the membrane is the output.
    | NirIntegrator

/// A NIR neuron as a population: discretised by explicit Euler with step Dt (seconds), the file's
/// times (τ) read in units of TimeUnit seconds (1e-3 for milliseconds, NIR's documented unit).
type NirNeuron =
    {
        Kind: NirNeuronKind
        TimeUnit: float
        Dt: float
        Surrogate: SurrogateFn
    }

/// The neuron model of a population (host-number specs; per-neuron draws through Neuron.withInit).
type NeuronModel =
    | LifModel of Snn.Lif.Spec
    | LiModel of Snn.Li.Spec
    | AlifModel of Snn.Alif.Spec
    | AdExModel of Snn.AdEx.Spec
    | IfModel of Snn.IF.Spec
    /// Parameters under NIR's field names, all given through Neuron.withInit (Init.ofTensor).
    | NirModel of NirNeuron

/// A population's neuron: the model, and initialisers for parameters that differ per neuron (by
/// parameter name; the others start homogeneous at the spec's value, as rank-0 tensors).
type Neuron =
    {
        Model: NeuronModel
        Inits: Map<string, Init>
    }

/// Neuron models for populations.
[<RequireQualifiedAccess>]
module Neuron =
    let lif (spec: Snn.Lif.Spec) =
        {
            Model = LifModel(Snn.Lif.validate spec)
            Inits = Map.empty
        }

    let li (spec: Snn.Li.Spec) =
        {
            Model = LiModel(Snn.Li.validate spec)
            Inits = Map.empty
        }

    let alif (spec: Snn.Alif.Spec) =
        {
            Model = AlifModel(Snn.Alif.validate spec)
            Inits = Map.empty
        }

    let adex (spec: Snn.AdEx.Spec) =
        {
            Model = AdExModel(Snn.AdEx.validate spec)
            Inits = Map.empty
        }

    let integrateAndFire (spec: Snn.IF.Spec) =
        {
            Model = IfModel(Snn.IF.validate spec)
            Inits = Map.empty
        }

    /// A NIR neuron primitive (its parameters must all be given with withInit).
    let nir (neuron: NirNeuron) =
        if
            not (neuron.Dt > 0.0 && neuron.TimeUnit > 0.0)
            || Double.IsInfinity neuron.Dt
            || Double.IsInfinity neuron.TimeUnit
        then
            invalidArg "neuron" $"Neuron.nir: Dt and TimeUnit must be positive and finite, got %g{neuron.Dt} and %g{neuron.TimeUnit}"

        {
            Model = NirModel neuron
            Inits = Map.empty
        }

    /// The names of a model's parameters (the keys of its entry in the graph's parameters).
    let parameterNames (model: NeuronModel) =
        match model with
        | NirModel n ->
            match n.Kind with
            | NirCubaLif -> [ "tau_syn"; "tau_mem"; "r"; "v_leak"; "v_threshold"; "v_reset"; "w_in" ]
            | NirLif -> [ "tau"; "r"; "v_leak"; "v_threshold"; "v_reset" ]
            | NirCubaLi -> [ "tau_syn"; "tau_mem"; "r"; "v_leak"; "w_in" ]
            | NirLi -> [ "tau"; "r"; "v_leak" ]
            | NirIf -> [ "r"; "v_threshold"; "v_reset" ]
            | NirIntegrator -> [ "r" ]
        | LifModel _ -> [ "tauSyn"; "tauMem"; "vLeak"; "vTh"; "vReset" ]
        | LiModel _ -> [ "tauSyn"; "tauMem"; "vLeak" ]
        | AlifModel _ -> [ "tauSyn"; "tauMem"; "vLeak"; "vTh"; "vReset"; "tauAdapt"; "beta" ]
        | AdExModel _ ->
            [
                "tauSyn"
                "tauMem"
                "tauAdapt"
                "vLeak"
                "vT"
                "deltaT"
                "vTh"
                "vReset"
                "a"
                "b"
                "tRef"
            ]
        | IfModel _ -> [ "vTh"; "vReset" ]

    /// Draws parameter `name` per neuron at init (e.g. `Init.uniform 5e-3 20e-3` for "tauMem"):
    /// heterogeneous populations, and the hook through which an emulator adds fixed-pattern noise.
    let withInit (name: string) (init: Init) (neuron: Neuron) =
        let names = parameterNames neuron.Model

        if not (List.contains name names) then
            invalidArg "name" $"Neuron.withInit: the model has no parameter '%s{name}'; it has %s{listed (names)}"

        { neuron with
            Inits = Map.add name init neuron.Inits
        }

    /// The model's time step in seconds (None for IF, whose dynamics count steps).
    let dtOf (model: NeuronModel) =
        match model with
        | LifModel s -> Some s.Dt
        | LiModel s -> Some s.Dt
        | AlifModel s -> Some s.Lif.Dt
        | AdExModel s -> Some s.Dt
        | IfModel _ -> None
        | NirModel n -> Some n.Dt

    /// Whether the model emits spikes (LI does not: its output is the membrane).
    let isSpiking (model: NeuronModel) =
        match model with
        | LiModel _ -> false
        | NirModel n ->
            match n.Kind with
            | NirCubaLi
            | NirLi
            | NirIntegrator -> false
            | _ -> true
        | _ -> true

/// Sign constraint of a projection's weights.
type Sign =
    /// Weights as they are.
    | Mixed
    /// |w|: excitatory synapses.
    | Excitatory
    /// -|w|: inhibitory synapses.
    | Inhibitory

/// Which synapses share a delay in seconds (the shape of the parameter "delay").
type DelayAxes =
    /// One delay for the whole projection (rank 0).
    | PerProjection
    /// One per presynaptic neuron, [in] (axonal delays).
    | PerInput
    /// One per synapse, [in; out].
    | PerSynapse

/// A synaptic delay of a projection: in time steps (time-stepped runs) or in seconds (event-driven runs).
type Delay =
    | NoDelay
    /// The same whole number of steps for every synapse.
    | Steps of int
    /// A whole number of steps per presynaptic neuron (axonal delays), as [in] integers.
    | PerInputSteps of int[]
    /// A learnable delay (parameter "delay", in steps, initialised to `initial` and kept within
    /// [0, maxSteps]), per projection (rank 0) or per presynaptic neuron (`perInput`): the input is
    /// read between whole steps by linear interpolation, so the delay has a gradient.
    | Learnable of initial: float * maxSteps: int * perInput: bool
    /// A learnable delay in seconds (parameter "delay", drawn by the Init, of the shape DelayAxes
    /// gives), for event-driven runs (Events.run) only; every delay must be >= 0.
    | Seconds of Init * DelayAxes

/// Zero padding of a convolutional projection.
[<RequireQualifiedAccess>]
type ConvPadding =
    /// The given number of zeros on each side, one entry per spatial axis.
    | Explicit of int[]
    /// PyTorch's "same": the output has the input's size (stride 1, odd dilated kernel extent).
    | Same
    /// PyTorch's "valid": no padding.
    | Valid

/// The geometry of a convolutional projection (PyTorch's conv1d/conv2d): one entry per spatial
/// axis (1 or 2) in Kernel, Stride and Dilation; input [C_in; spatial...], weight
/// [OutChannels; C_in / Groups; Kernel...], output [OutChannels; spatial'...].
type ConvSpec =
    {
        OutChannels: int
        Kernel: int[]
        Stride: int[]
        Padding: ConvPadding
        Dilation: int[]
        Groups: int
    }

    /// The padding on each side per spatial axis.
    member c.ExplicitPadding =
        match c.Padding with
        | ConvPadding.Explicit p -> p
        | ConvPadding.Valid -> Array.zeroCreate c.Kernel.Length
        | ConvPadding.Same -> Array.map2 (fun k d -> d * (k - 1) / 2) c.Kernel c.Dilation

    /// The output's spatial size for an input's (the PyTorch formula).
    member c.OutputSize(input: int[]) =
        let pad = c.ExplicitPadding

        // 0 where the dilated kernel does not fit (integer division would round -1 / s up to 0).
        Array.init input.Length (fun a ->
            let room = input[a] + 2 * pad[a] - c.Dilation[a] * (c.Kernel[a] - 1) - 1
            if room < 0 then 0 else room / c.Stride[a] + 1)

/// How a projection maps its input to the postsynaptic currents.
type ProjectionKind =
    /// y = x · W, W [in; out] (SnnFunc's layout; NIR's (out, in) is transposed on import/export).
    | Dense
    /// y = x · (W ⊙ mask) with a fixed 0/1 mask [in; out].
    | Sparse of mask: Tensor
    /// y = W ⋆ x (cross-correlation, as PyTorch), W [out; in / groups; kernel...].
    | Conv of ConvSpec

/// A projection: the weights' kind, initialiser, bias, sign and delay.
type Projection =
    {
        Kind: ProjectionKind
        Weight: Init
        Bias: Init option
        Sign: Sign
        Delay: Delay
        /// The per-sample output shape, when it is not that of the populations it feeds.
        OutShape: int[] option
    }

/// Projections between nodes.
[<RequireQualifiedAccess>]
module Projection =
    /// A dense projection with weights from `init` (no bias, mixed sign, no delay).
    let dense (init: Init) =
        {
            Kind = Dense
            Weight = init
            Bias = None
            Sign = Mixed
            Delay = NoDelay
            OutShape = None
        }

    /// A dense projection restricted to a fixed 0/1 mask [in; out] (absent synapses stay absent).
    let sparse (mask: Tensor) (init: Init) =
        if isNull mask || mask.Rank <> 2 then
            invalidArg "mask" "Projection.sparse: the mask must be a [in; out] matrix"

        if mask.ToDoubleArray() |> Array.exists (fun v -> v <> 0.0 && v <> 1.0) then
            invalidArg "mask" "Projection.sparse: the mask must hold only 0 and 1"

        { dense init with Kind = Sparse mask }

    /// A convolutional projection (see ConvSpec); Kernel, Stride, Dilation and an explicit Padding
    /// have one entry per spatial axis.
    let conv (spec: ConvSpec) (init: Init) =
        let axes = if isNull spec.Kernel then 0 else spec.Kernel.Length

        let bad (message: string) =
            invalidArg "spec" $"Projection.conv: %s{message}"

        if axes < 1 || axes > 2 then
            bad $"1 or 2 spatial axes are supported, got a kernel of %d{axes}"

        let entries (name: string) (xs: int[]) (least: int) =
            if isNull xs || xs.Length <> axes || xs |> Array.exists (fun v -> v < least) then
                bad $"%s{name} needs %d{axes} entries >= %d{least}, got %A{xs}"

        entries "Kernel" spec.Kernel 1
        entries "Stride" spec.Stride 1
        entries "Dilation" spec.Dilation 1

        match spec.Padding with
        | ConvPadding.Explicit p -> entries "Padding" p 0
        | ConvPadding.Same ->
            if spec.Stride |> Array.exists ((<>) 1) then
                bad "\"same\" padding needs stride 1"

            if Array.exists2 (fun k d -> d * (k - 1) % 2 <> 0) spec.Kernel spec.Dilation then
                bad "\"same\" padding needs an odd dilated kernel extent (an even one pads unequally)"
        | ConvPadding.Valid -> ()

        if spec.OutChannels < 1 || spec.Groups < 1 || spec.OutChannels % spec.Groups <> 0 then
            bad $"OutChannels (%d{spec.OutChannels}) must be a positive multiple of Groups (%d{spec.Groups})"

        { dense init with
            Kind =
                Conv
                    { spec with
                        Kernel = Array.copy spec.Kernel
                    }
        }

    /// conv2d with `outChannels` filters of kh × kw and PyTorch's options.
    let conv2dWith (options: Conv2dOptions) (outChannels: int) (kernelH: int, kernelW: int) (init: Init) =
        let pair (a, b) = [| a; b |]

        conv
            {
                OutChannels = outChannels
                Kernel = [| kernelH; kernelW |]
                Stride = pair options.Stride
                Padding = ConvPadding.Explicit(pair options.Padding)
                Dilation = pair options.Dilation
                Groups = options.Groups
            }
            init

    /// conv2d with `outChannels` filters of kh × kw, stride 1, no padding.
    let conv2d (outChannels: int) (kernel: int * int) (init: Init) =
        conv2dWith Conv2dOptions.Default outChannels kernel init

    /// conv1d with `outChannels` filters of `kernel` taps and PyTorch's options.
    let conv1dWith (options: Conv1dOptions) (outChannels: int) (kernel: int) (init: Init) =
        conv
            {
                OutChannels = outChannels
                Kernel = [| kernel |]
                Stride = [| options.Stride |]
                Padding = ConvPadding.Explicit [| options.Padding |]
                Dilation = [| options.Dilation |]
                Groups = options.Groups
            }
            init

    /// conv1d with `outChannels` filters of `kernel` taps, stride 1, no padding.
    let conv1d (outChannels: int) (kernel: int) (init: Init) =
        conv1dWith Conv1dOptions.Default outChannels kernel init

    /// Adds a bias, drawn from `init`.
    let withBias (init: Init) (p: Projection) = { p with Bias = Some init }
    let excitatory (p: Projection) = { p with Sign = Excitatory }
    let inhibitory (p: Projection) = { p with Sign = Inhibitory }

    /// Declares the output shape (needed when the projection feeds no population directly).
    let withOutShape (shape: int[]) (p: Projection) =
        if isNull shape || shape.Length = 0 || shape |> Array.exists (fun d -> d <= 0) then
            invalidArg "shape" "Projection.withOutShape: the shape must have positive dimensions"

        { p with
            OutShape = Some(Array.copy shape)
        }

    /// A whole-step delay for every synapse (>= 0).
    let delayed (steps: int) (p: Projection) =
        if steps < 0 then
            invalidArg "steps" $"Projection.delayed: the delay must be >= 0 steps, got %d{steps}"

        { p with Delay = Steps steps }

    /// Whole-step delays per presynaptic neuron (>= 0 each).
    let delayedPerInput (steps: int[]) (p: Projection) =
        if isNull steps || steps |> Array.exists (fun d -> d < 0) then
            invalidArg "steps" "Projection.delayedPerInput: every delay must be >= 0 steps"

        { p with
            Delay = PerInputSteps(Array.copy steps)
        }

    /// A learnable delay in steps, initialised to `initial` and kept within [0, maxSteps], for the
    /// whole projection or per presynaptic neuron.
    let learnableDelay (initial: float) (maxSteps: int) (perInput: bool) (p: Projection) =
        if maxSteps < 1 then
            invalidArg "maxSteps" $"Projection.learnableDelay: the largest delay must be >= 1 step, got %d{maxSteps}"

        if not (initial >= 0.0 && initial <= float maxSteps) then
            invalidArg "initial" $"Projection.learnableDelay: the initial delay must lie in [0, %d{maxSteps}] steps, got %g{initial}"

        { p with
            Delay = Learnable(initial, maxSteps, perInput)
        }

    /// The weight parameter under the projection's sign constraint: as it is, |w| or -|w|.
    let signed (p: Projection) (w: Tensor) =
        match p.Sign with
        | Mixed -> w
        | Excitatory -> w.Abs()
        | Inhibitory -> -(w.Abs())

    /// The weights a projection applies: signed, and a masked projection's mask applied.
    let effectiveWeights (p: Projection) (w: Tensor) =
        match p.Kind with
        | Sparse mask -> signed p w * mask.Convert w.DType
        | Dense
        | Conv _ -> signed p w

    /// A learnable delay in seconds for event-driven runs (Events.run), drawn by `init` (e.g.
    /// `Init.constant 1e-3` or `Init.uniform 0.0 5e-3`) per projection, per input or per synapse.
    let delaySeconds (init: Init) (axes: DelayAxes) (p: Projection) = { p with Delay = Seconds(init, axes) }

/// A stateless (but for Delay) map of a node's input signal, step by step.
type Transform =
    /// Passes its input on (a port: NIR's Output nodes and subgraph Input/Output nodes).
    | Identity
    /// x · p["scale"] (of the node's shape, drawn from the initialiser).
    | Scale of Init
    /// H(x - p["threshold"]): 1 above, 0 at or below; the derivative is the surrogate's.
    | Threshold of Init * SurrogateFn
    /// Merges the per-sample axes startDim..endDim (negative counts from the end) into one.
    | Flatten of startDim: int * endDim: int
    /// Delays each neuron by p["delay"] (in units of `timeUnit` seconds), rounded to whole steps of
    /// `dt` seconds, at most `maxSteps`.
    | NeuronDelay of Init * timeUnit: float * dt: float * maxSteps: int
    /// The sum over each window of a [C; H; W] input (NIR's SumPool2d).
    | SumPool2d of Pool2dOptions
    /// The mean over each window, padding counted (NIR's AvgPool2d: the sum scaled by 1 / (kh kw)).
    | AvgPool2d of Pool2dOptions

/// A node of a graph.
type Node =
    /// External input of the given feature shape (no time or batch axes).
    | Source of shape: int[]
    /// Neurons of the given shape.
    | Population of shape: int[] * neuron: Neuron
    /// Synapses from one node to another.
    | Synapses of Projection
    /// A transform of its input; the declared shape (if any) must hold the same number of elements
    /// as the input's, which it then takes (NIR Output nodes).
    | Op of Transform * shape: int[] option

/// A network as a value: named nodes and directed edges. A node sums what its incoming edges bring.
/// Build it with the functions of the Graph module.
type Graph =
    {
        /// The nodes in the order they were added.
        Nodes: (string * Node) list
        /// (source, target) pairs in the order they were added.
        Edges: (string * string) list
        /// What other layers attach to nodes (by node name; "" for the graph), e.g. NIR metadata:
        /// carried along, never read by the run.
        Notes: Map<string, obj>
    }

    /// The node of a name.
    member g.Node(name: string) =
        match g.Nodes |> List.tryFind (fun (n, _) -> n = name) with
        | Some(_, node) -> node
        | None -> invalidArg "name" $"Graph: no node named '%s{name}'"

/// Parameters of a graph: by node name, then by parameter name ("tauMem", "weight", ...) — a pytree,
/// so key paths read "hidden/tauMem", "x->hidden/weight".
type GraphParams = Map<string, Map<string, Tensor>>

/// State of a graph between runs: by node name, then by variable ("v", "i", "refractory", "prev"
/// for a population's output fed back within a cycle, "history" for delayed inputs).
type GraphState = Map<string, Map<string, Tensor>>

/// What a run records of a node, all [T; batch...; shape] (null where the node has no such signal).
type Observed =
    {
        /// The node's output: spikes of a spiking population, membrane of LI, currents of synapses.
        Output: Tensor
        Spikes: Tensor
        Membrane: Tensor
        /// The synaptic current.
        Current: Tensor
    }

/// The result of Graph.run: observables of the recorded nodes and the final state of the graph.
type RunResult =
    {
        Observed: Map<string, Observed>
        Final: GraphState
    }

    /// The observables of a node.
    member r.Item(name: string) =
        match r.Observed.TryFind name with
        | Some o -> o
        | None ->
            let recorded = String.Join(", ", r.Observed.Keys)
            invalidArg "name" $"RunResult: node '%s{name}' was not recorded (recorded: %s{recorded}); add it to RunConfig.Record"

/// Settings of a time-stepped run.
type RunConfig =
    {
        Steps: int
        /// The step length in seconds; every population's and delay's own step must equal it.
        Dt: float
        /// The nodes whose observables are kept (default: every population and every node that feeds no other).
        Record: string list option
        /// Continue from a previous run's final state (default: zeros).
        Initial: GraphState option
    }

/// Run settings.
[<RequireQualifiedAccess>]
module RunConfig =
    /// `steps` steps; the step length of every population is its own Config's Dt (`dt` is checked
    /// against them, so that a graph of populations with another step is an error, not a surprise).
    let steps (steps: int) (dt: float) =
        if steps < 0 then
            invalidArg "steps" $"RunConfig.steps: the number of steps must be >= 0, got %d{steps}"

        if not (dt > 0.0) || Double.IsInfinity dt then
            invalidArg "dt" $"RunConfig.steps: the step length must be positive and finite, got %g{dt}"

        {
            Steps = steps
            Dt = dt
            Record = None
            Initial = None
        }

    let recording (nodes: string list) (c: RunConfig) = { c with Record = Some nodes }
    let from (state: GraphState) (c: RunConfig) = { c with Initial = Some state }
