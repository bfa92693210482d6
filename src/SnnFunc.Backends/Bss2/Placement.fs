/// Placement of a graph onto the chip: which graphs the emulator accepts (feed-forward LIF/LI
/// populations joined by dense or masked projections), the order they run in, and the neuron
/// circuits each neuron takes, with an error naming the limit and the node when it does not fit.
namespace SnnFunc.Backends

open System
open SnnFunc

/// Where one population sits on the chip.
type PlacedPopulation =
    {
        Node: string
        Size: int
        /// Synapses one of its neurons needs: one per presynaptic neuron and sign (a signed
        /// projection uses an excitatory and an inhibitory row for each input).
        Synapses: int
        /// Neuron circuits merged into one neuron: ceil(Synapses / 256).
        Compartments: int
        /// The circuits of each neuron (circuit c is column c % 256 of hemisphere c / 256).
        Circuits: int[][]
        /// Whether the population spikes (LIF) or is a readout (LI, a LIF with spiking disabled).
        Spiking: bool
    }

/// A placed graph.
type Placement =
    {
        /// Every node the run evaluates, in an order where each edge goes forward.
        Order: string list
        /// Each node's sources, in the order of the graph's edges (the order a node sums them in).
        Preds: Map<string, string list>
        Populations: Map<string, PlacedPopulation>
        CircuitsUsed: int
    }

