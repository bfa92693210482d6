/// Forward-only time-stepped runs for inference (Graph.infer): the whole graph one step at a time,
/// sample by sample, over per-sample state of one step, so that nothing of size [T; B; N] is made
/// but the recorded observables.
///
/// Graph.run goes layer by layer over the whole time axis, which the gradients need (the kernels
/// keep every step's membrane and current for the backward pass) but inference does not: there its
/// [T; B; N] currents, membranes and spikes are each written once and read once, a pass over
/// memory (and, with the GC's defaults, page faults on fresh memory) per array and call. Here a
/// sample's state stays in the cache for all its steps. The graphs covered: feed-forward, dense
/// or masked projections without delays from sources and populations to LIF (no refractory
/// period) and LI populations, concrete Float32 or Float64 values, no initial state; the same
/// arithmetic as Graph.run's kernels in the same order (a 0/1 input adds weight rows in index
/// order, as the spike product), so the numbers equal Graph.run's where it takes its sparse
/// products (and agree to rounding where it multiplies densely). Any other graph, and traced
/// values, run Graph.run itself.
module internal SnnFunc.GraphInfer

#nowarn "9" // NativePtr: the step loop addresses pinned arrays (GraphInferLoops)

open System
open System.Numerics
open System.Runtime.InteropServices
open Microsoft.FSharp.NativeInterop
open SnnFunc.GraphCheck
open SnnFunc.Kernels
open SnnFunc.GraphInferLoops

/// A projection into a population: from source `From` (>= 0) or from population -From - 1 (its
/// output of the same step: spikes, or an LI population's membrane), M inputs, weights W [M; N],
/// an optional bias [N].
type private Proj =
    {
        From: int
        M: int
        W: Tensor
        Bias: Tensor
    }

/// A population: N neurons, LIF (Spiking) or LI, its per-step factors and levels as [N] tensors in
/// the run's dtype, its projections in Graph.run's summation order.
type private Pop =
    {
        Name: string
        N: int
        Spiking: bool
        ResetToValue: bool
        A: Tensor
        B: Tensor
        VLeak: Tensor
        VTh: Tensor
        VReset: Tensor
        Incoming: Proj[]
        Recorded: bool
        /// All five are one value for all neurons (and N >= 1): the step keeps them in registers.
        Uniform: bool
    }

/// A parameter as an [N] tensor of the run's dtype: one value for all neurons or one per neuron
/// (None for anything else, e.g. values per batch element, which Graph.run broadcasts).
let private perNeuron (dtype: DType) (shape: int[]) (t: Tensor) =
    let t = if t.DType = dtype then t else t.Convert dtype
    let n = Shape.count shape

    if t.Count = 1 then
        Some(t.Reshape([||]).BroadcastTo [| n |])
    elif t.ShapeRef = shape then
        Some(t.Reshape [| n |])
    else
        None

