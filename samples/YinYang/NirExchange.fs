/// The Yin-Yang network as data, for NIR exchange: the trained layer chain's weights as the graph
/// x -> hidden (LIF) -> out (LI) -> output, written as a NIR file, and a NIR file read back as a
/// graph that classifies by its output's largest value over time.
module YinYangNir

open SnnFunc

/// The graph of the sample's `serial [dense; lif; dense; li]` with its parameters `p`.
let graphOf (lif: Snn.Lif.Spec) (li: Snn.Li.Spec) (p: Params) : Graph * GraphParams =
    match p with
    | Children [ Weights d1; NoParams; Weights d2; NoParams ] when d1.ContainsKey "W" && d2.ContainsKey "W" ->
        let w1, w2 = d1["W"], d2["W"]

        let dense (w: Tensor) (b: Tensor option) =
            let proj = Projection.dense (Init.ofTensor w)

            match b with
            | Some b -> proj |> Projection.withBias (Init.ofTensor b)
            | None -> proj

        let g =
            Graph.empty
            |> Graph.input "x" w1.Shape[0]
            |> Graph.population "hidden" w1.Shape[1] (Neuron.lif lif)
            |> Graph.population "out" w2.Shape[1] (Neuron.li li)
            |> Graph.connect "x" "hidden" (dense w1 (d1.TryFind "b"))
            |> Graph.connect "hidden" "out" (dense w2 (d2.TryFind "b"))
            |> Graph.transform "output" Identity
            |> Graph.edge "out" "output"
            |> Graph.validate

        g, Graph.initAs w1.DType (Random.key 0L) g
    | _ -> invalidArg "p" "YinYangNir.graphOf: expects the parameters of serial [dense; lif; dense; li]"

/// Writes the trained network as a NIR file (times in milliseconds, the populations' step as dt).
let export (path: string) (lif: Snn.Lif.Spec) (li: Snn.Li.Spec) (p: Params) : unit =
    let g, gp = graphOf lif li p
    Nir.write path g gp

/// A network read from NIR: its graph and parameters, the source it reads and the node it is
/// judged by, and the step it runs with.
type Imported =
    {
        Graph: Graph
        Params: GraphParams
        Input: string
        Output: string
        Dt: float
    }

/// Reads a NIR file as a Yin-Yang classifier: one source of 5 features, one sink of 3 classes.
let import (path: string) : Imported =
    let g, p = Nir.read path

    let sources =
        g.Nodes |> List.choose (fun (n, node) -> if node.IsSource then Some n else None)

    let fed = g.Edges |> List.map fst |> Set.ofList
    let sinks = g.Nodes |> List.map fst |> List.filter (fed.Contains >> not)

    match sources, sinks with
    | [ input ], [ output ] when Graph.shapeOf g input = [| 5 |] && Graph.shapeOf g output = [| 3 |] ->
        {
            Graph = g
            Params = p
            Input = input
            Output = output
            Dt = (Nir.optionsOf NirOptions.defaults g).Dt
        }
    | _ ->
        let shapes names =
            names
            |> List.map (fun n -> $"%s{n} %A{Graph.shapeOf g n}")
            |> String.concat ", "

        failwith
            $"%s{path}: a Yin-Yang network reads one input of 5 features and ends in one node of 3 classes; this one has inputs [%s{shapes sources}] and ends in [%s{shapes sinks}]"

/// The imported network's logits for input spikes [T; B; 5]: its output's maximum over time.
let logits (net: Imported) (spikes: Tensor) : Tensor =
    let config =
        RunConfig.steps spikes.Shape[0] net.Dt |> RunConfig.recording [ net.Output ]

    let r = Graph.run net.Graph net.Params config (Map [ net.Input, spikes ])
    Decode.maxOverTime r[net.Output].Output
