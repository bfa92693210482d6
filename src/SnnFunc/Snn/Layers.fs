/// Layers as stax-style pairs of functions — `Init` makes parameters from a key and the input
/// feature shape, `Apply` maps parameters and inputs to outputs — and the combinators that build
/// networks from them. Parameters are immutable pytrees; layers hold no state.
namespace SnnFunc

open System
open SnnFunc.RandomBits

/// The parameters of a layer tree (a pytree: differentiate, map and save it as a whole). In key
/// paths the case names are left out: a child's index, then a tensor's name, e.g. `0/W` for the
/// weights of the first layer of a `serial` (`1/0/W` one level deeper), `W` for a single dense layer.
[<NoCaseNamesInKeyPath>]
type Params =
    /// A layer without parameters.
    | NoParams
    /// Named tensors of one layer (e.g. "W", "b").
    | Weights of Map<string, Tensor>
    /// The parameters of a combinator's children, in order.
    | Children of Params list

    /// A named tensor of a Weights node.
    member p.Item(name: string) =
        match p with
        | Weights m when m.ContainsKey name -> m[name]
        | _ -> invalidArg "name" $"Params: no tensor named '%s{name}' in %A{p}"

/// Whether a layer runs for training (with a key for dropout and other noise) or for evaluation.
type Mode =
    | Eval
    | Train of Key

/// A layer: `Init key inShapes` returns parameters and output shapes; `Apply params mode inputs`
/// the outputs. Shapes are per-sample feature shapes (no time or batch axes): inputs are time-major
/// [T; B; features...] or [B; features...].
type Layer =
    {
        Name: string
        Init: Key -> int[] list -> Params * int[] list
        Apply: Params -> Mode -> Tensor list -> Tensor list
    }

/// Building and running layers.
[<RequireQualifiedAccess>]
module Layer =

    /// Parameters and output shape for a single-input layer.
    let init (layer: Layer) (key: Key) (inShape: int[]) : Params * int[] =
        match layer.Init key [ inShape ] with
        | p, [ out ] -> p, out
        | _, outs -> invalidOp $"Layer.init: %s{layer.Name} has %d{outs.Length} outputs; use layer.Init"

    /// Runs a single-input, single-output layer for evaluation.
    let apply (layer: Layer) (p: Params) (x: Tensor) : Tensor =
        match layer.Apply p Eval [ x ] with
        | [ y ] -> y
        | ys -> invalidOp $"Layer.apply: %s{layer.Name} returned %d{ys.Length} outputs; use layer.Apply"

    /// Runs a single-input, single-output layer for training (dropout active, driven by key).
    let applyTrain (layer: Layer) (p: Params) (key: Key) (x: Tensor) : Tensor =
        match layer.Apply p (Train key) [ x ] with
        | [ y ] -> y
        | ys -> invalidOp $"Layer.applyTrain: %s{layer.Name} returned %d{ys.Length} outputs; use layer.Apply"