/// The plan of a graph the step loop covers, or None.
let private tryPlan (a: Analysis) (p: GraphParams) (config: RunConfig) (inputs: Map<string, Tensor>) (dtype: DType) (record: Set<string>) =
    let sources = ResizeArray<string>()
    let pops = ResizeArray<Pop>()
    let index = Collections.Generic.Dictionary<string, int>()

    let concrete (m: Map<string, Tensor>) =
        m |> Map.forall (fun _ t -> t.IsConcrete)

    let nodeParams n = p.TryFind n |> Option.filter concrete

    let proj (syn: string) (target: int[]) =
        match a.Nodes[syn], a.Preds[syn] with
        | Synapses({
                       Kind = Dense | Sparse _
                       Delay = NoDelay
                   } as pr),
          [ src ] when index.ContainsKey src ->
            match nodeParams syn with
            | Some m when m.ContainsKey "weight" ->
                let w = (Projection.effectiveWeights pr m["weight"]).Convert dtype
                let inN, outN = Shape.count a.Shapes[src], Shape.count target

                let bias =
                    m.TryFind "bias"
                    |> Option.map (fun b -> b.Convert dtype)
                    |> Option.filter (fun b -> b.Count = outN)

                if w.Count <> inN * outN || (m.ContainsKey "bias" && bias.IsNone) then
                    None
                else
                    Some
                        {
                            From = index[src]
                            M = inN
                            W = w
                            Bias = Option.toObj bias
                        }
            | _ -> None
        | _ -> None

    let population (n: string) (shape: int[]) (neuron: Neuron) =
        let incoming = a.Preds[n] |> List.map (fun s -> proj s shape)
        let like = Tensor.Scalar(0.0, dtype)

        let levels (a: Tensor, b: Tensor, vl, vth, vrs) =
            match List.map (perNeuron dtype shape) [ a; b; vl; vth; vrs ] with
            | [ Some a; Some b; Some vl; Some vth; Some vrs ] -> Some(a, b, vl, vth, vrs)
            | _ -> None

        let make spiking reset (a, b, vl, vth, vrs) =
            let same (t: Tensor) =
                let x = t.ToDoubleArray()
                x |> Array.forall (fun e -> e.Equals x[0])

            {
                Name = n
                N = Shape.count shape
                Spiking = spiking
                ResetToValue = reset
                A = a
                B = b
                VLeak = vl
                VTh = vth
                VReset = vrs
                Incoming = incoming |> List.choose id |> Array.ofList
                Recorded = record.Contains n
                Uniform = Shape.count shape > 0 && List.forall same [ a; b; vl; vth; vrs ]
            }

        if incoming |> List.exists Option.isNone then
            None
        else
            match neuron.Model, nodeParams n with
            | LifModel spec, Some m when spec.RefractorySteps = 0 ->
                let c, lp = Snn.Lif.config spec, GraphRun.lifParams n m
                Fused.checkLifParams lp
                let da, db = Snn.Lif.decays c lp like

                levels (da, db, lp.VLeak, lp.VTh, lp.VReset)
                |> Option.map (make true (spec.Reset = Snn.ToValue))
            | LiModel spec, Some m ->
                let lp = GraphRun.liParams n m
                Fused.checkLiParams lp
                let da, db = Snn.Li.decays (Snn.Li.config spec) lp like
                let zero = Tensor.Scalar(0.0, dtype)
                levels (da, db, lp.VLeak, zero, zero) |> Option.map (make false true)
            | _ -> None

    let covered =
        config.Initial.IsNone
        && a.Cyclic.IsEmpty
        && (dtype = Float32 || dtype = Float64)
        && inputs |> Map.forall (fun _ x -> x.IsConcrete && x.DType = dtype)
        && a.Components
           |> List.forall (fun comp ->
               let n = comp.Head

               match a.Nodes[n] with
               | Source _ ->
                   index[n] <- sources.Count
                   sources.Add n
                   true
               | Synapses _ ->
                   // Its currents are made inside the populations' steps; they cannot be recorded.
                   not (record.Contains n)
                   && a.Succs[n]
                      |> List.forall (fun s ->
                          match a.Nodes[s] with
                          | Population _ -> true
                          | _ -> false)
               | Population(shape, neuron) ->
                   match population n shape neuron with
                   | Some pop ->
                       index[n] <- -pops.Count - 1
                       pops.Add pop
                       true
                   | None -> false
               | Op _ -> false)

    if covered then
        Some(sources.ToArray(), pops.ToArray(), record)
    else
        None