[<RequireQualifiedAccess>]
module Placement =
    let private fail (message: string) : 'a = invalidArg "graph" $"Bss2: %s{message}"

    /// The nodes in an order where every edge goes forward (Kahn's algorithm, ties in insertion
    /// order); a cycle is an error naming its nodes: the emulator runs feed-forward graphs.
    let order (g: Graph) =
        let names = g.Nodes |> List.map fst
        let indegree = Collections.Generic.Dictionary<string, int>()

        for n in names do
            indegree[n] <- 0

        for _, t in g.Edges do
            indegree[t] <- indegree[t] + 1

        let result = ResizeArray<string>()

        let ready =
            Collections.Generic.Queue<string>(names |> List.filter (fun n -> indegree[n] = 0))

        while ready.Count > 0 do
            let n = ready.Dequeue()
            result.Add n

            for s, t in g.Edges do
                if s = n then
                    indegree[t] <- indegree[t] - 1

                    if indegree[t] = 0 then
                        ready.Enqueue t

        if result.Count < names.Length then
            let cyclic = names |> List.filter (fun n -> indegree[n] > 0)
            fail $"""the graph has a cycle through %s{String.Join(", ", cyclic)}; the emulator runs feed-forward graphs"""

        List.ofSeq result

    let private size (g: Graph) (name: string) = Array.fold (*) 1 (Graph.shapeOf g name)

    /// Checks every node is one the emulator runs, naming the first that is not.
    let private check (g: Graph) =
        for name, node in g.Nodes do
            match node with
            | Source _ -> ()
            | Op(Identity, _) -> ()
            | Op(t, _) -> fail $"node '%s{name}' is a transform (%A{t}); the chip runs populations and projections only"
            | Population(_, neuron) ->
                match neuron.Model with
                | LifModel spec when spec.Reset = Snn.ToValue -> ()
                | LifModel _ -> fail $"population '%s{name}' resets by subtraction; the chip's circuits reset to a potential"
                | LiModel _ -> ()
                | m ->
                    let kind = (sprintf "%A" m).Split(' ')[0]
                    fail $"population '%s{name}' is a %s{kind}; the emulator runs LIF and LI populations"
            | Synapses proj ->
                match proj.Kind with
                | Dense
                | Sparse _ -> ()
                | Conv _ -> fail $"projection '%s{name}' is a convolution; the spiking chip has dense synapse arrays (use the matrix mode)"

                if proj.Bias.IsSome then
                    fail $"projection '%s{name}' has a bias; the chip has none (feed a constant-rate or bias spike source instead)"

                match proj.Delay with
                | NoDelay
                | Steps 0 -> ()
                | d -> fail $"projection '%s{name}' has a delay (%A{d}); the chip's synapses have the fixed 1 µs delay of the model step"

    /// The synapses one neuron behind projection `name` needs: one row per input and sign (a
    /// masked projection: its largest column).
    let private synapsesOf (g: Graph) (name: string) (proj: Projection) (source: string) =
        let rows =
            match proj.Sign with
            | Mixed -> 2
            | Excitatory
            | Inhibitory -> 1

        let inputs =
            match proj.Kind with
            | Sparse mask ->
                let m = mask.ToDoubleArray()
                let cols = mask.Shape[1]

                Seq.init cols (fun c -> Seq.sum (Seq.init mask.Shape[0] (fun r -> m[r * cols + c])))
                |> Seq.max
                |> int
            | _ -> size g source

        rows * inputs

    /// Places the graph's populations on the chip's circuits in graph order: a neuron of one or two
    /// compartments takes a column (both hemispheres for two, as Cramer et al.'s 246 + 10 neurons of
    /// 512 synapses each fill the 512 circuits), more compartments the first free circuits.
    let place (g: Graph) : Placement =
        check g
        let order = order g

        let predMap =
            g.Nodes
            |> List.map (fun (n, _) -> n, g.Edges |> List.filter (fun (_, t) -> t = n) |> List.map fst)
            |> Map.ofList

        let preds n = predMap[n]

        let populations =
            [
                for name, node in g.Nodes do
                    match node with
                    | Population(_, neuron) ->
                        let synapses =
                            preds name
                            |> List.sumBy (fun s ->
                                match g.Node s with
                                | Synapses proj ->
                                    match preds s with
                                    | [ source ] -> synapsesOf g s proj source
                                    | sources -> fail $"projection '%s{s}' has %d{sources.Length} inputs; it needs one"
                                | _ -> fail $"population '%s{name}' is fed by '%s{s}' directly; connect it through a projection")

                        let compartments =
                            max 1 ((synapses + Bss2Figures.synapsesPerCircuit - 1) / Bss2Figures.synapsesPerCircuit)

                        name, size g name, synapses, compartments, Neuron.isSpiking neuron.Model
                    | _ -> ()
            ]

        let needed = populations |> List.sumBy (fun (_, n, _, c, _) -> n * c)

        if needed > Bss2Figures.neuronCircuits then
            let parts =
                populations
                |> List.map (fun (name, n, s, c, _) ->
                    $"'%s{name}' %d{n} neurons x %d{c} circuit(s) (%d{s} synapses each, %d{Bss2Figures.synapsesPerCircuit} per circuit)")

            fail
                $"""the graph needs %d{needed} neuron circuits and the chip has %d{Bss2Figures.neuronCircuits}: %s{String.Join("; ", parts)}"""

        let free = Array.create Bss2Figures.neuronCircuits true
        let columns = Bss2Figures.circuitsPerHemisphere

        let take (compartments: int) =
            let pick (cs: int[]) =
                for c in cs do
                    free[c] <- false

                cs

            match compartments with
            | 1 -> pick [| Array.findIndex id free |]
            | 2 ->
                match Seq.tryFind (fun c -> free[c] && free[c + columns]) (seq { 0 .. columns - 1 }) with
                | Some c -> pick [| c; c + columns |]
                | None -> pick (Array.indexed free |> Array.filter snd |> Array.truncate 2 |> Array.map fst)
            | k -> pick (Array.indexed free |> Array.filter snd |> Array.truncate k |> Array.map fst)

        // Two-compartment neurons first, so that single circuits do not break up the columns.
        let circuits =
            populations
            |> List.sortBy (fun (_, _, _, c, _) -> if c = 2 then 0 else 1)
            |> List.map (fun (name, n, _, c, _) -> name, Array.init n (fun _ -> take c))
            |> Map.ofList

        {
            Order = order
            Preds = predMap
            Populations =
                populations
                |> List.map (fun (name, n, s, c, spiking) ->
                    name,
                    {
                        Node = name
                        Size = n
                        Synapses = s
                        Compartments = c
                        Circuits = circuits[name]
                        Spiking = spiking
                    })
                |> Map.ofList
            CircuitsUsed = needed
        }