/// The layer library and combinators.
[<RequireQualifiedAccess>]
module Layers =

    let private single (name: string) (xs: Tensor list) =
        match xs with
        | [ x ] -> x
        | _ -> invalidArg "inputs" $"%s{name}: expects one input, got %d{xs.Length}"

    /// A per-sample feature shape must have positive dimensions (any rank, [] for scalar features):
    /// an empty or negative one would only fail later, deep inside a kernel.
    let private checkFeatureShape (name: string) (shape: int[]) =
        if isNull shape then
            invalidArg "inShapes" $"%s{name}: the input feature shape is null"

        if shape |> Array.exists (fun d -> d <= 0) then
            invalidArg
                "inShapes"
                $"%s{name}: feature dimensions must be positive, got feature shape %s{Shape.format shape} (shapes are per sample, without time or batch axes)"

    /// The single input shape of a layer, checked.
    let private singleShape (name: string) (shapes: int[] list) =
        match shapes with
        | [ s ] ->
            checkFeatureShape name s
            s
        | _ -> invalidArg "inShapes" $"%s{name}: expects one input shape, got %d{shapes.Length}"

    /// The single input shape of a layer that needs one feature axis [n]: its length.
    let private vectorLength (name: string) (shapes: int[] list) =
        let s = singleShape name shapes

        if s.Length <> 1 then
            invalidArg "inShapes" $"%s{name}: expects a feature vector [n], got feature shape %s{Shape.format s}"

        s[0]

    let private positiveSize (name: string) (what: string) (n: int) =
        if n <= 0 then
            invalidArg what $"%s{name}: %s{what} must be positive, got %d{n}"

    let private finiteScale (name: string) (what: string) (scale: float) =
        if Double.IsNaN scale || Double.IsInfinity scale then
            invalidArg what $"%s{name}: %s{what} must be finite, got %.17g{scale}"

    /// A parameter-free layer keeping the feature shape; errors name the layer as `op`.
    let private elementwise (op: string) (name: string) (f: Tensor -> Tensor) : Layer =
        {
            Name = name
            Init = fun _ shapes -> NoParams, [ singleShape op shapes ]
            Apply = fun _ _ xs -> [ f (single op xs) ]
        }

    /// A parameter-free layer from a function of one tensor that keeps the feature shape.
    let ofFunction (name: string) (f: Tensor -> Tensor) : Layer =
        elementwise $"Layers.ofFunction(%s{name})" name f

    /// Options of `denseWith`.
    type DenseOptions =
        {
            /// Add a learned bias (initialised to 0).
            Bias: bool
            /// Initial weights are N(0, 1) · Scale / sqrt(fan-in).
            Scale: float
            DType: DType
        }

    let denseDefaults =
        {
            Bias = false
            Scale = 1.0
            DType = Float32
        }

    /// A fully connected layer to `outDim` features: x [..., in] · W [in; out] (+ b). Time-major
    /// inputs [T; B; in] go through one GEMM for all steps, or through row accumulation when the
    /// input is sparse 0/1 spikes (Fused.spikeMatmul).
    let denseWith (options: DenseOptions) (outDim: int) : Layer =
        positiveSize "Layers.dense" "outDim" outDim
        finiteScale "Layers.dense" "Scale" options.Scale

        {
            Name = $"dense(%d{outDim})"
            Init =
                fun key shapes ->
                    let inDim = vectorLength "Layers.dense" shapes

                    let w =
                        Random.normalAs options.DType key [| inDim; outDim |]
                        * (options.Scale / sqrt (float inDim))

                    let weights =
                        if options.Bias then
                            Map [ "W", w; "b", Tensor.Full([| outDim |], 0.0, options.DType) ]
                        else
                            Map [ "W", w ]

                    Weights weights, [ [| outDim |] ]
            Apply =
                fun p _ xs ->
                    let x = single "Layers.dense" xs
                    let y = Fused.spikeMatmul x p["W"]

                    match p with
                    | Weights m when m.ContainsKey "b" -> [ y + m["b"] ]
                    | _ -> [ y ]
        }

    /// A fully connected layer without bias, weights N(0, 1) / sqrt(fan-in).
    let dense (outDim: int) : Layer = denseWith denseDefaults outDim

    /// ofStep with errors naming the layer as `op`.
    let private stepLayer (op: string) (name: string) (initState: int[] -> DType -> 'S) (step: 'S -> Tensor -> 'S * Tensor) : Layer =
        elementwise op name (fun x ->
            if x.Rank < 2 then
                invalidArg "inputs" $"%s{op}: expects time-major input [T; ...], got shape %s{Shape.format x.ShapeRef}"

            snd (Ad.scan step (initState x.ShapeRef[1..] x.DType) x))

    /// A layer that scans a neuron step function over the time axis of its input [T; B; N], from
    /// the state `initState [B; N] dtype`; outputs the per-step outputs [T; B; N].
    let ofStep (name: string) (initState: int[] -> DType -> 'S) (step: 'S -> Tensor -> 'S * Tensor) : Layer =
        stepLayer $"Layers.ofStep(%s{name})" name initState step

    /// LIF neurons over time: input currents [T; B; N] to spikes [T; B; N] (fused kernel).
    let lif (p: Snn.Lif.Spec) : Layer =
        Snn.Lif.validate p |> ignore
        elementwise "Layers.lif" "lif" (fun x -> fst (Fused.lif p x))

    /// LIF neurons by scanning the generic step function (same numbers as `lif`, op by op; supports
    /// every transform at every order).
    let lifGeneric (p: Snn.Lif.Spec) : Layer =
        Snn.Lif.validate p |> ignore
        stepLayer "Layers.lifGeneric" "lif" Snn.Lif.init (Snn.Lif.stepOf p)

    /// Leaky-integrator readout over time: input currents [T; B; N] to membrane [T; B; N] (fused).
    let li (p: Snn.Li.Spec) : Layer =
        Snn.Li.validate p |> ignore
        elementwise "Layers.li" "li" (Fused.li p)

    /// Adaptive LIF neurons over time.
    let alif (p: Snn.Alif.Spec) : Layer =
        Snn.Alif.validate p |> ignore
        stepLayer "Layers.alif" "alif" Snn.Alif.init (Snn.Alif.stepOf p)

    /// AdEx neurons over time (the BrainScaleS-2 neuron model).
    let adex (p: Snn.AdEx.Spec) : Layer =
        Snn.AdEx.validate p |> ignore
        stepLayer "Layers.adex" "adex" Snn.AdEx.init (Snn.AdEx.stepOf p)

    /// Non-leaky integrate-and-fire neurons over time.
    let integrateAndFire (p: Snn.IF.Spec) : Layer =
        Snn.IF.validate p |> ignore
        stepLayer "Layers.integrateAndFire" "if" Snn.IF.init (Snn.IF.stepOf p)

    /// A recurrent LIF layer of n neurons: input weights W [in; n] (applied to all steps in one
    /// product) and recurrent weights R [n; n] feeding back the previous step's spikes.
    let recurrentLif (p: Snn.Lif.Spec) (scale: float) (n: int) : Layer =
        Snn.Lif.validate p |> ignore
        positiveSize "Layers.recurrentLif" "n" n
        finiteScale "Layers.recurrentLif" "scale" scale

        {
            Name = $"recurrentLif(%d{n})"
            Init =
                fun key shapes ->
                    let inDim = vectorLength "Layers.recurrentLif" shapes
                    let k1, k2 = Random.split key
                    let w = Random.normal k1 [| inDim; n |] * (scale / sqrt (float inDim))
                    let r = Random.normal k2 [| n; n |] * (scale / sqrt (float n))
                    Weights(Map [ "W", w; "R", r ]), [ [| n |] ]
            Apply =
                fun ps _ xs ->
                    let x = single "Layers.recurrentLif" xs
                    let w, r = ps["W"], ps["R"]
                    let currents = Fused.spikeMatmul x w
                    let state = Snn.Lif.init (Array.append x.ShapeRef[1 .. x.Rank - 2] [| n |]) x.DType

                    let lifStep = Snn.Lif.stepOf p

                    let step (s: Snn.Lif.State, zPrev: Tensor) (c: Tensor) =
                        let s', z = lifStep s (c + zPrev.MatMul r)
                        (s', z), z

                    let _, zs = Ad.scan step (state, Tensor.ZerosLike state.V) currents
                    [ zs ]
        }

    /// Dropout: in training, zeroes each element with probability `rate` and scales the rest by
    /// 1/(1 - rate); the identity in evaluation.
    let dropout (rate: float) : Layer =
        if not (rate >= 0.0 && rate < 1.0) then
            invalidArg "rate" $"Layers.dropout: rate must lie in [0, 1), got %g{rate}"

        {
            Name = $"dropout(%g{rate})"
            Init =
                fun _ shapes ->
                    List.iter (checkFeatureShape "Layers.dropout") shapes
                    NoParams, shapes
            Apply =
                fun _ mode xs ->
                    match mode with
                    | Eval -> xs
                    | Train key ->
                        let keys = Random.splitN key xs.Length

                        xs
                        |> List.mapi (fun i x ->
                            let keep = Random.bernoulliAs x.DType keys[i] (1.0 - rate) x.ShapeRef
                            x * keep / (1.0 - rate))
        }

    /// Layers one after the other.
    let serial (layers: Layer list) : Layer =
        {
            Name = "serial[" + (layers |> List.map (fun l -> l.Name) |> String.concat "; ") + "]"
            Init =
                fun key shapes ->
                    let keys = Random.splitN key (max 1 layers.Length)

                    let ps, outShapes =
                        ((shapes, []), List.indexed layers)
                        ||> List.fold (fun (s, acc) (i, l) ->
                            let p, s' = l.Init keys[i] s
                            s', p :: acc)
                        |> fun (s, acc) -> List.rev acc, s

                    Children ps, outShapes
            Apply =
                fun p mode xs ->
                    match p with
                    | Children ps when ps.Length = layers.Length ->
                        let keys =
                            match mode with
                            | Train k -> Random.splitN k (max 1 layers.Length) |> Array.map Train
                            | Eval -> Array.create (max 1 layers.Length) Eval

                        List.zip3 layers ps (List.ofArray keys[.. layers.Length - 1])
                        |> List.fold (fun acc (l, lp, m) -> l.Apply lp m acc) xs
                    | _ -> invalidArg "params" $"Layers.serial: parameters do not match %d{layers.Length} layers"
        }

    /// Applies the i-th layer to the i-th input (one input per layer); stax's `parallel`.
    let branches (layers: Layer list) : Layer =
        {
            Name = "parallel[" + (layers |> List.map (fun l -> l.Name) |> String.concat "; ") + "]"
            Init =
                fun key shapes ->
                    if shapes.Length <> layers.Length then
                        invalidArg "inShapes" $"Layers.parallel: %d{layers.Length} layers but %d{shapes.Length} inputs"

                    let keys = Random.splitN key (max 1 layers.Length)

                    let results = List.mapi2 (fun i (l: Layer) s -> l.Init keys[i] [ s ]) layers shapes
                    Children(List.map fst results), List.collect snd results
            Apply =
                fun p mode xs ->
                    if xs.Length <> layers.Length then
                        invalidArg "inputs" $"Layers.parallel: %d{layers.Length} layers but %d{xs.Length} inputs"

                    match p with
                    | Children ps ->
                        let modes =
                            match mode with
                            | Train k -> Random.splitN k (max 1 layers.Length) |> Array.map Train |> List.ofArray
                            | Eval -> List.replicate layers.Length Eval

                        List.zip3 layers ps modes
                        |> List.zip xs
                        |> List.collect (fun (x, (l, lp, m)) -> l.Apply lp m [ x ])
                    | _ -> invalidArg "params" "Layers.parallel: parameters do not match"
        }

    /// The same as `branches` (`parallel` is reserved in F#, hence the backticks).
    let ``parallel`` (layers: Layer list) : Layer = branches layers

    /// Copies its single input n times.
    let fanOut (n: int) : Layer =
        positiveSize "Layers.fanOut" "n" n

        {
            Name = $"fanOut(%d{n})"
            Init = fun _ shapes -> NoParams, List.replicate n (singleShape "Layers.fanOut" shapes)
            Apply = fun _ _ xs -> List.replicate n (single "Layers.fanOut" xs)
        }

    /// Sums its inputs (which must have the same shape).
    let fanInSum: Layer =
        {
            Name = "fanInSum"
            Init =
                fun _ shapes ->
                    match shapes with
                    | [] -> invalidArg "inShapes" "Layers.fanInSum: needs at least one input"
                    | s :: rest ->
                        List.iter (checkFeatureShape "Layers.fanInSum") shapes

                        for r in rest do
                            if r <> s then
                                invalidArg "inShapes" $"Layers.fanInSum: shapes differ: %s{Shape.format s} and %s{Shape.format r}"

                        NoParams, [ s ]
            Apply = fun _ _ xs -> [ List.reduce (+) xs ]
        }