/// Runs samples [b0, b1) through every step. `inputs[s]` is source s's [T; B; M_s]; the recorded
/// populations' observables go to (zs, vs, is) [T; B; N] (null when not recorded; zs also for LI),
/// the final state to (finalV, finalI) [B; N].
let inline private simulate
    (data: Tensor -> ^T[])
    (steps: int)
    (batch: int)
    (pops: Pop[])
    (inputs: ^T[][])
    (zs: ^T[][])
    (vs: ^T[][])
    (is: ^T[][])
    (finalV: ^T[][])
    (finalI: ^T[][])
    (b0: int)
    (b1: int)
    =
    let np = pops.Length
    let handles = Collections.Generic.List<GCHandle>()

    let pinned (a: ^T[]) =
        let h, p = pin a

        if h.IsAllocated then
            handles.Add h

        p

    let scratch () =
        pops |> Array.map (fun p -> pinned (Array.zeroCreate< ^T> (max 1 p.N)))

    // State, input currents, a second projection's currents, and the rows the unrecorded
    // observables go to.
    let v, cur, c, tmp = scratch (), scratch (), scratch (), scratch ()
    let sz, sv, si = scratch (), scratch (), scratch ()

    try
        let levels =
            pops
            |> Array.map (fun p -> pinned (data p.A), pinned (data p.B), pinned (data p.VLeak), pinned (data p.VTh), pinned (data p.VReset))

        let weights =
            pops
            |> Array.map (fun p -> p.Incoming |> Array.map (fun j -> pinned (data j.W)))

        let biases =
            pops
            |> Array.map (fun p ->
                p.Incoming
                |> Array.map (fun j ->
                    if isNull j.Bias then
                        NativePtr.nullPtr
                    else
                        pinned (data j.Bias)))

        let xs = inputs |> Array.map pinned

        let rz, rv, ri =
            zs |> Array.map pinned, vs |> Array.map pinned, is |> Array.map pinned
        // This step's row of each population's output.
        let zRow = Array.zeroCreate<nativeptr< ^T >> np

        for b in b0 .. b1 - 1 do
            for k in 0 .. np - 1 do
                let vk, ik = v[k], cur[k]

                clear vk (pops[k].N)
                clear ik (pops[k].N)

            for t in 0 .. steps - 1 do
                for k in 0 .. np - 1 do
                    let pop = pops[k]
                    let n = pop.N
                    let ck, vk, ik, lk = c[k], v[k], cur[k], levels[k]

                    // The input currents: each projection's product (plus bias), summed in order.
                    let mutable any = false

                    for q in 0 .. pop.Incoming.Length - 1 do
                        let j = pop.Incoming[q]
                        let dst = if q = 0 then ck else tmp[k]
                        let wq, bq = weights[k][q], biases[k][q]

                        let x =
                            if j.From >= 0 then
                                NativePtr.add xs[j.From] ((t * batch + b) * j.M)
                            else
                                zRow[-j.From - 1]

                        // The next step's input row, a batch of rows further on (not in any cache
                        // yet: the hardware prefetchers do not follow that stride).
                        if j.From >= 0 && t + 1 < steps then
                            prefetch (NativePtr.add x (batch * j.M)) j.M

                        if not (accumulate x j.M wq n dst) then
                            clear dst n

                        if not (NativePtr.isNullPtr bq) then
                            addRow false LanguagePrimitives.GenericOne bq dst n

                        if q > 0 then
                            addRow false LanguagePrimitives.GenericOne dst ck n

                        any <- true

                    if not any then
                        clear ck n

                    let inline row (series: nativeptr< ^T >[]) (scratch: nativeptr< ^T >[]) =
                        if pop.Recorded then
                            NativePtr.add series[k] ((t * batch + b) * n)
                        else
                            scratch[k]

                    let z = if pop.Spiking && pop.Recorded then row rz sz else sz[k]
                    let mv, mi = row rv sv, row ri si
                    // What the populations it feeds read: spikes, or an LI population's membrane.
                    zRow[k] <- if pop.Spiking then z else mv

                    // Literal flags: each call is its own loop, without their branches.
                    let inline step (uniform: bool) =
                        match pop.Spiking, pop.ResetToValue, pop.Recorded with
                        | false, _, _ -> stepLanes false true true uniform n lk ck vk ik z mv mi
                        | true, true, true -> stepLanes true true true uniform n lk ck vk ik z mv mi
                        | true, true, false -> stepLanes true true false uniform n lk ck vk ik z mv mi
                        | true, false, true -> stepLanes true false true uniform n lk ck vk ik z mv mi
                        | true, false, false -> stepLanes true false false uniform n lk ck vk ik z mv mi

                    if pop.Uniform then step true else step false

            for k in 0 .. np - 1 do
                let vk, ik, fv, fi, n = v[k], cur[k], finalV[k], finalI[k], pops[k].N

                for j in 0 .. n - 1 do
                    fv[b * n + j] <- NativePtr.get vk j
                    fi[b * n + j] <- NativePtr.get ik j
    finally
        for h in handles do
            h.Free()

/// Runs a covered graph: the observables of the recorded nodes and the final state, as Graph.run.
let private runPlan
    (a: Analysis)
    (steps: int)
    (batch: int[])
    (dtype: DType)
    (sources: string[], pops: Pop[], record: Set<string>)
    (inputs: Map<string, Tensor>)
    =
    let bs = Shape.count batch
    let lane (n: string) = Array.append batch a.Shapes[n]

    let series (n: string) =
        Array.concat [ [| steps |]; batch; a.Shapes[n] ]

    let totalN = pops |> Array.sumBy (fun p -> p.N)

    // Four chunks of samples per thread, handed out as the threads come free: a vCPU that stalls
    // (shared machines) then holds up a quarter of its share, not all of it.
    let chunks =
        match Parallelism.ChunkCount(int64 steps * int64 bs * int64 (max 1 totalN) * 8L) with
        | 1 -> 1
        | threads -> min bs (4 * threads)

    let run
        (make: int -> 'A)
        (data: Tensor -> 'A)
        (wrap: 'A -> Storage)
        (body: 'A[] -> 'A[] -> 'A[] -> 'A[] -> 'A[] -> 'A[] -> int -> int -> unit)
        =
        let recordedOr (p: Pop) (f: unit -> 'A) =
            if p.Recorded then f () else Unchecked.defaultof<'A>

        let xs = sources |> Array.map (fun s -> data inputs[s])

        let zs =
            pops
            |> Array.map (fun p ->
                if p.Recorded && p.Spiking then
                    make (steps * bs * p.N)
                else
                    Unchecked.defaultof<'A>)

        let vs =
            pops |> Array.map (fun p -> recordedOr p (fun () -> make (steps * bs * p.N)))

        let is =
            pops |> Array.map (fun p -> recordedOr p (fun () -> make (steps * bs * p.N)))

        let fv, fi =
            pops |> Array.map (fun p -> make (bs * p.N)), pops |> Array.map (fun p -> make (bs * p.N))

        Parallelism.RunChunks(
            chunks,
            fun ci ->
                let b0, b1 = Parallelism.Part(bs, 1, ci, chunks)

                if b1 > b0 then
                    body xs zs vs is fv fi b0 b1
        )

        let tensor (shape: int[]) (x: 'A) = Tensor.FromStorage(shape, wrap x)

        let observed =
            [
                for s in sources do
                    if record.Contains s then
                        s,
                        {
                            Output = inputs[s]
                            Spikes = null
                            Membrane = null
                            Current = null
                        }
                for k in 0 .. pops.Length - 1 do
                    let p = pops[k]

                    if p.Recorded then
                        let membrane, current = tensor (series p.Name) vs[k], tensor (series p.Name) is[k]
                        let spikes = if p.Spiking then tensor (series p.Name) zs[k] else null

                        p.Name,
                        {
                            Output = (if p.Spiking then spikes else membrane)
                            Spikes = spikes
                            Membrane = membrane
                            Current = current
                        }
            ]

        let final =
            [
                for k in 0 .. pops.Length - 1 do
                    let p = pops[k]
                    let state = [ "v", tensor (lane p.Name) fv[k]; "i", tensor (lane p.Name) fi[k] ]

                    p.Name,
                    Map(
                        if p.Spiking then
                            ("refractory", Tensor.Full(lane p.Name, 0.0, dtype)) :: state
                        else
                            state
                    )
            ]

        {
            Observed = Map observed
            Final = Map final
        }

    // Every element of the outputs is written (each sample's row at each step, its final state).
    match dtype with
    | Float32 ->
        let data (t: Tensor) = t.Storage.Float32s
        run GC.AllocateUninitializedArray<float32> data Storage.F32 (simulate data steps bs pops)
    | _ ->
        let data (t: Tensor) = t.Storage.Float64s
        run GC.AllocateUninitializedArray<float> data Storage.F64 (simulate data steps bs pops)

/// Graph.infer on an analysed graph: the step loop where it covers the graph, else GraphRun.run.
let infer (a: Analysis) (p: GraphParams) (config: RunConfig) (inputs: Map<string, Tensor>) : RunResult =
    // Validated once, for this loop and for Graph.run alike (the same errors in the same order).
    let batch, dtype = GraphRun.checkRun a config inputs
    let record = GraphRun.recorded a config

    match tryPlan a p config inputs dtype record with
    | Some plan -> runPlan a config.Steps batch dtype plan inputs
    | None -> GraphRun.runChecked a p config inputs (batch, dtype) record

/// Whether infer runs its step loop for these arguments (not GraphRun.run).
let internal covers (a: Analysis) (p: GraphParams) (config: RunConfig) (inputs: Map<string, Tensor>) =
    let _, dtype = GraphRun.checkRun a config inputs
    (tryPlan a p config inputs dtype (GraphRun.recorded a config)).IsSome
